//! berthd's records turned into the CRI messages kubelet reads: pod
//! sandboxes (summary and status) and containers (summary and status), and
//! the label-selector and state filters of the list calls.

use std::collections::HashMap;

use berth_proto::v1::{
    self as cri, ContainerResources, ContainerState, LinuxPodSandboxStatus, Namespace, PodIp,
    PodSandboxNetworkStatus, PodSandboxState,
};

use super::records::{ContainerPhase, ContainerRecord, SandboxPhase, SandboxRecord};

/// CRI's pod state of a phase.
pub fn pod_state(phase: SandboxPhase) -> PodSandboxState {
    match phase {
        SandboxPhase::Ready => PodSandboxState::SandboxReady,
        SandboxPhase::Creating | SandboxPhase::NotReady => PodSandboxState::SandboxNotready,
    }
}

/// CRI's container state of a phase.
pub fn container_state(phase: ContainerPhase) -> ContainerState {
    match phase {
        ContainerPhase::Creating => ContainerState::ContainerUnknown,
        ContainerPhase::Created => ContainerState::ContainerCreated,
        ContainerPhase::Running => ContainerState::ContainerRunning,
        ContainerPhase::Exited => ContainerState::ContainerExited,
    }
}

/// The ListPodSandbox entry of a pod.
pub fn pod_summary(r: &SandboxRecord) -> cri::PodSandbox {
    cri::PodSandbox {
        id: r.id.clone(),
        metadata: r.config.metadata.clone(),
        state: pod_state(r.phase) as i32,
        created_at: r.created_at,
        labels: r.config.labels.clone(),
        annotations: r.config.annotations.clone(),
        runtime_handler: r.runtime_handler.clone(),
    }
}

/// The PodSandboxStatus of a pod.
pub fn pod_status(r: &SandboxRecord) -> cri::PodSandboxStatus {
    let namespace_options = r
        .config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|sc| sc.namespace_options.clone())
        .unwrap_or_default();
    let mut ips = r.ips.iter();
    let network = ips.next().map(|ip| PodSandboxNetworkStatus {
        ip: ip.clone(),
        additional_ips: ips.map(|ip| PodIp { ip: ip.clone() }).collect(),
    });
    cri::PodSandboxStatus {
        id: r.id.clone(),
        metadata: r.config.metadata.clone(),
        state: pod_state(r.phase) as i32,
        created_at: r.created_at,
        network: Some(network.unwrap_or_default()),
        linux: Some(LinuxPodSandboxStatus {
            namespaces: Some(Namespace {
                options: Some(namespace_options),
            }),
        }),
        labels: r.config.labels.clone(),
        annotations: r.config.annotations.clone(),
        runtime_handler: r.runtime_handler.clone(),
    }
}

/// The ListContainers entry of a container.
pub fn container_summary(r: &ContainerRecord) -> cri::Container {
    cri::Container {
        id: r.id.clone(),
        pod_sandbox_id: r.pod_id.clone(),
        metadata: r.config.metadata.clone(),
        image: r.config.image.clone(),
        image_ref: r.image_ref.clone(),
        state: container_state(r.phase) as i32,
        created_at: r.created_at,
        labels: r.config.labels.clone(),
        annotations: r.config.annotations.clone(),
        image_id: r.image_id.clone(),
    }
}

/// The ContainerStatus of a container.
pub fn container_status(r: &ContainerRecord) -> cri::ContainerStatus {
    cri::ContainerStatus {
        id: r.id.clone(),
        metadata: r.config.metadata.clone(),
        state: container_state(r.phase) as i32,
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        exit_code: r.exit_code,
        image: r.config.image.clone(),
        image_ref: r.image_ref.clone(),
        reason: r.reason.clone(),
        message: r.message.clone(),
        labels: r.config.labels.clone(),
        annotations: r.config.annotations.clone(),
        mounts: r.config.mounts.clone(),
        log_path: r.log_path.display().to_string(),
        resources: r.config.linux.as_ref().map(|l| ContainerResources {
            linux: l.resources.clone(),
            windows: None,
        }),
        image_id: r.image_id.clone(),
        user: None,
    }
}

/// Whether `labels` has every pair of `selector`.
pub fn labels_match(labels: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether `id` is selected by a filter id (empty: any; else the id or a
/// prefix of it, as crictl sends truncated ids).
pub fn id_matches(id: &str, filter: &str) -> bool {
    filter.is_empty() || id.starts_with(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_like_containerd() {
        let labels: HashMap<_, _> = [("app".to_string(), "web".to_string())].into();
        assert!(labels_match(&labels, &HashMap::new()));
        assert!(labels_match(&labels, &labels));
        let other: HashMap<_, _> = [("app".to_string(), "db".to_string())].into();
        assert!(!labels_match(&labels, &other));
        assert!(id_matches("abcdef", ""));
        assert!(id_matches("abcdef", "abc"));
        assert!(!id_matches("abcdef", "abd"));
    }
}
