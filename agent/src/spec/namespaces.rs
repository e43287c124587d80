//! Which namespaces a container gets: it joins the pod's network (the pod's
//! netns file), IPC and UTS namespaces (the pause process's), its PID
//! namespace follows `namespace_options.pid` (POD: the pause process's,
//! CONTAINER: a new one, NODE: the host's, TARGET: another container's), NODE
//! modes share the host's, and mount and cgroup namespaces are always new.
//! A host-network pod also keeps the host's UTS namespace (hostname).

use std::path::PathBuf;

use berth_proto::v1::{ContainerConfig, NamespaceMode, NamespaceOption, PodSandboxConfig};
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use super::{SandboxInfo, SpecError};

const FIELD: &str = "config.linux.security_context.namespace_options";

/// The namespace modes that apply to one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Modes {
    pub network: NamespaceMode,
    pub pid: NamespaceMode,
    pub ipc: NamespaceMode,
}

impl Modes {
    /// The container's namespace options, else the pod's, else all POD.
    pub(crate) fn of(
        sandbox: &PodSandboxConfig,
        config: &ContainerConfig,
    ) -> Result<Self, SpecError> {
        let container = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|sc| sc.namespace_options.as_ref());
        let pod = sandbox
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|sc| sc.namespace_options.as_ref());
        let Some(options) = container.or(pod) else {
            return Ok(Self {
                network: NamespaceMode::Pod,
                pid: NamespaceMode::Pod,
                ipc: NamespaceMode::Pod,
            });
        };
        check_userns(options)?;
        let mode = |value: i32, name: &str| {
            NamespaceMode::try_from(value).map_err(|_| {
                SpecError::invalid(
                    format!("{FIELD}.{name}"),
                    format!("unknown namespace mode {value}"),
                )
            })
        };
        Ok(Self {
            network: mode(options.network, "network")?,
            pid: mode(options.pid, "pid")?,
            ipc: mode(options.ipc, "ipc")?,
        })
    }

    /// Whether the container shares the host's network (and UTS) namespace.
    pub(crate) fn host_network(&self) -> bool {
        self.network == NamespaceMode::Node
    }
}

/// Pod user namespaces (mappings in POD mode) are not implemented: refuse
/// them rather than run the pod with host ids.
fn check_userns(options: &NamespaceOption) -> Result<(), SpecError> {
    match &options.userns_options {
        Some(u)
            if u.mode == NamespaceMode::Pod as i32
                && (!u.uids.is_empty() || !u.gids.is_empty()) =>
        {
            Err(SpecError::invalid(
                format!("{FIELD}.userns_options"),
                "pod user namespaces are not supported",
            ))
        }
        _ => Ok(()),
    }
}

/// The `linux.namespaces` list.
pub(crate) fn namespaces(
    modes: Modes,
    info: &SandboxInfo,
) -> Result<Vec<LinuxNamespace>, SpecError> {
    let pause = |ns: &str| Some(PathBuf::from(format!("/proc/{}/ns/{ns}", info.pause_pid)));
    let mut list = vec![
        namespace(LinuxNamespaceType::Mount, None),
        namespace(LinuxNamespaceType::Cgroup, None),
    ];
    if !modes.host_network() {
        let netns = info.netns_path.clone().or_else(|| pause("net"));
        list.push(namespace(LinuxNamespaceType::Network, netns));
        list.push(namespace(LinuxNamespaceType::Uts, pause("uts")));
    }
    match modes.ipc {
        NamespaceMode::Node => {}
        NamespaceMode::Container => list.push(namespace(LinuxNamespaceType::Ipc, None)),
        _ => list.push(namespace(LinuxNamespaceType::Ipc, pause("ipc"))),
    }
    match modes.pid {
        NamespaceMode::Node => {}
        NamespaceMode::Container => list.push(namespace(LinuxNamespaceType::Pid, None)),
        NamespaceMode::Pod => list.push(namespace(LinuxNamespaceType::Pid, pause("pid"))),
        NamespaceMode::Target => {
            let pid = info.target_pid.ok_or_else(|| {
                SpecError::invalid(
                    format!("{FIELD}.target_id"),
                    "pid mode TARGET but the target container is not running",
                )
            })?;
            let path = PathBuf::from(format!("/proc/{pid}/ns/pid"));
            list.push(namespace(LinuxNamespaceType::Pid, Some(path)));
        }
    }
    Ok(list)
}

fn namespace(typ: LinuxNamespaceType, path: Option<PathBuf>) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns.set_path(path);
    ns
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::v1::{
        IdMapping, LinuxContainerConfig, LinuxContainerSecurityContext, LinuxPodSandboxConfig,
        LinuxSandboxSecurityContext, UserNamespace,
    };
    use std::collections::HashMap;

    fn info() -> SandboxInfo {
        SandboxInfo {
            pod_id: "pod".into(),
            pause_pid: 42,
            netns_path: Some("/run/netns/pod".into()),
            pod_dir: "/pods/pod".into(),
            cgroup_parent: String::new(),
            target_pid: None,
        }
    }

    fn modes(network: NamespaceMode, pid: NamespaceMode, ipc: NamespaceMode) -> Modes {
        Modes { network, pid, ipc }
    }

    fn table(list: &[LinuxNamespace]) -> HashMap<LinuxNamespaceType, Option<String>> {
        list.iter()
            .map(|ns| {
                (
                    ns.typ(),
                    ns.path().as_ref().map(|p| p.display().to_string()),
                )
            })
            .collect()
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn pod_modes_join_the_pause_process() {
        let got = table(
            &namespaces(
                modes(NamespaceMode::Pod, NamespaceMode::Pod, NamespaceMode::Pod),
                &info(),
            )
            .unwrap(),
        );
        assert_eq!(got[&LinuxNamespaceType::Network], some("/run/netns/pod"));
        assert_eq!(got[&LinuxNamespaceType::Uts], some("/proc/42/ns/uts"));
        assert_eq!(got[&LinuxNamespaceType::Ipc], some("/proc/42/ns/ipc"));
        assert_eq!(got[&LinuxNamespaceType::Pid], some("/proc/42/ns/pid"));
        assert_eq!(got[&LinuxNamespaceType::Mount], None);
        assert_eq!(got[&LinuxNamespaceType::Cgroup], None);
        assert_eq!(got.len(), 6);
    }

    #[test]
    fn container_pid_is_new_and_node_modes_use_the_host() {
        let got = table(
            &namespaces(
                modes(
                    NamespaceMode::Node,
                    NamespaceMode::Container,
                    NamespaceMode::Node,
                ),
                &info(),
            )
            .unwrap(),
        );
        assert_eq!(got[&LinuxNamespaceType::Pid], None);
        assert!(!got.contains_key(&LinuxNamespaceType::Network));
        assert!(!got.contains_key(&LinuxNamespaceType::Uts));
        assert!(!got.contains_key(&LinuxNamespaceType::Ipc));
        let got = table(
            &namespaces(
                modes(NamespaceMode::Pod, NamespaceMode::Node, NamespaceMode::Pod),
                &info(),
            )
            .unwrap(),
        );
        assert!(!got.contains_key(&LinuxNamespaceType::Pid));
    }

    #[test]
    fn netns_falls_back_to_the_pause_process() {
        let mut i = info();
        i.netns_path = None;
        let got = table(
            &namespaces(
                modes(NamespaceMode::Pod, NamespaceMode::Pod, NamespaceMode::Pod),
                &i,
            )
            .unwrap(),
        );
        assert_eq!(got[&LinuxNamespaceType::Network], some("/proc/42/ns/net"));
    }

    #[test]
    fn target_pid_mode_needs_the_target() {
        let m = modes(
            NamespaceMode::Pod,
            NamespaceMode::Target,
            NamespaceMode::Pod,
        );
        let err = namespaces(m, &info()).unwrap_err();
        assert_eq!(
            err.field(),
            Some("config.linux.security_context.namespace_options.target_id")
        );
        let mut i = info();
        i.target_pid = Some(77);
        let got = table(&namespaces(m, &i).unwrap());
        assert_eq!(got[&LinuxNamespaceType::Pid], some("/proc/77/ns/pid"));
    }

    fn options(network: NamespaceMode, pid: NamespaceMode) -> NamespaceOption {
        NamespaceOption {
            network: network as i32,
            pid: pid as i32,
            ipc: NamespaceMode::Pod as i32,
            ..Default::default()
        }
    }

    fn sandbox_with(opts: NamespaceOption) -> PodSandboxConfig {
        PodSandboxConfig {
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(opts),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn container_with(opts: NamespaceOption) -> ContainerConfig {
        ContainerConfig {
            linux: Some(LinuxContainerConfig {
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(opts),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn modes_come_from_the_container_then_the_pod() {
        let sandbox = sandbox_with(options(NamespaceMode::Node, NamespaceMode::Pod));
        let m = Modes::of(&sandbox, &ContainerConfig::default()).unwrap();
        assert!(m.host_network());
        let container = container_with(options(NamespaceMode::Pod, NamespaceMode::Container));
        let m = Modes::of(&sandbox, &container).unwrap();
        assert_eq!(m.pid, NamespaceMode::Container);
        assert!(!m.host_network());
        let m = Modes::of(&PodSandboxConfig::default(), &ContainerConfig::default()).unwrap();
        assert_eq!(m.pid, NamespaceMode::Pod);
    }

    #[test]
    fn bad_mode_and_pod_userns_are_rejected() {
        let mut o = options(NamespaceMode::Pod, NamespaceMode::Pod);
        o.pid = 17;
        let err = Modes::of(&PodSandboxConfig::default(), &container_with(o)).unwrap_err();
        assert_eq!(
            err.field(),
            Some("config.linux.security_context.namespace_options.pid")
        );

        let mut o = options(NamespaceMode::Pod, NamespaceMode::Pod);
        o.userns_options = Some(UserNamespace {
            mode: NamespaceMode::Pod as i32,
            uids: vec![IdMapping {
                host_id: 100000,
                container_id: 0,
                length: 65536,
            }],
            gids: vec![],
        });
        let err = Modes::of(&PodSandboxConfig::default(), &container_with(o.clone())).unwrap_err();
        assert_eq!(
            err.field(),
            Some("config.linux.security_context.namespace_options.userns_options")
        );
        o.userns_options = Some(UserNamespace {
            mode: NamespaceMode::Node as i32,
            ..Default::default()
        });
        assert!(Modes::of(&PodSandboxConfig::default(), &container_with(o)).is_ok());
    }
}
