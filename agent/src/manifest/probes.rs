//! Liveness, readiness and startup probes with every field resolved as
//! kubelet applies them: period 10 s, timeout 1 s, success 1, failure 3,
//! initial delay 0 when unset (or 0), named ports turned into numbers,
//! httpGet's scheme and path defaulted, exec commands expanded with the
//! container's literal env values. Also the HTTP GET action that lifecycle
//! hooks share.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Probe as K8sProbe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::env;
use super::field::{Errors, FieldPath};

/// `httpGet.scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// An HTTP GET against the pod (probes and hooks). The prober adds
/// kubelet's `User-Agent: kube-probe/...` and `Accept: */*` unless
/// `headers` set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGet {
    pub scheme: Scheme,
    /// `None`: the pod IP.
    pub host: Option<String>,
    pub port: u16,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeAction {
    /// Runs in the container; success is exit status 0.
    Exec { command: Vec<String> },
    /// Success is a status in 200..400.
    HttpGet(HttpGet),
    /// Success is an accepted connection; `host` `None` is the pod IP.
    TcpSocket { host: Option<String>, port: u16 },
    /// The gRPC health checking protocol against the pod IP.
    Grpc { port: u16, service: Option<String> },
}

/// A probe with kubelet's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub action: ProbeAction,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// Probe-level grace period for a liveness/startup kill, overriding the
    /// pod's.
    pub termination_grace_period: Option<Duration>,
}

/// A container's probes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probes {
    pub liveness: Option<Probe>,
    pub readiness: Option<Probe>,
    pub startup: Option<Probe>,
}

impl Probes {
    pub fn is_empty(&self) -> bool {
        self.liveness.is_none() && self.readiness.is_none() && self.startup.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    pub fn field(self) -> &'static str {
        match self {
            Self::Liveness => "livenessProbe",
            Self::Readiness => "readinessProbe",
            Self::Startup => "startupProbe",
        }
    }
}

/// A port given by number or by the name of one of `container`'s ports.
pub(crate) fn resolve_port(
    container: &Container,
    port: &IntOrString,
    path: &FieldPath,
    errs: &mut Errors,
) -> Option<u16> {
    match port {
        IntOrString::Int(n) => port_number(i64::from(*n), path, errs),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<i64>() {
                return port_number(n, path, errs);
            }
            let found = container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()));
            match found {
                Some(p) => port_number(i64::from(p.container_port), path, errs),
                None => {
                    errs.add(path, format!("no port named {name:?}"));
                    None
                }
            }
        }
    }
}

fn port_number(n: i64, path: &FieldPath, errs: &mut Errors) -> Option<u16> {
    match u16::try_from(n) {
        Ok(p) if p > 0 => Some(p),
        _ => {
            errs.add(path, "must be between 1 and 65535, inclusive");
            None
        }
    }
}

/// An `httpGet` action (probe or hook) at `path`.
pub(crate) fn http_get(
    container: &Container,
    a: &HTTPGetAction,
    path: &FieldPath,
    errs: &mut Errors,
) -> Option<HttpGet> {
    let port = resolve_port(container, &a.port, &path.child("port"), errs);
    let scheme = match a.scheme.as_deref() {
        None | Some("") | Some("HTTP") => Some(Scheme::Http),
        Some("HTTPS") => Some(Scheme::Https),
        Some(s) => {
            errs.unsupported(&path.child("scheme"), s, &["HTTP", "HTTPS"]);
            None
        }
    };
    let mut headers = Vec::new();
    for (i, h) in a.http_headers.iter().flatten().enumerate() {
        let valid = !h.name.is_empty()
            && h.name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
        if !valid {
            errs.add(
                &path.child("httpHeaders").index(i).child("name"),
                format!("{:?} is not a valid HTTP header name", h.name),
            );
        }
        headers.push((h.name.clone(), h.value.clone()));
    }
    Some(HttpGet {
        scheme: scheme?,
        host: a.host.clone().filter(|h| !h.is_empty()),
        port: port?,
        path: a
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into()),
        headers,
    })
}

/// One probe of `container` (at `path`, the probe field).
pub(crate) fn probe(
    kind: ProbeKind,
    container: &Container,
    p: &K8sProbe,
    path: &FieldPath,
    errs: &mut Errors,
) -> Option<Probe> {
    let handlers = [
        p.exec.is_some(),
        p.http_get.is_some(),
        p.tcp_socket.is_some(),
        p.grpc.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if handlers == 0 {
        errs.add(path, "must specify a handler type");
        return None;
    }
    if handlers > 1 {
        errs.add(path, "may not specify more than 1 handler type");
        return None;
    }
    let before = errs.len();
    let seconds = |field: &str, v: Option<i32>, default: u64, errs: &mut Errors| -> u64 {
        match v {
            Some(n) if n < 0 => {
                errs.add(&path.child(field), "must be greater than or equal to 0");
                default
            }
            Some(n) if n > 0 => n.unsigned_abs().into(),
            _ => default,
        }
    };
    let initial_delay = seconds("initialDelaySeconds", p.initial_delay_seconds, 0, errs);
    let period = seconds("periodSeconds", p.period_seconds, 10, errs);
    let timeout = seconds("timeoutSeconds", p.timeout_seconds, 1, errs);
    let success = seconds("successThreshold", p.success_threshold, 1, errs);
    let failure = seconds("failureThreshold", p.failure_threshold, 3, errs);
    if kind != ProbeKind::Readiness && success != 1 {
        errs.add(&path.child("successThreshold"), "must be 1");
    }
    let grace = match p.termination_grace_period_seconds {
        Some(_) if kind == ProbeKind::Readiness => {
            errs.add(
                &path.child("terminationGracePeriodSeconds"),
                "must not be set for readinessProbes",
            );
            None
        }
        Some(s) if s <= 0 => {
            errs.add(
                &path.child("terminationGracePeriodSeconds"),
                "must be greater than 0",
            );
            None
        }
        Some(s) => Some(Duration::from_secs(s.unsigned_abs())),
        None => None,
    };
    let action = if let Some(e) = &p.exec {
        let command = e.command.clone().unwrap_or_default();
        if command.is_empty() {
            errs.required(&path.child("exec").child("command"));
        }
        let vars = env::static_env(container);
        ProbeAction::Exec {
            command: command
                .iter()
                .map(|c| env::expand_static(c, &vars))
                .collect(),
        }
    } else if let Some(h) = &p.http_get {
        ProbeAction::HttpGet(http_get(container, h, &path.child("httpGet"), errs)?)
    } else if let Some(t) = &p.tcp_socket {
        let port = resolve_port(
            container,
            &t.port,
            &path.child("tcpSocket").child("port"),
            errs,
        )?;
        ProbeAction::TcpSocket {
            host: t.host.clone().filter(|h| !h.is_empty()),
            port,
        }
    } else {
        let g = p.grpc.as_ref()?;
        let port = port_number(i64::from(g.port), &path.child("grpc").child("port"), errs)?;
        ProbeAction::Grpc {
            port,
            service: g.service.clone().filter(|s| !s.is_empty()),
        }
    };
    (errs.len() == before).then(|| Probe {
        action,
        initial_delay: Duration::from_secs(initial_delay),
        period: Duration::from_secs(period),
        timeout: Duration::from_secs(timeout),
        success_threshold: u32::try_from(success).unwrap_or(1),
        failure_threshold: u32::try_from(failure).unwrap_or(3),
        termination_grace_period: grace,
    })
}

/// All probes of `container` at `path`.
pub(crate) fn container_probes(
    container: &Container,
    path: &FieldPath,
    errs: &mut Errors,
) -> Probes {
    let get = |kind: ProbeKind, p: &Option<K8sProbe>, errs: &mut Errors| {
        p.as_ref()
            .and_then(|p| probe(kind, container, p, &path.child(kind.field()), errs))
    };
    Probes {
        liveness: get(ProbeKind::Liveness, &container.liveness_probe, errs),
        readiness: get(ProbeKind::Readiness, &container.readiness_probe, errs),
        startup: get(ProbeKind::Startup, &container.startup_probe, errs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(yaml: &str) -> Container {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    const C: &str = r#"
name: web
image: x
env: [{name: DIR, value: /srv}]
ports: [{name: http, containerPort: 8080}, {name: grpc, containerPort: 9090}]
livenessProbe:
  httpGet: {port: http, httpHeaders: [{name: X-Probe, value: "1"}]}
readinessProbe:
  tcpSocket: {port: 8080}
  periodSeconds: 2
  successThreshold: 2
  failureThreshold: 1
  initialDelaySeconds: 5
  timeoutSeconds: 0
startupProbe:
  exec: {command: [test, -f, "$(DIR)/ready"]}
  failureThreshold: 30
  terminationGracePeriodSeconds: 4
"#;

    #[test]
    fn defaults_and_resolution() {
        let c = container(C);
        let mut e = Errors::new();
        let p = container_probes(&c, &FieldPath::root("c"), &mut e);
        assert!(e.is_empty(), "{e}");
        let l = p.liveness.unwrap();
        assert_eq!(
            l.action,
            ProbeAction::HttpGet(HttpGet {
                scheme: Scheme::Http,
                host: None,
                port: 8080,
                path: "/".into(),
                headers: vec![("X-Probe".into(), "1".into())],
            })
        );
        assert_eq!(
            (l.period, l.timeout, l.initial_delay),
            (
                Duration::from_secs(10),
                Duration::from_secs(1),
                Duration::ZERO
            )
        );
        assert_eq!((l.success_threshold, l.failure_threshold), (1, 3));
        let r = p.readiness.unwrap();
        assert_eq!(
            r.action,
            ProbeAction::TcpSocket {
                host: None,
                port: 8080
            }
        );
        assert_eq!(
            (r.period, r.timeout, r.initial_delay),
            (
                Duration::from_secs(2),
                Duration::from_secs(1),
                Duration::from_secs(5)
            )
        );
        assert_eq!((r.success_threshold, r.failure_threshold), (2, 1));
        let s = p.startup.unwrap();
        assert_eq!(
            s.action,
            ProbeAction::Exec {
                command: vec!["test".into(), "-f".into(), "/srv/ready".into()]
            }
        );
        assert_eq!(s.failure_threshold, 30);
        assert_eq!(s.termination_grace_period, Some(Duration::from_secs(4)));
    }

    #[test]
    fn errors_name_the_probe_field() {
        let c = container(
            r#"
name: web
image: x
ports: [{name: http, containerPort: 8080}]
livenessProbe:
  httpGet: {port: web, scheme: FTP}
  successThreshold: 2
readinessProbe:
  exec: {command: [true]}
  tcpSocket: {port: 1}
  terminationGracePeriodSeconds: 3
startupProbe:
  periodSeconds: -1
"#,
        );
        let mut e = Errors::new();
        let p = container_probes(
            &c,
            &FieldPath::root("spec").child("containers").index(1),
            &mut e,
        );
        assert!(p.is_empty());
        let v: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            v,
            [
                "spec.containers[1].livenessProbe.successThreshold: must be 1",
                "spec.containers[1].livenessProbe.httpGet.port: no port named \"web\"",
                "spec.containers[1].livenessProbe.httpGet.scheme: unsupported value \"FTP\": supported values: \"HTTP\", \"HTTPS\"",
                "spec.containers[1].readinessProbe: may not specify more than 1 handler type",
                "spec.containers[1].startupProbe: must specify a handler type",
            ]
        );
    }

    #[test]
    fn grpc_and_numeric_string_ports() {
        let c = container(
            r#"
name: g
livenessProbe: {grpc: {port: 9090, service: health}}
readinessProbe: {tcpSocket: {port: "8081", host: 127.0.0.1}}
startupProbe: {grpc: {port: 0}}
"#,
        );
        let mut e = Errors::new();
        let p = container_probes(&c, &FieldPath::root("c"), &mut e);
        assert_eq!(
            p.liveness.unwrap().action,
            ProbeAction::Grpc {
                port: 9090,
                service: Some("health".into())
            }
        );
        assert_eq!(
            p.readiness.unwrap().action,
            ProbeAction::TcpSocket {
                host: Some("127.0.0.1".into()),
                port: 8081
            }
        );
        assert_eq!(
            e.to_string(),
            "c.startupProbe.grpc.port: must be between 1 and 65535, inclusive"
        );
    }
}
