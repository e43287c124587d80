//! The spec's annotations: the request's own, then the keys that identify a
//! Kubernetes container to tools that read OCI specs
//! (`io.kubernetes.cri.container-type`, `sandbox-id`, `container-name`, ...).

use std::collections::HashMap;

use berth_proto::v1::{ContainerConfig, PodSandboxConfig};

pub const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
pub const SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
pub const SANDBOX_UID: &str = "io.kubernetes.cri.sandbox-uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
pub const IMAGE_NAME: &str = "io.kubernetes.cri.image-name";

/// The value of [`CONTAINER_TYPE`] for an application container.
pub const TYPE_CONTAINER: &str = "container";

pub(crate) fn annotations(
    sandbox: &PodSandboxConfig,
    pod_id: &str,
    config: &ContainerConfig,
) -> HashMap<String, String> {
    let mut out = config.annotations.clone();
    let meta = sandbox.metadata.clone().unwrap_or_default();
    let image = config
        .image
        .as_ref()
        .map(|i| {
            if i.user_specified_image.is_empty() {
                i.image.clone()
            } else {
                i.user_specified_image.clone()
            }
        })
        .unwrap_or_default();
    let name = config
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    for (k, v) in [
        (CONTAINER_TYPE, TYPE_CONTAINER.to_string()),
        (SANDBOX_ID, pod_id.to_string()),
        (SANDBOX_NAME, meta.name),
        (SANDBOX_NAMESPACE, meta.namespace),
        (SANDBOX_UID, meta.uid),
        (CONTAINER_NAME, name),
        (IMAGE_NAME, image),
    ] {
        out.insert(k.to_string(), v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::v1::{ContainerMetadata, ImageSpec, PodSandboxMetadata};

    #[test]
    fn runtime_keys_and_request_annotations() {
        let sandbox = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "web".into(),
                uid: "u-1".into(),
                namespace: "prod".into(),
                attempt: 0,
            }),
            ..Default::default()
        };
        let mut config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: "app".into(),
                attempt: 1,
            }),
            image: Some(ImageSpec {
                image: "sha256:abc".into(),
                ..Default::default()
            }),
            annotations: [
                ("custom".to_string(), "1".to_string()),
                (CONTAINER_TYPE.to_string(), "spoofed".to_string()),
            ]
            .into(),
            ..Default::default()
        };
        let got = annotations(&sandbox, "pod-1", &config);
        assert_eq!(got[CONTAINER_TYPE], "container");
        assert_eq!(got[SANDBOX_ID], "pod-1");
        assert_eq!(got[SANDBOX_NAME], "web");
        assert_eq!(got[SANDBOX_NAMESPACE], "prod");
        assert_eq!(got[SANDBOX_UID], "u-1");
        assert_eq!(got[CONTAINER_NAME], "app");
        assert_eq!(got[IMAGE_NAME], "sha256:abc");
        assert_eq!(got["custom"], "1");
        config.image = Some(ImageSpec {
            image: "sha256:abc".into(),
            user_specified_image: "busybox:1.36".into(),
            ..Default::default()
        });
        assert_eq!(
            annotations(&sandbox, "pod-1", &config)[IMAGE_NAME],
            "busybox:1.36"
        );
    }
}
