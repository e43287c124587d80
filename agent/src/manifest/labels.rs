//! The labels and annotations kubelet puts on CRI sandboxes and containers
//! (`io.kubernetes.pod.name`, `io.kubernetes.container.name`, the restart
//! count, the spec hash, ...), which let a runtime-side reader (berth's own
//! `berth pods`, crictl) map them back to the pod.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Container;

pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
pub const CONTAINER_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
pub const TERMINATION_MESSAGE_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";
pub const PRE_STOP_HANDLER: &str = "io.kubernetes.container.preStopHandler";
pub const CONTAINER_PORTS: &str = "io.kubernetes.container.ports";
pub const POD_TERMINATION_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";

/// The pod's identity.
#[derive(Debug, Clone, Copy)]
pub struct PodId<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
}

fn identity(id: PodId<'_>) -> HashMap<String, String> {
    [
        (POD_NAME, id.name),
        (POD_NAMESPACE, id.namespace),
        (POD_UID, id.uid),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Sandbox labels: the pod's labels plus its identity.
pub fn sandbox_labels(
    pod_labels: &BTreeMap<String, String>,
    id: PodId<'_>,
) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = pod_labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(identity(id));
    out
}

/// Container labels: the pod's identity and the container name.
pub fn container_labels(container: &str, id: PodId<'_>) -> HashMap<String, String> {
    let mut out = identity(id);
    out.insert(CONTAINER_NAME.into(), container.into());
    out
}

/// What the container's annotations say besides the restart count.
pub struct AnnotationInput<'a> {
    pub container: &'a Container,
    pub hash: &'a str,
    pub termination_message_path: &'a str,
    pub termination_message_policy: &'a str,
    /// The pod's `terminationGracePeriodSeconds`, when the spec sets it.
    pub grace_period: Option<i64>,
}

/// Container annotations as kubelet's `newContainerAnnotations` (minus the
/// restart count, which [`set_restart_count`] adds per start).
pub fn container_annotations(a: &AnnotationInput<'_>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    out.insert(CONTAINER_HASH.into(), a.hash.into());
    out.insert(
        TERMINATION_MESSAGE_PATH.into(),
        a.termination_message_path.into(),
    );
    out.insert(
        TERMINATION_MESSAGE_POLICY.into(),
        a.termination_message_policy.into(),
    );
    if let Some(g) = a.grace_period {
        out.insert(POD_TERMINATION_GRACE_PERIOD.into(), g.to_string());
    }
    if let Some(pre_stop) = a
        .container
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
    {
        if let Ok(json) = serde_json::to_string(pre_stop) {
            out.insert(PRE_STOP_HANDLER.into(), json);
        }
    }
    if let Some(ports) = a.container.ports.as_ref().filter(|p| !p.is_empty()) {
        if let Ok(json) = serde_json::to_string(ports) {
            out.insert(CONTAINER_PORTS.into(), json);
        }
    }
    out
}

pub fn set_restart_count(annotations: &mut HashMap<String, String>, count: u32) {
    annotations.insert(CONTAINER_RESTART_COUNT.into(), count.to_string());
}

/// A hash of the container's spec (FNV-1a 32 of its JSON, hex), which
/// changes when the spec changes: a static pod's container whose hash
/// changed is restarted.
pub fn container_hash(container: &Container) -> String {
    let json = serde_json::to_vec(container).unwrap_or_default();
    format!("{:x}", fnv1a32(&json))
}

fn fnv1a32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: PodId<'static> = PodId {
        name: "web",
        namespace: "default",
        uid: "u1",
    };

    #[test]
    fn labels() {
        let pod: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let s = sandbox_labels(&pod, ID);
        assert_eq!(s["app"], "web");
        assert_eq!(s[POD_NAME], "web");
        assert_eq!(s[POD_UID], "u1");
        let c = container_labels("nginx", ID);
        assert_eq!(c[CONTAINER_NAME], "nginx");
        assert_eq!(c[POD_NAMESPACE], "default");
        assert!(!c.contains_key("app"));
    }

    #[test]
    fn annotations_and_hash() {
        let c: Container = serde_yaml_ng::from_str(
            "name: c\nports: [{containerPort: 80}]\nlifecycle: {preStop: {exec: {command: [sh]}}}\n",
        )
        .unwrap();
        let h = container_hash(&c);
        let mut a = container_annotations(&AnnotationInput {
            container: &c,
            hash: &h,
            termination_message_path: "/dev/termination-log",
            termination_message_policy: "File",
            grace_period: Some(5),
        });
        set_restart_count(&mut a, 3);
        assert_eq!(a[CONTAINER_RESTART_COUNT], "3");
        assert_eq!(a[POD_TERMINATION_GRACE_PERIOD], "5");
        assert_eq!(a[CONTAINER_PORTS], r#"[{"containerPort":80}]"#);
        assert_eq!(a[PRE_STOP_HANDLER], r#"{"exec":{"command":["sh"]}}"#);
        let mut c2 = c.clone();
        assert_eq!(container_hash(&c2), h);
        c2.image = Some("other".into());
        assert_ne!(container_hash(&c2), h);
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
    }
}
