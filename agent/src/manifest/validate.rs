//! The structural checks of a pod that no translation step owns, with the
//! apiserver's and kubelet's rules: metadata names, container names
//! (present, RFC 1123, unique across init and app containers), images,
//! restart and pull policies, what init containers may have, ports
//! (containerPort required, hostPort rules, unique names and host ports),
//! and the fields berth cannot honour on a node without a cluster.

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::field::{Errors, FieldPath};
use super::names;
use super::restart::RestartPolicy;

/// Checks `metadata` (of any object).
pub fn metadata(meta: &ObjectMeta, errs: &mut Errors) {
    let p = FieldPath::root("metadata");
    match meta.name.as_deref() {
        None | Some("") => errs.required(&p.child("name")),
        Some(n) => {
            if let Err(e) = names::dns_subdomain(n) {
                errs.add(&p.child("name"), e);
            }
        }
    }
    if let Some(ns) = meta.namespace.as_deref().filter(|n| !n.is_empty()) {
        if let Err(e) = names::dns_label(ns) {
            errs.add(&p.child("namespace"), e);
        }
    }
    for (k, v) in meta.labels.iter().flatten() {
        let lp = p.child("labels").key(k);
        if let Err(e) = names::qualified_name(k) {
            errs.add(&lp, format!("invalid key: {e}"));
        }
        let ok = v.is_empty()
            || (v.len() <= 63
                && v.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
                && v.as_bytes()[0].is_ascii_alphanumeric()
                && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric());
        if !ok {
            errs.add(&lp, format!("invalid value {v:?}: must be 63 characters or less, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"));
        }
    }
    for k in meta.annotations.iter().flatten().map(|(k, _)| k) {
        if let Err(e) = names::qualified_name(k) {
            errs.add(&p.child("annotations").key(k), format!("invalid key: {e}"));
        }
    }
}

/// The pod's restart policy (Always when unset or invalid; invalid values
/// are reported).
pub fn restart_policy(spec: &PodSpec, errs: &mut Errors) -> RestartPolicy {
    let v = spec.restart_policy.as_deref().unwrap_or_default();
    RestartPolicy::parse(v).unwrap_or_else(|| {
        errs.unsupported(
            &FieldPath::root("spec").child("restartPolicy"),
            v,
            &RestartPolicy::NAMES,
        );
        RestartPolicy::Always
    })
}

/// Whether init container `c` is a sidecar (`restartPolicy: Always`).
pub fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The structural checks of `pod`'s spec (at `spec`).
pub fn pod(pod: &Pod, errs: &mut Errors) {
    metadata(&pod.metadata, errs);
    let sp = FieldPath::root("spec");
    let Some(spec) = &pod.spec else {
        errs.required(&sp);
        return;
    };
    if spec.containers.is_empty() {
        errs.required(&sp.child("containers"));
    }
    if spec.termination_grace_period_seconds.is_some_and(|g| g < 0) {
        errs.add(
            &sp.child("terminationGracePeriodSeconds"),
            "must be greater than or equal to 0",
        );
    }
    if spec.active_deadline_seconds.is_some_and(|d| d <= 0) {
        errs.add(
            &sp.child("activeDeadlineSeconds"),
            "must be between 1 and 2147483647, inclusive",
        );
    }
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.add(
            &sp.child("ephemeralContainers"),
            "may not be set on creation",
        );
    }
    if spec.resources.is_some() {
        errs.add(
            &sp.child("resources"),
            "pod-level resources are not supported by berth",
        );
    }
    if spec.resource_claims.as_ref().is_some_and(|c| !c.is_empty()) {
        errs.add(
            &sp.child("resourceClaims"),
            "resource claims are not supported by berth",
        );
    }
    if let Some(os) = &spec.os {
        if os.name != "linux" {
            errs.unsupported(&sp.child("os").child("name"), &os.name, &["linux"]);
        }
    }
    let host_network = spec.host_network == Some(true);
    let mut names_seen = BTreeSet::new();
    let mut host_ports = BTreeSet::new();
    let groups: [(&str, &[Container], bool); 2] = [
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
            true,
        ),
        ("containers", &spec.containers, false),
    ];
    for (field, list, init) in groups {
        for (i, c) in list.iter().enumerate() {
            let cp = sp.child(field).index(i);
            container(c, init, &cp, &mut names_seen, errs);
            let stop_signal = c.lifecycle.as_ref().and_then(|l| l.stop_signal.as_ref());
            if stop_signal.is_some() && spec.os.is_none() {
                errs.add(
                    &cp.child("lifecycle").child("stopSignal"),
                    "may not be set for containers with empty `spec.os.name`",
                );
            }
            ports(c, host_network, &cp, &mut host_ports, errs);
        }
    }
}

fn container(
    c: &Container,
    init: bool,
    path: &FieldPath,
    seen: &mut BTreeSet<String>,
    errs: &mut Errors,
) {
    let np = path.child("name");
    if c.name.is_empty() {
        errs.required(&np);
    } else if let Err(e) = names::dns_label(&c.name) {
        errs.add(&np, e);
    } else if !seen.insert(c.name.clone()) {
        errs.duplicate(&np, &c.name);
    }
    if c.image.as_deref().unwrap_or_default().trim().is_empty() {
        errs.required(&path.child("image"));
    }
    if let Some(p) = c.image_pull_policy.as_deref() {
        if !["Always", "IfNotPresent", "Never"].contains(&p) {
            errs.unsupported(
                &path.child("imagePullPolicy"),
                p,
                &["Always", "IfNotPresent", "Never"],
            );
        }
    }
    match (c.restart_policy.as_deref(), init) {
        (None, _) | (Some("Always"), true) => {}
        (Some(p), true) => errs.unsupported(&path.child("restartPolicy"), p, &["Always"]),
        (Some(_), false) => errs.add(
            &path.child("restartPolicy"),
            "may not be set for non-init containers",
        ),
    }
    if c.restart_policy_rules
        .as_ref()
        .is_some_and(|r| !r.is_empty())
    {
        errs.add(
            &path.child("restartPolicyRules"),
            "container restart rules are not supported by berth",
        );
    }
    if init && !is_sidecar(c) {
        let set = [
            ("lifecycle", c.lifecycle.is_some()),
            ("livenessProbe", c.liveness_probe.is_some()),
            ("readinessProbe", c.readiness_probe.is_some()),
            ("startupProbe", c.startup_probe.is_some()),
        ];
        for (field, is_set) in set {
            if is_set {
                errs.add(
                    &path.child(field),
                    "may not be set for init containers without restartPolicy=Always",
                );
            }
        }
    }
    if c.volume_devices.as_ref().is_some_and(|d| !d.is_empty()) {
        errs.add(
            &path.child("volumeDevices"),
            "raw block volumes are not supported by berth",
        );
    }
    if c.stdin_once == Some(true) && c.stdin != Some(true) {
        errs.add(&path.child("stdinOnce"), "requires stdin to be true");
    }
    if let Some(w) = c.working_dir.as_deref().filter(|w| !w.is_empty()) {
        if !w.starts_with('/') {
            errs.add(&path.child("workingDir"), "must be an absolute path");
        }
    }
}

fn ports(
    c: &Container,
    host_network: bool,
    path: &FieldPath,
    host_ports: &mut BTreeSet<(String, i32, String)>,
    errs: &mut Errors,
) {
    let mut port_names = BTreeSet::new();
    for (i, p) in c.ports.iter().flatten().enumerate() {
        let pp = path.child("ports").index(i);
        if p.container_port == 0 {
            errs.required(&pp.child("containerPort"));
        } else if !(1..=65535).contains(&p.container_port) {
            errs.add(
                &pp.child("containerPort"),
                "must be between 1 and 65535, inclusive",
            );
        }
        let protocol = p.protocol.clone().unwrap_or_else(|| "TCP".into());
        if !["TCP", "UDP", "SCTP"].contains(&protocol.as_str()) {
            errs.unsupported(&pp.child("protocol"), &protocol, &["SCTP", "TCP", "UDP"]);
        }
        if let Some(n) = p.name.as_deref().filter(|n| !n.is_empty()) {
            if let Err(e) = names::port_name(n) {
                errs.add(&pp.child("name"), e);
            } else if !port_names.insert(n.to_string()) {
                errs.duplicate(&pp.child("name"), n);
            }
        }
        let host_port = p.host_port.unwrap_or(0);
        if !(0..=65535).contains(&host_port) {
            errs.add(
                &pp.child("hostPort"),
                "must be between 1 and 65535, inclusive",
            );
            continue;
        }
        if host_network && host_port != 0 && host_port != p.container_port {
            errs.add(
                &pp.child("hostPort"),
                "must match `containerPort` when `hostNetwork` is true",
            );
        }
        let host_ip = p.host_ip.clone().unwrap_or_default();
        if !host_ip.is_empty() && host_ip.parse::<IpAddr>().is_err() {
            errs.add(&pp.child("hostIP"), "must be a valid IP address");
        }
        let effective = if host_network && host_port == 0 {
            p.container_port
        } else {
            host_port
        };
        if effective != 0 && !host_ports.insert((protocol.clone(), effective, host_ip)) {
            errs.duplicate(&pp.child("hostPort"), &format!("{effective}/{protocol}"));
        }
    }
}

/// Fields berth reads but cannot honour on a node of its own; each gives a
/// warning (kubelet's scheduling and cluster fields, SELinux, AppArmor).
pub fn ignored(spec: &PodSpec) -> Vec<String> {
    let mut out = Vec::new();
    let sp = FieldPath::root("spec");
    let mut note = |path: FieldPath, why: &str| out.push(format!("{path}: ignored: {why}"));
    if spec
        .runtime_class_name
        .as_deref()
        .is_some_and(|r| !r.is_empty())
    {
        note(sp.child("runtimeClassName"), "berth has one runtime");
    }
    if spec
        .image_pull_secrets
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        note(
            sp.child("imagePullSecrets"),
            "registry credentials come from berth's registry config",
        );
    }
    if let Some(sc) = &spec.security_context {
        if sc.se_linux_options.is_some() {
            note(
                sp.child("securityContext").child("seLinuxOptions"),
                "the node has no SELinux",
            );
        }
        if sc
            .app_armor_profile
            .as_ref()
            .is_some_and(|p| p.type_ != "Unconfined")
        {
            note(
                sp.child("securityContext").child("appArmorProfile"),
                "the node has no AppArmor",
            );
        }
    }
    let groups: [(&str, &[Container]); 2] = [
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
        ("containers", &spec.containers),
    ];
    for (field, list) in groups {
        for (i, c) in list.iter().enumerate() {
            let cp = sp.child(field).index(i).child("securityContext");
            let Some(sc) = &c.security_context else {
                continue;
            };
            if sc.se_linux_options.is_some() {
                note(cp.child("seLinuxOptions"), "the node has no SELinux");
            }
            if sc
                .app_armor_profile
                .as_ref()
                .is_some_and(|p| p.type_ != "Unconfined")
            {
                note(cp.child("appArmorProfile"), "the node has no AppArmor");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Vec<String> {
        let pod: Pod = serde_yaml_ng::from_str(yaml).unwrap();
        let mut e = Errors::new();
        super::pod(&pod, &mut e);
        e.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn good_pod() {
        let v = check(
            r#"
metadata: {name: web, labels: {app: web, app.kubernetes.io/part-of: shop}}
spec:
  initContainers:
  - {name: init, image: b}
  - {name: log, image: b, restartPolicy: Always, readinessProbe: {exec: {command: [x]}}}
  containers:
  - name: web
    image: b
    ports: [{name: http, containerPort: 80, hostPort: 8080}, {containerPort: 53, protocol: UDP, hostPort: 8080}]
"#,
        );
        assert!(v.is_empty(), "{v:#?}");
    }

    #[test]
    fn structural_errors() {
        let v = check(
            r#"
metadata: {labels: {"bad key!": x}}
spec:
  restartPolicy: Sometimes
  terminationGracePeriodSeconds: -1
  initContainers:
  - {name: init, image: b, livenessProbe: {exec: {command: [x]}}, restartPolicy: OnFailure}
  containers:
  - {image: b}
  - {name: init, image: b}
  - {name: Web, image: ""}
  - name: p
    image: b
    restartPolicy: Always
    imagePullPolicy: Sometimes
    workingDir: rel
    ports:
    - {hostPort: 80}
    - {name: http, containerPort: 81}
    - {name: http, containerPort: 82, hostPort: 9000}
    - {containerPort: 83, hostPort: 9000, protocol: ICMP}
    - {containerPort: 84, hostPort: 9000}
    - {containerPort: 85, hostIP: nope}
"#,
        );
        let expect = [
            "metadata.name: required",
            "metadata.labels[bad key!]: invalid key",
            "spec.terminationGracePeriodSeconds: must be greater than or equal to 0",
            "spec.initContainers[0].restartPolicy: unsupported value \"OnFailure\": supported values: \"Always\"",
            "spec.initContainers[0].livenessProbe: may not be set for init containers without restartPolicy=Always",
            "spec.containers[0].name: required",
            "spec.containers[1].name: duplicate value \"init\"",
            "spec.containers[2].name: a lowercase RFC 1123 label",
            "spec.containers[2].image: required",
            "spec.containers[3].imagePullPolicy: unsupported value \"Sometimes\"",
            "spec.containers[3].restartPolicy: may not be set for non-init containers",
            "spec.containers[3].workingDir: must be an absolute path",
            "spec.containers[3].ports[0].containerPort: required",
            "spec.containers[3].ports[2].name: duplicate value \"http\"",
            "spec.containers[3].ports[3].protocol: unsupported value \"ICMP\"",
            "spec.containers[3].ports[4].hostPort: duplicate value \"9000/TCP\"",
            "spec.containers[3].ports[5].hostIP: must be a valid IP address",
        ];
        for (got, want) in v.iter().zip(expect.iter()) {
            assert!(
                got.starts_with(want),
                "got {got:?}, want {want:?}\nall: {v:#?}"
            );
        }
        assert_eq!(v.len(), expect.len(), "{v:#?}");
        // restartPolicy is checked where it is read.
        let pod: Pod =
            serde_yaml_ng::from_str("spec: {restartPolicy: Sometimes, containers: []}").unwrap();
        let mut e = Errors::new();
        assert_eq!(
            restart_policy(pod.spec.as_ref().unwrap(), &mut e),
            RestartPolicy::Always
        );
        assert!(e.to_string().starts_with("spec.restartPolicy: unsupported value \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""));
    }

    #[test]
    fn stop_signal_needs_os_and_ignored_fields_warn() {
        let v = check("metadata: {name: s}\nspec:\n  containers:\n  - {name: a, image: b, lifecycle: {stopSignal: SIGUSR1}}\n");
        assert_eq!(v, ["spec.containers[0].lifecycle.stopSignal: may not be set for containers with empty `spec.os.name`"]);
        let v = check("metadata: {name: s}\nspec:\n  os: {name: linux}\n  containers:\n  - {name: a, image: b, lifecycle: {stopSignal: SIGUSR1}}\n");
        assert!(v.is_empty(), "{v:?}");
        let pod: Pod = serde_yaml_ng::from_str(
            "spec:\n  runtimeClassName: gvisor\n  securityContext: {seLinuxOptions: {level: s0}}\n  containers:\n  - {name: a, securityContext: {appArmorProfile: {type: RuntimeDefault}}}\n",
        )
        .unwrap();
        assert_eq!(
            ignored(pod.spec.as_ref().unwrap()),
            [
                "spec.runtimeClassName: ignored: berth has one runtime",
                "spec.securityContext.seLinuxOptions: ignored: the node has no SELinux",
                "spec.containers[0].securityContext.appArmorProfile: ignored: the node has no AppArmor",
            ]
        );
    }

    #[test]
    fn host_network_ports() {
        let v = check(
            "metadata: {name: h}\nspec:\n  hostNetwork: true\n  containers:\n  - {name: a, image: b, ports: [{containerPort: 80, hostPort: 8080}, {containerPort: 81}]}\n  - {name: c, image: b, ports: [{containerPort: 81}]}\n",
        );
        assert_eq!(
            v,
            [
                "spec.containers[0].ports[0].hostPort: must match `containerPort` when `hostNetwork` is true",
                "spec.containers[1].ports[0].hostPort: duplicate value \"81/TCP\"",
            ]
        );
        assert_eq!(check("metadata: {name: x}\n"), ["spec: required"]);
        assert_eq!(
            check("metadata: {name: x}\nspec: {containers: []}\n"),
            ["spec.containers: required"]
        );
    }
}
