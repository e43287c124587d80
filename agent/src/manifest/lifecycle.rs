//! Lifecycle hooks (postStart, preStop: exec, httpGet, sleep), the stop
//! signal, and how a container's end is reported (terminationMessagePath,
//! default /dev/termination-log, and terminationMessagePolicy).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler};

use super::field::{Errors, FieldPath};
use super::probes::{self, HttpGet};

/// kubelet's default termination message path.
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// What a hook does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    /// Runs in the container.
    Exec {
        command: Vec<String>,
    },
    HttpGet(HttpGet),
    /// Waits (preStop: before the stop signal).
    Sleep(Duration),
}

/// A container's hooks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// Run right after the container starts; a failure kills it.
    pub post_start: Option<Hook>,
    /// Run before the stop signal, within the grace period.
    pub pre_stop: Option<Hook>,
    /// Signal to stop the container with instead of the image's
    /// (`lifecycle.stopSignal`).
    pub stop_signal: Option<String>,
}

/// `terminationMessagePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TerminationMessagePolicy {
    /// The message is the content of the termination message file.
    #[default]
    File,
    /// As File; when the file is empty and the container failed, the last
    /// lines of its log (kubelet: 80 lines, 4 KiB).
    FallbackToLogsOnError,
}

/// Where the container leaves its termination message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminationMessage {
    pub path: String,
    pub policy: TerminationMessagePolicy,
}

impl TerminationMessagePolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "File",
            Self::FallbackToLogsOnError => "FallbackToLogsOnError",
        }
    }
}

fn hook(
    container: &Container,
    h: &LifecycleHandler,
    grace: i64,
    path: &FieldPath,
    errs: &mut Errors,
) -> Option<Hook> {
    let n = [
        h.exec.is_some(),
        h.http_get.is_some(),
        h.tcp_socket.is_some(),
        h.sleep.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if n == 0 {
        errs.add(path, "must specify a handler type");
        return None;
    }
    if n > 1 {
        errs.add(path, "may not specify more than 1 handler type");
        return None;
    }
    if let Some(e) = &h.exec {
        let command = e.command.clone().unwrap_or_default();
        if command.is_empty() {
            errs.required(&path.child("exec").child("command"));
            return None;
        }
        return Some(Hook::Exec { command });
    }
    if let Some(g) = &h.http_get {
        return probes::http_get(container, g, &path.child("httpGet"), errs).map(Hook::HttpGet);
    }
    if let Some(s) = &h.sleep {
        if s.seconds < 0 || s.seconds > grace {
            errs.add(
                &path.child("sleep").child("seconds"),
                format!(
                    "must be non-negative and less than terminationGracePeriodSeconds ({grace})"
                ),
            );
            return None;
        }
        return Some(Hook::Sleep(Duration::from_secs(s.seconds.unsigned_abs())));
    }
    errs.add(
        &path.child("tcpSocket"),
        "tcpSocket is not supported for lifecycle hooks",
    );
    None
}

/// The hooks of `container` (at `path`) in a pod whose grace period is
/// `grace` seconds.
pub(crate) fn container_lifecycle(
    container: &Container,
    grace: i64,
    path: &FieldPath,
    errs: &mut Errors,
) -> Lifecycle {
    let Some(l) = &container.lifecycle else {
        return Lifecycle::default();
    };
    let lp = path.child("lifecycle");
    let get = |field: &str, h: &Option<LifecycleHandler>, errs: &mut Errors| {
        h.as_ref()
            .and_then(|h| hook(container, h, grace, &lp.child(field), errs))
    };
    let stop_signal = l.stop_signal.clone();
    if let Some(s) = &stop_signal {
        let valid = s.strip_prefix("SIG").is_some_and(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'+' || c == b'-')
        });
        if !valid {
            errs.add(
                &lp.child("stopSignal"),
                format!("{s:?} is not a signal name (SIGTERM, SIGRTMIN+1, ...)"),
            );
        }
    }
    Lifecycle {
        post_start: get("postStart", &l.post_start, errs),
        pre_stop: get("preStop", &l.pre_stop, errs),
        stop_signal,
    }
}

/// The container's termination message settings.
pub(crate) fn termination_message(
    container: &Container,
    path: &FieldPath,
    errs: &mut Errors,
) -> TerminationMessage {
    let msg_path = container
        .termination_message_path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_TERMINATION_MESSAGE_PATH.into());
    if !msg_path.starts_with('/') {
        errs.add(
            &path.child("terminationMessagePath"),
            "must be an absolute path",
        );
    }
    let policy = match container.termination_message_policy.as_deref() {
        None | Some("") | Some("File") => TerminationMessagePolicy::File,
        Some("FallbackToLogsOnError") => TerminationMessagePolicy::FallbackToLogsOnError,
        Some(p) => {
            errs.unsupported(
                &path.child("terminationMessagePolicy"),
                p,
                &["File", "FallbackToLogsOnError"],
            );
            TerminationMessagePolicy::File
        }
    };
    TerminationMessage {
        path: msg_path,
        policy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(yaml: &str) -> Container {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn hooks() {
        let c = container(
            r#"
name: c
ports: [{name: admin, containerPort: 9000}]
lifecycle:
  postStart: {exec: {command: [sh, -c, "echo up"]}}
  preStop: {httpGet: {port: admin, path: /drain, scheme: HTTPS}}
  stopSignal: SIGQUIT
"#,
        );
        let mut e = Errors::new();
        let l = container_lifecycle(&c, 30, &FieldPath::root("c"), &mut e);
        assert!(e.is_empty(), "{e}");
        assert_eq!(
            l.post_start,
            Some(Hook::Exec {
                command: vec!["sh".into(), "-c".into(), "echo up".into()]
            })
        );
        match l.pre_stop {
            Some(Hook::HttpGet(h)) => {
                assert_eq!(
                    (h.port, h.path.as_str(), h.scheme),
                    (9000, "/drain", probes::Scheme::Https)
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(l.stop_signal.as_deref(), Some("SIGQUIT"));
        let c = container("name: c\nlifecycle: {preStop: {sleep: {seconds: 5}}}\n");
        let l = container_lifecycle(&c, 30, &FieldPath::root("c"), &mut e);
        assert_eq!(l.pre_stop, Some(Hook::Sleep(Duration::from_secs(5))));
    }

    #[test]
    fn hook_errors() {
        let c = container(
            r#"
name: c
lifecycle:
  postStart: {tcpSocket: {port: 80}}
  preStop: {sleep: {seconds: 60}}
  stopSignal: TERM
"#,
        );
        let mut e = Errors::new();
        container_lifecycle(&c, 30, &FieldPath::root("c"), &mut e);
        let v: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            v,
            [
                "c.lifecycle.stopSignal: \"TERM\" is not a signal name (SIGTERM, SIGRTMIN+1, ...)",
                "c.lifecycle.postStart.tcpSocket: tcpSocket is not supported for lifecycle hooks",
                "c.lifecycle.preStop.sleep.seconds: must be non-negative and less than terminationGracePeriodSeconds (30)",
            ]
        );
    }

    #[test]
    fn termination_message_defaults() {
        let mut e = Errors::new();
        let t = termination_message(&container("name: c\n"), &FieldPath::root("c"), &mut e);
        assert_eq!(
            t,
            TerminationMessage {
                path: "/dev/termination-log".into(),
                policy: TerminationMessagePolicy::File
            }
        );
        let t = termination_message(
            &container("name: c\nterminationMessagePath: /tmp/msg\nterminationMessagePolicy: FallbackToLogsOnError\n"),
            &FieldPath::root("c"),
            &mut e,
        );
        assert_eq!(t.policy.as_str(), "FallbackToLogsOnError");
        assert_eq!(t.path, "/tmp/msg");
        termination_message(
            &container("name: c\nterminationMessagePolicy: Never\n"),
            &FieldPath::root("c"),
            &mut e,
        );
        assert_eq!(e.len(), 1);
    }
}
