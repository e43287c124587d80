//! The pod the CRI bench starts, as kubelet would describe it: a sandbox
//! (own network, IPC and UTS namespaces, a cgroup parent under the bench's
//! own, a log directory) and one busybox `sleep` container, both labelled
//! with the bench run so leftovers can be found and removed.

use std::collections::HashMap;
use std::path::Path;

use berth_proto::v1::{
    ContainerConfig, ContainerMetadata, ImageSpec, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata,
};

/// The label every pod of one bench run carries; its value is the run id.
pub const RUN_LABEL: &str = "berth-bench.run";
/// The Kubernetes namespace of the bench's pods.
pub const POD_NAMESPACE: &str = "berth-bench";
/// The container's image (imported into every daemon before the run).
pub const SLEEP_IMAGE: &str = "docker.io/berth/bench-sleep:1";
/// What the container runs (the image's command too).
pub const SLEEP_COMMAND: [&str; 2] = ["/bin/sleep", "3600"];

/// Where one subject's pods go.
#[derive(Debug, Clone)]
pub struct PodPlace<'a> {
    /// The run id (the [`RUN_LABEL`] value, part of every pod uid).
    pub run: &'a str,
    /// The cgroup parent of this subject's pods (`/` + path).
    pub cgroup_parent: &'a str,
    /// The directory under which each pod gets its log directory.
    pub log_root: &'a Path,
}

/// The sandbox config of pod `n`.
pub fn sandbox_config(place: &PodPlace, n: usize) -> PodSandboxConfig {
    let name = format!("bench-{n}");
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.clone(),
            uid: format!("{}-{n}", place.run),
            namespace: POD_NAMESPACE.to_string(),
            attempt: 0,
        }),
        hostname: name.clone(),
        log_directory: place.log_root.join(&name).display().to_string(),
        labels: HashMap::from([(RUN_LABEL.to_string(), place.run.to_string())]),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("{}/pod{n}", place.cgroup_parent),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Pod as i32,
                    pid: NamespaceMode::Container as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The `sleep` container of every pod.
pub fn container_config(place: &PodPlace) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "sleep".to_string(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: SLEEP_IMAGE.to_string(),
            ..Default::default()
        }),
        command: SLEEP_COMMAND.iter().map(|arg| arg.to_string()).collect(),
        log_path: "sleep.log".to_string(),
        labels: HashMap::from([(RUN_LABEL.to_string(), place.run.to_string())]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_unique_labelled_and_placed() {
        let place = PodPlace {
            run: "r1",
            cgroup_parent: "/berth-bench-1/containerd",
            log_root: Path::new("/tmp/logs"),
        };
        let (a, b) = (sandbox_config(&place, 0), sandbox_config(&place, 1));
        let meta = |config: &PodSandboxConfig| config.metadata.clone().unwrap();
        assert_ne!(meta(&a).uid, meta(&b).uid);
        assert_ne!(meta(&a).name, meta(&b).name);
        assert_eq!(a.labels[RUN_LABEL], "r1");
        assert_eq!(a.log_directory, "/tmp/logs/bench-0");
        assert_eq!(
            a.linux.unwrap().cgroup_parent,
            "/berth-bench-1/containerd/pod0"
        );
        let container = container_config(&place);
        assert_eq!(container.image.unwrap().image, SLEEP_IMAGE);
        assert_eq!(container.command, ["/bin/sleep", "3600"]);
    }
}
