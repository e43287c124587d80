//! Pod sandboxes: RunPodSandbox, StopPodSandbox, RemovePodSandbox,
//! PodSandboxStatus and ListPodSandbox, with kubelet's semantics.
//!
//! RunPodSandbox, in order: reserve the name, persist a `creating` record,
//! pin the netns, mount the pod's /dev/shm, then at the same time wire the
//! netns (veth, IPAM, host ports) and spawn the pod's monitor and start the
//! pause process, then write the pod files (hostname, hosts, resolv.conf:
//! they need the pod's IP). Any failure undoes every step
//! (see [`Daemon::release_sandbox`]); a crash mid-way is undone at restart.
//! Stop and Remove are idempotent, and succeed for pods already removed.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use berth_cni::{PodNetworkRequest, PortMapping, Protocol};
use berth_proto::v1::{
    self as cri, ContainerEventType, NamespaceMode, PodSandboxConfig, PodSandboxMetadata,
    RunPodSandboxRequest,
};
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::convert;
use super::error::{DaemonError, Result};
use super::records::{self, SandboxPhase, SandboxRecord, SANDBOX_RECORD};
use super::store::{lock, new_id, Pod};
use super::time::now_ns;
use super::Daemon;
use crate::monitor::protocol::{PauseConfig, PidMode};
use crate::monitor::{self, SpawnConfig};
use crate::spec::{self, pod_files};

/// The pod's /dev/shm, as kubelet sizes it.
const SHM_OPTIONS: &str = "mode=1777,size=65536k";

/// The key that must be unique among pods: `name_namespace_uid_attempt`.
pub fn pod_name_key(m: &PodSandboxMetadata) -> String {
    format!("{}_{}_{}_{}", m.name, m.namespace, m.uid, m.attempt)
}

/// The pod's namespace options (all POD when unset).
fn namespace_options(config: &PodSandboxConfig) -> cri::NamespaceOption {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|sc| sc.namespace_options.clone())
        .unwrap_or_default()
}

fn is_node(mode: i32) -> bool {
    mode == NamespaceMode::Node as i32
}

/// Checks what RunPodSandbox needs before it creates anything.
fn validate(config: &PodSandboxConfig, runtime_handler: &str) -> Result<()> {
    let m = config
        .metadata
        .as_ref()
        .ok_or_else(|| DaemonError::invalid("config.metadata", "missing"))?;
    for (field, value) in [
        ("config.metadata.name", &m.name),
        ("config.metadata.namespace", &m.namespace),
        ("config.metadata.uid", &m.uid),
    ] {
        if value.is_empty() {
            return Err(DaemonError::invalid(field, "empty"));
        }
    }
    if !runtime_handler.is_empty() && runtime_handler != super::runtime_service::HANDLER {
        return Err(DaemonError::invalid(
            "runtime_handler",
            format!(
                "no runtime handler {runtime_handler:?}; berth has only {:?}",
                super::runtime_service::HANDLER
            ),
        ));
    }
    if !config.log_directory.is_empty() && !Path::new(&config.log_directory).is_absolute() {
        return Err(DaemonError::invalid(
            "config.log_directory",
            format!("{:?} is not an absolute path", config.log_directory),
        ));
    }
    let ns = namespace_options(config);
    if ns.pid == NamespaceMode::Target as i32 {
        return Err(DaemonError::invalid(
            "config.linux.security_context.namespace_options.pid",
            "TARGET is for containers, not pods",
        ));
    }
    port_mappings(config)?;
    Ok(())
}

/// The pod's host ports, checked.
fn port_mappings(config: &PodSandboxConfig) -> Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    for (i, p) in config.port_mappings.iter().enumerate() {
        let field = |f: &str| format!("config.port_mappings[{i}].{f}");
        let port = |f: &str, v: i32| {
            u16::try_from(v).ok().filter(|v| *v > 0).ok_or_else(|| {
                DaemonError::invalid(field(f), format!("{v} is not a port (1-65535)"))
            })
        };
        if p.host_port == 0 {
            continue; // a containerPort without hostPort: nothing to map
        }
        let protocol = match cri::Protocol::try_from(p.protocol) {
            Ok(cri::Protocol::Tcp) => Protocol::Tcp,
            Ok(cri::Protocol::Udp) => Protocol::Udp,
            Ok(cri::Protocol::Sctp) => Protocol::Sctp,
            Err(_) => {
                return Err(DaemonError::invalid(
                    field("protocol"),
                    format!("unknown protocol {}", p.protocol),
                ))
            }
        };
        let host_ip = match p.host_ip.as_str() {
            "" => None,
            s => Some(s.parse::<IpAddr>().map_err(|_| {
                DaemonError::invalid(field("host_ip"), format!("{s:?} is not an IP address"))
            })?),
        };
        out.push(PortMapping {
            protocol,
            container_port: port("container_port", p.container_port)?,
            host_port: port("host_port", p.host_port)?,
            host_ip,
        });
    }
    Ok(out)
}

impl Daemon {
    /// RunPodSandbox: returns the new sandbox's id.
    pub async fn run_pod_sandbox(self: &Arc<Self>, req: RunPodSandboxRequest) -> Result<String> {
        let config = req
            .config
            .ok_or_else(|| DaemonError::invalid("config", "missing"))?;
        validate(&config, &req.runtime_handler)?;
        let key = config
            .metadata
            .as_ref()
            .map(pod_name_key)
            .unwrap_or_default();
        let id = new_id()?;
        self.store.reserve_name("pod sandbox", &key, &id)?;
        let pod_cgroup = match config.linux.as_ref().map(|l| l.cgroup_parent.as_str()) {
            Some(parent) if !parent.is_empty() => parent.to_string(),
            _ => format!("{}/{id}", self.cfg.cgroup_parent.trim_end_matches('/')),
        };
        let record = SandboxRecord {
            id: id.clone(),
            config,
            runtime_handler: req.runtime_handler,
            created_at: now_ns(),
            phase: SandboxPhase::Creating,
            netns: None,
            ips: Vec::new(),
            pod_cgroup,
            pause_pid: None,
        };
        let pod = Arc::new(Pod {
            id: id.clone(),
            record: Mutex::new(record),
            op: tokio::sync::Mutex::new(()),
            monitor: Mutex::new(None),
            dir: self.pod_dir(&id),
            run_dir: self.pod_run_dir(&id),
        });
        let _op = pod.op.lock().await;
        match self.start_sandbox(&pod).await {
            Ok(()) => {
                self.store.add_pod(pod.clone());
                self.publish_pod(ContainerEventType::ContainerCreatedEvent, &pod);
                self.publish_pod(ContainerEventType::ContainerStartedEvent, &pod);
                tracing::info!(pod = %id, name = %key, "pod sandbox ready");
                Ok(id)
            }
            Err(e) => {
                tracing::warn!(pod = %id, "RunPodSandbox failed, undoing: {e}");
                self.release_sandbox(&pod).await;
                self.store.release_name(&key, &id);
                Err(e)
            }
        }
    }

    /// Persists the pod's record as it is now.
    fn save_pod(&self, pod: &Pod) -> Result<()> {
        records::save(&pod.dir, SANDBOX_RECORD, &pod.snapshot())
    }

    /// The steps of RunPodSandbox after validation. The network is wired
    /// while the monitor starts and clones the pause process (which only
    /// needs the pinned netns to exist), unless the pod sets `net.*`
    /// sysctls: those must land after the network setup, as before.
    async fn start_sandbox(self: &Arc<Self>, pod: &Arc<Pod>) -> Result<()> {
        for dir in [&pod.dir, &pod.run_dir] {
            std::fs::create_dir_all(dir).map_err(DaemonError::io("create", dir))?;
        }
        self.save_pod(pod)?;
        let config = pod.snapshot().config;
        let ns = namespace_options(&config);
        let host_network = is_node(ns.network);

        let t = std::time::Instant::now();
        let step =
            |what: &str| tracing::debug!(pod = %pod.id, elapsed = ?t.elapsed(), "{what} done");
        if !host_network {
            let netns = self.network.create_netns(&pod.id)?;
            lock(&pod.record).netns = Some(netns);
            self.save_pod(pod)?;
        }
        if !is_node(ns.ipc) {
            mount_shm(&pod.dir.join("shm"))?;
        }
        let net_sysctls = config
            .linux
            .as_ref()
            .is_some_and(|l| l.sysctls.keys().any(|k| k.starts_with("net.")));
        let primary_ip = if net_sysctls {
            let ip = self.setup_network(pod, &config).await?;
            step("network");
            self.start_monitor_and_pause(pod, &config).await?;
            ip
        } else {
            let (ip, pause) = tokio::join!(
                async {
                    let ip = self.setup_network(pod, &config).await;
                    step("network");
                    ip
                },
                self.start_monitor_and_pause(pod, &config)
            );
            pause?;
            ip?
        };
        spec::write_pod_files(&pod.dir, &config, primary_ip)?;
        step("pod files");
        lock(&pod.record).phase = SandboxPhase::Ready;
        self.save_pod(pod)
    }

    /// Wires the pod's pinned netns (nothing for a host-network pod);
    /// returns the pod's primary IP.
    async fn setup_network(&self, pod: &Pod, config: &PodSandboxConfig) -> Result<Option<IpAddr>> {
        let Some(netns) = pod.snapshot().netns else {
            return Ok(None);
        };
        let meta = config.metadata.clone().unwrap_or_default();
        let status = self
            .network
            .setup(&PodNetworkRequest {
                id: pod.id.clone(),
                name: meta.name,
                namespace: meta.namespace,
                uid: meta.uid,
                netns,
                port_mappings: port_mappings(config)?,
            })
            .await?;
        lock(&pod.record).ips = status.all_ips().iter().map(|ip| ip.to_string()).collect();
        Ok(status.primary_ip())
    }

    /// Spawns the pod's monitor (it places itself in the shared
    /// `<cgroup_parent>/berth-monitors` leaf, so that whatever stops
    /// berthd's cgroup does not take the pods with it) and has it start
    /// the pause process.
    async fn start_monitor_and_pause(
        self: &Arc<Self>,
        pod: &Arc<Pod>,
        config: &PodSandboxConfig,
    ) -> Result<()> {
        let t = std::time::Instant::now();
        let step =
            |what: &str| tracing::debug!(pod = %pod.id, elapsed = ?t.elapsed(), "{what} done");
        let leaf = format!(
            "{}/berth-monitors",
            self.cfg.cgroup_parent.trim_end_matches('/')
        );
        let cgroup_file = pod.run_dir.join(monitor::server::Config::CGROUP_FILE);
        std::fs::write(&cgroup_file, &leaf).map_err(DaemonError::io("write", &cgroup_file))?;
        let client = monitor::spawn(&SpawnConfig {
            binary: self.cfg.monitor_binary(),
            pod_id: pod.id.clone(),
            state_dir: pod.dir.clone(),
            run_dir: pod.run_dir.clone(),
            runtime_root: self.cfg.runtime_root(),
        })
        .await?;
        let client = Arc::new(client);
        self.attach_monitor(pod, client.clone());
        step("monitor spawn");

        let ns = namespace_options(config);
        let host_network = is_node(ns.network);
        let sysctls: BTreeMap<String, String> = config
            .linux
            .as_ref()
            .map(|l| {
                l.sysctls
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let rec = pod.snapshot();
        let pause = PauseConfig {
            hostname: pod_files::pod_hostname(config, host_network)?,
            netns: rec.netns.clone(),
            ipc_host: is_node(ns.ipc),
            uts_host: host_network,
            pid: match NamespaceMode::try_from(ns.pid) {
                Ok(NamespaceMode::Node) => PidMode::Host,
                Ok(NamespaceMode::Pod) => PidMode::Pod,
                _ => PidMode::Container,
            },
            sysctls,
            cgroup_path: rec.pod_cgroup.clone(),
        };
        let pid = client.start_pause(&pause).await?;
        step("pause");
        lock(&pod.record).pause_pid = Some(pid);
        Ok(())
    }

    /// Undoes everything RunPodSandbox made, whatever it got to: the
    /// monitor (which kills the pause process and containers and removes
    /// the pod cgroup), /dev/shm, the network and netns, the directories.
    /// Each step is idempotent; failures are logged and the rest goes on.
    pub async fn release_sandbox(&self, pod: &Pod) {
        let client = lock(&pod.monitor).take();
        let client = match client {
            Some(c) => Some(c),
            None => monitor::MonitorClient::connect(&pod.run_dir)
                .await
                .ok()
                .map(Arc::new),
        };
        if let Some(c) = client {
            if let Err(e) = c.shutdown().await {
                tracing::warn!(pod = %pod.id, "monitor shutdown: {e}");
            }
        }
        unmount_shm(&pod.dir.join("shm"));
        // Teardown and netns removal are idempotent: run them unless the pod
        // is known to use the host network.
        if !is_node(namespace_options(&pod.snapshot().config).network) {
            if let Err(e) = self.network.teardown(&pod.id).await {
                tracing::warn!(pod = %pod.id, "network teardown: {e}");
            }
            if let Err(e) = self.network.remove_netns(&pod.id) {
                tracing::warn!(pod = %pod.id, "remove netns: {e}");
            }
        }
        for dir in [&pod.run_dir, &pod.dir] {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(pod = %pod.id, "remove {}: {e}", dir.display());
                }
            }
        }
    }

    /// StopPodSandbox: kills the pod's containers and pause process and
    /// disconnects its network; the pod stays listed, NotReady.
    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let Some(pod) = self.store.pod(id) else {
            return Ok(()); // already removed: nothing left to reclaim
        };
        let _op = pod.op.lock().await;
        self.stop_locked(&pod).await
    }

    /// StopPodSandbox with the pod's lock held.
    async fn stop_locked(&self, pod: &Pod) -> Result<()> {
        for c in self.store.containers_of(&pod.id) {
            let _c = c.op.lock().await;
            self.stop_container_locked(&c, 0).await?;
        }
        if let Ok(m) = pod.monitor() {
            m.stop_pause().await?;
        }
        unmount_shm(&pod.dir.join("shm"));
        if pod.snapshot().netns.is_some() {
            self.network.teardown(&pod.id).await?;
        }
        self.set_pod_not_ready(pod);
        Ok(())
    }

    /// RemovePodSandbox: stops the pod if needed, removes its containers and
    /// everything the pod had.
    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        let Some(pod) = self.store.pod(id) else {
            return Ok(());
        };
        let _op = pod.op.lock().await;
        if pod.snapshot().phase == SandboxPhase::Ready {
            self.stop_locked(&pod).await?;
        }
        for c in self.store.containers_of(&pod.id) {
            let _c = c.op.lock().await;
            self.remove_container_locked(&c).await?;
        }
        self.release_sandbox(&pod).await;
        let rec = pod.snapshot();
        if let Some(m) = &rec.config.metadata {
            self.store.release_name(&pod_name_key(m), &pod.id);
        }
        self.store.remove_pod(&pod.id);
        self.publish_pod(ContainerEventType::ContainerDeletedEvent, &pod);
        tracing::info!(pod = %pod.id, "pod sandbox removed");
        Ok(())
    }

    /// PodSandboxStatus (with its containers' statuses, as kubelet's
    /// evented PLEG reads them).
    pub fn pod_sandbox_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<cri::PodSandboxStatusResponse> {
        let pod = self.store.pod_or_err(id)?;
        let rec = pod.snapshot();
        let mut info = std::collections::HashMap::new();
        if verbose {
            let v = serde_json::json!({
                "pid": rec.pause_pid,
                "netns": rec.netns,
                "cgroup": rec.pod_cgroup,
                "phase": rec.phase,
            });
            info.insert("info".to_string(), v.to_string());
        }
        let containers_statuses = self
            .store
            .containers_of(&pod.id)
            .iter()
            .map(|c| convert::container_status(&c.snapshot()))
            .collect();
        Ok(cri::PodSandboxStatusResponse {
            status: Some(convert::pod_status(&rec)),
            info,
            containers_statuses,
            timestamp: now_ns(),
        })
    }

    /// ListPodSandbox, from memory.
    pub fn list_pod_sandbox(&self, filter: Option<&cri::PodSandboxFilter>) -> Vec<cri::PodSandbox> {
        let mut out: Vec<cri::PodSandbox> = self
            .store
            .pods()
            .iter()
            .map(|p| convert::pod_summary(&p.snapshot()))
            .filter(|p| match filter {
                None => true,
                Some(f) => {
                    convert::id_matches(&p.id, &f.id)
                        && f.state.as_ref().is_none_or(|s| s.state == p.state)
                        && convert::labels_match(&p.labels, &f.label_selector)
                }
            })
            .collect();
        out.sort_by_key(|p| p.created_at);
        out
    }
}

/// Mounts the pod's shared /dev/shm (a tmpfs) at `dir`.
fn mount_shm(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(DaemonError::io("create", dir))?;
    mount(
        Some("shm"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(SHM_OPTIONS),
    )
    .map_err(|e| DaemonError::io("mount shm", dir)(e.into()))
}

/// Unmounts the pod's /dev/shm; not mounted is fine.
fn unmount_shm(dir: &Path) {
    match umount2(dir, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => tracing::warn!("unmount {}: {e}", dir.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> PodSandboxConfig {
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "web".into(),
                uid: "u".into(),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: "web".into(),
            ..Default::default()
        }
    }

    #[test]
    fn bad_configs_name_the_field() {
        let mut c = pod();
        c.metadata.as_mut().unwrap().name.clear();
        let e = validate(&c, "").unwrap_err();
        assert!(e.to_string().starts_with("config.metadata.name"), "{e}");
        let mut c = pod();
        c.log_directory = "relative/logs".into();
        assert!(validate(&c, "")
            .unwrap_err()
            .to_string()
            .contains("config.log_directory"));
        let mut c = pod();
        c.port_mappings.push(cri::PortMapping {
            protocol: 0,
            container_port: 80,
            host_port: 70000,
            host_ip: String::new(),
        });
        let e = validate(&c, "").unwrap_err();
        assert!(
            e.to_string().contains("config.port_mappings[0].host_port"),
            "{e}"
        );
        assert!(validate(&pod(), "kata")
            .unwrap_err()
            .to_string()
            .contains("runtime_handler"));
        validate(&pod(), "").unwrap();
    }

    #[test]
    fn port_mappings_are_translated() {
        let mut c = pod();
        c.port_mappings.push(cri::PortMapping {
            protocol: cri::Protocol::Udp as i32,
            container_port: 53,
            host_port: 5353,
            host_ip: "127.0.0.1".into(),
        });
        c.port_mappings.push(cri::PortMapping {
            protocol: 0,
            container_port: 80,
            host_port: 0,
            host_ip: String::new(),
        });
        let m = port_mappings(&c).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].protocol, Protocol::Udp);
        assert_eq!(m[0].host_ip, Some("127.0.0.1".parse().unwrap()));
    }
}
