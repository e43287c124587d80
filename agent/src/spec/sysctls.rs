//! `linux.sysctl` from the pod's sysctls, keeping only those whose namespace
//! the container does not share with the host (a `net.*` sysctl in a
//! host-network pod would change the node).

use std::collections::HashMap;

use berth_proto::v1::{NamespaceMode, PodSandboxConfig};

use super::namespaces::Modes;

pub(crate) fn sysctls(sandbox: &PodSandboxConfig, modes: Modes) -> HashMap<String, String> {
    let all = sandbox.linux.as_ref().map(|l| &l.sysctls);
    all.into_iter()
        .flatten()
        .filter(|(key, _)| allowed(key, modes))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn allowed(key: &str, modes: Modes) -> bool {
    let ipc = key.starts_with("kernel.shm")
        || key.starts_with("kernel.msg")
        || key == "kernel.sem"
        || key.starts_with("fs.mqueue.");
    let net_or_uts =
        key.starts_with("net.") || key == "kernel.hostname" || key == "kernel.domainname";
    !(ipc && modes.ipc == NamespaceMode::Node || net_or_uts && modes.host_network())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::v1::LinuxPodSandboxConfig;

    #[test]
    fn host_namespaces_filter_their_sysctls() {
        let sandbox = PodSandboxConfig {
            linux: Some(LinuxPodSandboxConfig {
                sysctls: [
                    ("net.ipv4.ip_unprivileged_port_start", "0"),
                    ("kernel.shm_rmid_forced", "1"),
                    ("kernel.sem", "250 32000 100 128"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pod = Modes {
            network: NamespaceMode::Pod,
            pid: NamespaceMode::Pod,
            ipc: NamespaceMode::Pod,
        };
        assert_eq!(sysctls(&sandbox, pod).len(), 3);
        let host_net = Modes {
            network: NamespaceMode::Node,
            ..pod
        };
        let got = sysctls(&sandbox, host_net);
        assert!(!got.contains_key("net.ipv4.ip_unprivileged_port_start"));
        assert_eq!(got.len(), 2);
        let host_ipc = Modes {
            ipc: NamespaceMode::Node,
            ..pod
        };
        let got = sysctls(&sandbox, host_ipc);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            ["net.ipv4.ip_unprivileged_port_start"]
        );
        assert!(sysctls(&PodSandboxConfig::default(), pod).is_empty());
    }
}
