//! Container environment as kubelet builds it: `envFrom` first (ConfigMaps
//! and Secrets, with prefix), then `env` in order overriding it, each
//! `value` expanded with `$(VAR)` references to the variables defined so
//! far (`$$` escapes, unknown references stay as written), `valueFrom`
//! resolved from the file's objects, the pod and the resources. Values that
//! need the running sandbox (pod and host IPs) stay deferred in a
//! [`Template`] until the runner renders it with [`RuntimeValues`].

use std::collections::HashMap;

use berth_proto::v1::KeyValue;
use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource};

use super::context::PodCtx;
use super::downward::{self, FieldUse};
use super::field::{Errors, FieldPath};
use super::names;
use super::quantity::Amount;
use super::resources;

/// A value only the running pod knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deferred {
    /// `status.podIP`: the primary pod IP.
    PodIp,
    /// `status.podIPs`: all pod IPs, comma-separated.
    PodIps,
    /// `status.hostIP`.
    HostIp,
    /// `status.hostIPs`, comma-separated.
    HostIps,
}

/// The runtime values deferred fields take.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeValues {
    pub pod_ips: Vec<String>,
    pub host_ips: Vec<String>,
}

impl RuntimeValues {
    pub fn get(&self, d: Deferred) -> String {
        match d {
            Deferred::PodIp => self.pod_ips.first().cloned().unwrap_or_default(),
            Deferred::PodIps => self.pod_ips.join(","),
            Deferred::HostIp => self.host_ips.first().cloned().unwrap_or_default(),
            Deferred::HostIps => self.host_ips.join(","),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Deferred(Deferred),
}

/// A string whose parts may be deferred values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template(Vec<Segment>);

impl Template {
    pub fn text(s: impl Into<String>) -> Self {
        let s = s.into();
        if s.is_empty() {
            return Self::default();
        }
        Self(vec![Segment::Text(s)])
    }

    pub fn deferred(d: Deferred) -> Self {
        Self(vec![Segment::Deferred(d)])
    }

    fn push_str(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some(Segment::Text(t)) => t.push_str(s),
            _ => self.0.push(Segment::Text(s.to_string())),
        }
    }

    fn append(&mut self, other: &Template) {
        for seg in &other.0 {
            match seg {
                Segment::Text(t) => self.push_str(t),
                Segment::Deferred(d) => self.0.push(Segment::Deferred(*d)),
            }
        }
    }

    /// The string, when nothing in it is deferred.
    pub fn as_static(&self) -> Option<String> {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Segment::Text(t) => out.push_str(t),
                Segment::Deferred(_) => return None,
            }
        }
        Some(out)
    }

    pub fn is_static(&self) -> bool {
        self.0.iter().all(|s| matches!(s, Segment::Text(_)))
    }

    /// The string with deferred values filled from `rt`.
    pub fn render(&self, rt: &RuntimeValues) -> String {
        let mut out = String::new();
        for seg in &self.0 {
            match seg {
                Segment::Text(t) => out.push_str(t),
                Segment::Deferred(d) => out.push_str(&rt.get(*d)),
            }
        }
        out
    }
}

/// Kubernetes' `$(VAR)` expansion of `input`: `lookup` gives a variable's
/// value; `$$` is a literal `$`; an unknown or unterminated reference and a
/// `$` before anything else are kept as written.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<Template>) -> Template {
    let mut out = Template::default();
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match after.chars().next() {
            None => {
                out.push_str("$");
                rest = "";
            }
            Some('$') => {
                out.push_str("$");
                rest = &after[1..];
            }
            Some('(') => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match lookup(name) {
                        Some(v) => out.append(&v),
                        None => out.push_str(&format!("$({name})")),
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(c) => {
                out.push_str("$");
                out.push_str(&c.to_string());
                rest = &after[c.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Expansion over plain strings (`ExpandContainerCommandOnlyStatic`: exec
/// probes see only the literal `value`s of `env`).
pub fn expand_static(input: &str, vars: &HashMap<String, String>) -> String {
    expand(input, |k| vars.get(k).map(Template::text))
        .as_static()
        .unwrap_or_default()
}

/// The literal `env[].value`s of `container`, for [`expand_static`].
pub fn static_env(container: &Container) -> HashMap<String, String> {
    container
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect()
}

/// A container's variables in definition order (a later definition replaces
/// the value but keeps the first one's place).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvVars {
    vars: Vec<(String, Template)>,
    index: HashMap<String, usize>,
}

impl EnvVars {
    pub fn set(&mut self, name: &str, value: Template) {
        match self.index.get(name) {
            Some(&i) => self.vars[i].1 = value,
            None => {
                self.index.insert(name.to_string(), self.vars.len());
                self.vars.push((name.to_string(), value));
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&Template> {
        self.index.get(name).map(|&i| &self.vars[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Template)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn is_static(&self) -> bool {
        self.vars.iter().all(|(_, v)| v.is_static())
    }

    /// The CRI env list with deferred values from `rt`.
    pub fn render(&self, rt: &RuntimeValues) -> Vec<KeyValue> {
        self.vars
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.render(rt),
            })
            .collect()
    }

    /// `$(VAR)` expansion of `input` against these variables.
    pub fn expand(&self, input: &str) -> Template {
        expand(input, |k| self.get(k).cloned())
    }
}

/// The environment of `container` (at `path`).
pub(crate) fn container_env(
    ctx: &PodCtx<'_>,
    container: &Container,
    path: &FieldPath,
    errs: &mut Errors,
) -> EnvVars {
    let mut vars = EnvVars::default();
    for (i, from) in container.env_from.iter().flatten().enumerate() {
        let p = path.child("envFrom").index(i);
        let prefix = from.prefix.clone().unwrap_or_default();
        let pairs: Vec<(String, String)> = match (&from.config_map_ref, &from.secret_ref) {
            (Some(r), None) => {
                let rp = p.child("configMapRef");
                match ctx.config_map(&r.name) {
                    Some(cm) => cm
                        .data
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    None => {
                        missing(&rp, "configmap", &r.name, r.optional, errs);
                        continue;
                    }
                }
            }
            (None, Some(r)) => {
                let rp = p.child("secretRef");
                match ctx.secret(&r.name) {
                    Some(s) => s
                        .data
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                        .collect(),
                    None => {
                        missing(&rp, "secret", &r.name, r.optional, errs);
                        continue;
                    }
                }
            }
            (None, None) => {
                errs.add(&p, "must specify one of: `configMapRef` or `secretRef`");
                continue;
            }
            (Some(_), Some(_)) => {
                errs.add(&p, "may not have more than one field specified at a time");
                continue;
            }
        };
        if !prefix.is_empty() {
            if let Err(e) = names::env_var_name(&prefix) {
                errs.add(&p.child("prefix"), e);
                continue;
            }
        }
        for (k, v) in pairs {
            let name = format!("{prefix}{k}");
            if names::env_var_name(&name).is_err() {
                ctx.warn(format!(
                    "container {:?}: skipped {name:?} from {p}: not a valid environment variable name",
                    container.name
                ));
                continue;
            }
            vars.set(&name, Template::text(v));
        }
    }
    for (i, var) in container.env.iter().flatten().enumerate() {
        let p = path.child("env").index(i);
        if let Err(e) = names::env_var_name(&var.name) {
            if var.name.is_empty() {
                errs.required(&p.child("name"));
            } else {
                errs.add(&p.child("name"), e);
            }
            continue;
        }
        if let Some(v) = env_value(ctx, container, var, &vars, &p, errs) {
            vars.set(&var.name, v);
        }
    }
    vars
}

/// An unset reference: fine when optional, an error otherwise.
fn missing(path: &FieldPath, kind: &str, name: &str, optional: Option<bool>, errs: &mut Errors) {
    if name.is_empty() {
        errs.required(&path.child("name"));
    } else if optional != Some(true) {
        errs.add(
            &path.child("name"),
            format!("{kind} {name:?} not found in the file"),
        );
    }
}

/// The value of one `env` entry; `None` when it is not set (an optional
/// reference to something missing) or invalid.
fn env_value(
    ctx: &PodCtx<'_>,
    container: &Container,
    var: &EnvVar,
    vars: &EnvVars,
    path: &FieldPath,
    errs: &mut Errors,
) -> Option<Template> {
    let value = var.value.as_deref().unwrap_or_default();
    let Some(from) = &var.value_from else {
        return Some(vars.expand(value));
    };
    let fp = path.child("valueFrom");
    if !value.is_empty() {
        errs.add(&fp, "may not be specified when `value` is not empty");
        return None;
    }
    value_from(ctx, container, from, &fp, errs)
}

fn value_from(
    ctx: &PodCtx<'_>,
    container: &Container,
    from: &EnvVarSource,
    path: &FieldPath,
    errs: &mut Errors,
) -> Option<Template> {
    let count = [
        from.field_ref.is_some(),
        from.resource_field_ref.is_some(),
        from.config_map_key_ref.is_some(),
        from.secret_key_ref.is_some(),
        from.file_key_ref.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if count == 0 {
        errs.add(path, "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`");
        return None;
    }
    if count > 1 {
        errs.add(path, "may not have more than one field specified at a time");
        return None;
    }
    if let Some(r) = &from.field_ref {
        return downward::field_value(
            ctx,
            r.api_version.as_deref(),
            &r.field_path,
            FieldUse::Env,
            &path.child("fieldRef"),
            errs,
        );
    }
    if let Some(r) = &from.resource_field_ref {
        let rp = path.child("resourceFieldRef");
        let target = r
            .container_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(&container.name);
        return resource_ref(
            ctx,
            target,
            &r.resource,
            r.divisor.as_ref().map(|d| d.0.as_str()),
            &rp,
            errs,
        )
        .map(Template::text);
    }
    if let Some(r) = &from.config_map_key_ref {
        let rp = path.child("configMapKeyRef");
        key_ref_checks(&rp, &r.name, &r.key, errs)?;
        let Some(cm) = ctx.config_map(&r.name) else {
            missing(&rp, "configmap", &r.name, r.optional, errs);
            return None;
        };
        return match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
            Some(v) => Some(Template::text(v.clone())),
            None => {
                missing_key(&rp, "configmap", &r.name, &r.key, r.optional, errs);
                None
            }
        };
    }
    if let Some(r) = &from.secret_key_ref {
        let rp = path.child("secretKeyRef");
        key_ref_checks(&rp, &r.name, &r.key, errs)?;
        let Some(s) = ctx.secret(&r.name) else {
            missing(&rp, "secret", &r.name, r.optional, errs);
            return None;
        };
        return match s.data.as_ref().and_then(|d| d.get(&r.key)) {
            Some(v) => Some(Template::text(String::from_utf8_lossy(&v.0).into_owned())),
            None => {
                missing_key(&rp, "secret", &r.name, &r.key, r.optional, errs);
                None
            }
        };
    }
    errs.add(
        &path.child("fileKeyRef"),
        "fileKeyRef is not supported by berth",
    );
    None
}

fn key_ref_checks(path: &FieldPath, name: &str, key: &str, errs: &mut Errors) -> Option<()> {
    let before = errs.len();
    if name.is_empty() {
        errs.required(&path.child("name"));
    }
    if key.is_empty() {
        errs.required(&path.child("key"));
    } else if let Err(e) = names::config_key(key) {
        errs.add(&path.child("key"), e);
    }
    (errs.len() == before).then_some(())
}

fn missing_key(
    path: &FieldPath,
    kind: &str,
    name: &str,
    key: &str,
    optional: Option<bool>,
    errs: &mut Errors,
) {
    if optional != Some(true) {
        errs.add(
            &path.child("key"),
            format!("{kind} {name:?} has no key {key:?}"),
        );
    }
}

/// A `resourceFieldRef`'s value for container `target`.
pub(crate) fn resource_ref(
    ctx: &PodCtx<'_>,
    target: &str,
    resource: &str,
    divisor: Option<&str>,
    path: &FieldPath,
    errs: &mut Errors,
) -> Option<String> {
    if !resources::FIELD_REF_RESOURCES.contains(&resource) {
        errs.unsupported(
            &path.child("resource"),
            resource,
            &resources::FIELD_REF_RESOURCES,
        );
        return None;
    }
    let divisor = match divisor
        .map(Amount::parse)
        .unwrap_or(Ok(Amount::from_units(1)))
    {
        Ok(d) if resources::valid_divisor(resource, d) => d,
        Ok(d) => {
            errs.add(
                &path.child("divisor"),
                format!("{d} is not a valid divisor for {resource}"),
            );
            return None;
        }
        Err(e) => {
            errs.add(&path.child("divisor"), e.to_string());
            return None;
        }
    };
    let Some(res) = ctx.resources.get(target) else {
        errs.add(
            &path.child("containerName"),
            format!("no container named {target:?}"),
        );
        return None;
    };
    resources::resource_field_value(res, resource, divisor, &ctx.node_allocatable())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::options::PlanOptions;
    use crate::manifest::parse::{parse, Manifest};
    use crate::manifest::resources::container_resources;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<Template> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| Template::text(*v))
        }
    }

    #[test]
    fn expansion_matches_kubernetes() {
        let v = vars(&[("A", "x"), ("B", "y")]);
        let e = |s: &str| expand(s, &v).as_static().unwrap();
        assert_eq!(e("$(A)-$(B)"), "x-y");
        assert_eq!(e("$$(A)"), "$(A)");
        assert_eq!(e("$$$(A)"), "$x");
        assert_eq!(e("$(C)"), "$(C)");
        assert_eq!(e("$(A"), "$(A");
        assert_eq!(e("$A $"), "$A $");
        assert_eq!(e("a$é"), "a$é");
        assert_eq!(e("$()"), "$()");
        assert_eq!(e("no refs"), "no refs");
    }

    #[test]
    fn deferred_values_render_later() {
        let lookup = |k: &str| (k == "IP").then(|| Template::deferred(Deferred::PodIp));
        let t = expand("http://$(IP):80", lookup);
        assert!(!t.is_static());
        let rt = RuntimeValues {
            pod_ips: vec!["10.0.0.5".into(), "fd00::5".into()],
            host_ips: vec![],
        };
        assert_eq!(t.render(&rt), "http://10.0.0.5:80");
        assert_eq!(rt.get(Deferred::PodIps), "10.0.0.5,fd00::5");
        assert_eq!(Template::deferred(Deferred::HostIp).render(&rt), "");
    }

    const FILE: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: conf}
data: {LEVEL: debug, bad=key: x, URL: "http://$(HOST)"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: hunter2}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: c
    image: berth.local/busybox:latest
    resources: {limits: {memory: 64Mi}}
    envFrom:
    - configMapRef: {name: conf}
    - prefix: S_
      secretRef: {name: creds}
    - configMapRef: {name: absent, optional: true}
    env:
    - {name: HOST, value: example}
    - {name: LEVEL, value: "$(LEVEL)-x"}
    - {name: GREETING, value: "hi $(HOST) $$(HOST) $(NOPE)"}
    - name: PASS
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: APP
      valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
    - name: IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - {name: URL2, value: "http://$(IP)/"}
    - name: MEM
      valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}
    - name: OPT
      valueFrom: {configMapKeyRef: {name: conf, key: missing, optional: true}}
    - {name: EMPTY}
"#;

    fn ctx_for<'a>(m: &'a Manifest, o: &'a PlanOptions) -> PodCtx<'a> {
        let pod = &m.pods[0].pod;
        let mut c = PodCtx::new(m, o, "web".into(), "default".into(), "u".into());
        c.labels = pod.metadata.labels.clone().unwrap_or_default();
        let mut e = Errors::new();
        for ct in &pod.spec.as_ref().unwrap().containers {
            c.resources.insert(
                ct.name.clone(),
                container_resources(&FieldPath::root("x"), ct.resources.as_ref(), &mut e),
            );
        }
        c
    }

    #[test]
    fn container_env_like_kubelet() {
        let m = parse(FILE).unwrap();
        let o = PlanOptions::default();
        let ctx = ctx_for(&m, &o);
        let c = &m.pods[0].pod.spec.as_ref().unwrap().containers[0];
        let mut e = Errors::new();
        let env = container_env(
            &ctx,
            c,
            &FieldPath::root("spec").child("containers").index(0),
            &mut e,
        );
        assert!(e.is_empty(), "{e}");
        let rt = RuntimeValues {
            pod_ips: vec!["10.1.0.2".into()],
            host_ips: vec![],
        };
        let got: Vec<(String, String)> = env
            .render(&rt)
            .into_iter()
            .map(|kv| (kv.key, kv.value))
            .collect();
        let want: Vec<(String, String)> = [
            ("LEVEL", "debug-x"),
            ("URL", "http://$(HOST)"),
            ("S_password", "hunter2"),
            ("HOST", "example"),
            ("GREETING", "hi example $(HOST) $(NOPE)"),
            ("PASS", "hunter2"),
            ("APP", "web"),
            ("IP", "10.1.0.2"),
            ("URL2", "http://10.1.0.2/"),
            ("MEM", "64"),
            ("EMPTY", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        assert!(!env.is_static());
        let w = ctx.take_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("bad=key"));
    }

    #[test]
    fn env_errors_name_fields() {
        let text = FILE.replace(
            "    - {name: EMPTY}",
            "    - {name: EMPTY}\n    - name: X\n      valueFrom: {configMapKeyRef: {name: conf, key: nokey}}\n    - name: Y\n      valueFrom: {secretKeyRef: {name: gone, key: k}}\n    - {name: \"A=B\", value: x}\n    - name: Z\n      value: v\n      valueFrom: {fieldRef: {fieldPath: metadata.name}}\n    - name: W\n      valueFrom: {}\n    - name: R\n      valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1Mi}}\n    - name: R2\n      valueFrom: {resourceFieldRef: {resource: limits.cpu, containerName: other}}",
        )
        .replace("    - configMapRef: {name: absent, optional: true}", "    - configMapRef: {name: absent}");
        let m = parse(&text).unwrap();
        let o = PlanOptions::default();
        let ctx = ctx_for(&m, &o);
        let c = &m.pods[0].pod.spec.as_ref().unwrap().containers[0];
        let mut e = Errors::new();
        container_env(
            &ctx,
            c,
            &FieldPath::root("spec").child("containers").index(0),
            &mut e,
        );
        let s = e.to_string();
        let expect = [
            "spec.containers[0].envFrom[2].configMapRef.name: configmap \"absent\" not found in the file",
            "spec.containers[0].env[10].valueFrom.configMapKeyRef.key: configmap \"conf\" has no key \"nokey\"",
            "spec.containers[0].env[11].valueFrom.secretKeyRef.name: secret \"gone\" not found in the file",
            "spec.containers[0].env[12].name: a valid environment variable name",
            "spec.containers[0].env[13].valueFrom: may not be specified when `value` is not empty",
            "spec.containers[0].env[14].valueFrom: must specify one of",
            "spec.containers[0].env[15].valueFrom.resourceFieldRef.divisor: 1048576 is not a valid divisor for limits.cpu",
            "spec.containers[0].env[16].valueFrom.resourceFieldRef.containerName: no container named \"other\"",
        ];
        for x in expect {
            assert!(s.contains(x), "missing {x:?} in\n{s}");
        }
        assert_eq!(e.len(), expect.len(), "{s}");
    }

    #[test]
    fn static_expansion_for_exec_probes() {
        let c = Container {
            env: Some(vec![
                EnvVar {
                    name: "A".into(),
                    value: Some("1".into()),
                    ..Default::default()
                },
                EnvVar {
                    name: "B".into(),
                    value: Some("$(A)".into()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let v = static_env(&c);
        assert_eq!(expand_static("$(B)/$(A)", &v), "$(A)/1");
    }
}
