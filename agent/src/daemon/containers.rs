//! Containers: CreateContainer, StartContainer, StopContainer,
//! RemoveContainer, ContainerStatus, ListContainers,
//! UpdateContainerResources, ReopenContainerLog and ExecSync.
//!
//! CreateContainer, in order: reserve the name, resolve the image, persist a
//! `creating` record, mount the overlay rootfs, build the OCI spec
//! (`crate::spec`) into `<root>/containers/<id>/config.json`, and have the
//! pod's monitor create the container (its init then waits for start).
//! Any failure undoes every step. The container directory holds the bundle,
//! the overlay's upper/work dirs and the record.

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_proto::v1::{self as cri, ContainerEventType, CreateContainerRequest, NamespaceMode};
use berth_runtime::cgroups::CgroupManager;
use berth_runtime::StateRoot;
use tokio::sync::watch;

use super::convert;
use super::error::{DaemonError, Result};
use super::records::{self, ContainerPhase, ContainerRecord, SandboxPhase, CONTAINER_RECORD};
use super::store::{lock, new_id, Container, Pod};
use super::time::now_ns;
use super::Daemon;
use crate::images::Image;
use crate::monitor::protocol::{CreateRequest, ExecSyncRequest};
use crate::monitor::MonitorError;
use crate::spec::{self, SandboxInfo};

/// How long StopContainer waits for a SIGKILLed container to be reaped.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// The key that must be unique among containers:
/// `name_podname_namespace_poduid_attempt`.
pub(super) fn container_name_key(
    c: &cri::ContainerMetadata,
    pod: &cri::PodSandboxMetadata,
) -> String {
    format!(
        "{}_{}_{}_{}_{}",
        c.name, pod.name, pod.namespace, pod.uid, c.attempt
    )
}

/// The container's log file: `log_directory/log_path`, both checked so the
/// log cannot land outside the pod's log directory.
fn log_path(
    pod_log_dir: &Path,
    config: &cri::ContainerConfig,
    meta: &cri::ContainerMetadata,
) -> Result<PathBuf> {
    let rel = if config.log_path.is_empty() {
        PathBuf::from(format!("{}/{}.log", meta.name, meta.attempt))
    } else {
        PathBuf::from(&config.log_path)
    };
    let bad =
        rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_)));
    if bad {
        return Err(DaemonError::invalid(
            "config.log_path",
            format!(
                "{:?} must be a relative path inside the pod's log directory",
                config.log_path
            ),
        ));
    }
    Ok(pod_log_dir.join(rel))
}

/// The image's stop signal (`config.StopSignal`), SIGTERM when unset or
/// unknown.
fn stop_signal(image: &Image) -> i32 {
    image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.stop_signal().as_deref())
        .and_then(|s| berth_runtime::container::parse_signal(s).ok())
        .unwrap_or(libc::SIGTERM)
}

impl Daemon {
    /// The pod's log directory: the sandbox's, or `<root>/logs/<pod>`.
    fn pod_log_dir(&self, pod: &Pod) -> PathBuf {
        let dir = &pod.snapshot().config.log_directory;
        if dir.is_empty() {
            self.cfg.logs_dir().join(&pod.id)
        } else {
            PathBuf::from(dir)
        }
    }

    /// CreateContainer: returns the new container's id.
    pub async fn create_container(self: &Arc<Self>, req: CreateContainerRequest) -> Result<String> {
        let pod = self.store.pod_or_err(&req.pod_sandbox_id)?;
        let config = req
            .config
            .ok_or_else(|| DaemonError::invalid("config", "missing"))?;
        let meta = config
            .metadata
            .clone()
            .ok_or_else(|| DaemonError::invalid("config.metadata", "missing"))?;
        if meta.name.is_empty() {
            return Err(DaemonError::invalid("config.metadata.name", "empty"));
        }
        let image_name = config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .filter(|i| !i.is_empty())
            .ok_or_else(|| DaemonError::invalid("config.image.image", "empty"))?;

        let _op = pod.op.lock().await;
        let sandbox = pod.snapshot();
        if sandbox.phase != SandboxPhase::Ready {
            return Err(DaemonError::state(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        let image = self
            .images
            .status(&image_name)?
            .ok_or_else(|| DaemonError::NotFound {
                kind: "image",
                id: image_name.clone(),
            })?;
        let log_path = log_path(&self.pod_log_dir(&pod), &config, &meta)?;
        let key = container_name_key(&meta, &sandbox.config.metadata.clone().unwrap_or_default());
        let id = new_id()?;
        self.store.reserve_name("container", &key, &id)?;

        let record = ContainerRecord {
            id: id.clone(),
            pod_id: pod.id.clone(),
            config,
            image_id: image.id.to_string(),
            image_ref: image
                .repo_digests
                .first()
                .cloned()
                .unwrap_or_else(|| image.id.to_string()),
            created_at: now_ns(),
            log_path,
            phase: ContainerPhase::Creating,
            pid: 0,
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            stop_signal: stop_signal(&image),
        };
        let (phase, _) = watch::channel(ContainerPhase::Creating);
        let c = Arc::new(Container {
            id: id.clone(),
            pod_id: pod.id.clone(),
            record: Mutex::new(record),
            op: tokio::sync::Mutex::new(()),
            phase,
            dir: self.container_dir(&id),
        });
        match self.build_container(&pod, &c, &image).await {
            Ok(pid) => {
                lock(&c.record).pid = pid;
                self.store.add_container(c.clone());
                self.set_created(&c);
                tracing::info!(container = %id, name = %key, "container created");
                Ok(id)
            }
            Err(e) => {
                tracing::warn!(container = %id, "CreateContainer failed, undoing: {e}");
                self.release_container(&pod, &c).await;
                self.store.release_name(&key, &id);
                Err(e)
            }
        }
    }

    /// The steps of CreateContainer after validation; returns the init's pid.
    async fn build_container(&self, pod: &Pod, c: &Container, image: &Image) -> Result<i32> {
        std::fs::create_dir_all(&c.dir).map_err(DaemonError::io("create", &c.dir))?;
        let rec = c.snapshot();
        records::save(&c.dir, CONTAINER_RECORD, &rec)?;
        let sandbox = pod.snapshot();
        let monitor = pod.monitor()?;
        let pause_pid = sandbox.pause_pid.ok_or_else(|| {
            DaemonError::state(format!("pod sandbox {} has no pause process", pod.id))
        })?;

        let t = std::time::Instant::now();
        let step =
            |what: &str| tracing::debug!(container = %c.id, elapsed = ?t.elapsed(), "{what} done");
        let rootfs = self
            .images
            .prepare_rootfs(image.id.as_str(), &c.dir, false)?;
        step("rootfs");
        let info = SandboxInfo {
            pod_id: pod.id.clone(),
            pause_pid,
            netns_path: sandbox.netns.clone(),
            pod_dir: pod.dir.clone(),
            cgroup_parent: sandbox.pod_cgroup.clone(),
            target_pid: self.target_pid(&rec.config)?,
        };
        let oci = spec::container_spec(
            &sandbox.config,
            &info,
            &c.id,
            &rec.config,
            &image.config,
            &rootfs.target,
        )?;
        let config_json = c.dir.join("config.json");
        oci.save(&config_json)
            .map_err(|e| DaemonError::Internal(format!("write {}: {e}", config_json.display())))?;
        if let Some(parent) = rec.log_path.parent() {
            std::fs::create_dir_all(parent).map_err(DaemonError::io("create", parent))?;
        }
        step("spec");
        let pid = monitor
            .create(&CreateRequest {
                id: c.id.clone(),
                bundle: c.dir.clone(),
                log_path: rec.log_path.clone(),
                tty: rec.config.tty,
                stdin: rec.config.stdin,
                stdin_once: rec.config.stdin_once,
            })
            .await?;
        step("monitor create");
        Ok(pid)
    }

    /// For `namespace_options.pid` TARGET: the target container's init pid.
    fn target_pid(&self, config: &cri::ContainerConfig) -> Result<Option<i32>> {
        let ns = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|sc| sc.namespace_options.as_ref());
        match ns {
            Some(ns) if ns.pid == NamespaceMode::Target as i32 => {
                const FIELD: &str = "config.linux.security_context.namespace_options.target_id";
                let target = self.store.container(&ns.target_id).ok_or_else(|| {
                    DaemonError::invalid(FIELD, format!("no container {:?}", ns.target_id))
                })?;
                let r = target.snapshot();
                if r.phase != ContainerPhase::Running {
                    return Err(DaemonError::invalid(
                        FIELD,
                        format!("container {} is not running", r.id),
                    ));
                }
                Ok(Some(r.pid))
            }
            _ => Ok(None),
        }
    }

    /// Undoes what CreateContainer made: the monitor's container, the
    /// runtime state, the rootfs mount and the container directory.
    async fn release_container(&self, pod: &Pod, c: &Container) {
        match pod.monitor() {
            Ok(m) => match m.remove(&c.id).await {
                Ok(()) | Err(MonitorError::UnknownContainer(_)) => {}
                Err(e) => tracing::warn!(container = %c.id, "monitor remove: {e}"),
            },
            Err(_) => {
                // No monitor: delete what the runtime may have left directly.
                let root = StateRoot::new(self.cfg.runtime_root());
                if let Err(e) = berth_runtime::container::delete(&root, &c.id, true) {
                    tracing::debug!(container = %c.id, "runtime delete: {e}");
                }
            }
        }
        if let Err(e) = self.images.release_rootfs(&c.dir) {
            tracing::warn!(container = %c.id, "release rootfs: {e}");
        }
        if let Err(e) = std::fs::remove_dir_all(&c.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(container = %c.id, "remove {}: {e}", c.dir.display());
            }
        }
    }

    /// StartContainer.
    pub async fn start_container(&self, id: &str) -> Result<()> {
        let c = self.store.container_or_err(id)?;
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        if rec.phase != ContainerPhase::Created {
            return Err(DaemonError::state(format!(
                "container {} is {}, not created",
                c.id,
                phase_name(rec.phase)
            )));
        }
        let pod = self.store.pod_or_err(&c.pod_id)?;
        // Taken before the start, so it is never after the exit time.
        let started_at = now_ns();
        pod.monitor()?.start(&c.id).await?;
        self.set_running(&c, rec.pid, started_at);
        Ok(())
    }

    /// StopContainer: the stop signal, then SIGKILL after `timeout` seconds.
    pub async fn stop_container(&self, id: &str, timeout: i64) -> Result<()> {
        let c = self.store.container_or_err(id)?;
        let _op = c.op.lock().await;
        self.stop_container_locked(&c, timeout).await
    }

    /// StopContainer with the container's lock held.
    pub(super) async fn stop_container_locked(&self, c: &Container, timeout: i64) -> Result<()> {
        let rec = c.snapshot();
        if rec.phase == ContainerPhase::Exited {
            return Ok(());
        }
        let pod = self.store.pod_or_err(&c.pod_id)?;
        let Ok(monitor) = pod.monitor() else {
            self.set_lost(c);
            return Ok(());
        };
        let mut phase = c.phase.subscribe();
        if timeout > 0 && rec.phase == ContainerPhase::Running {
            self.signal(&monitor, c, rec.stop_signal, false).await?;
            let waited = tokio::time::timeout(
                Duration::from_secs(timeout as u64),
                phase.wait_for(|p| *p == ContainerPhase::Exited),
            )
            .await
            .is_ok_and(|r| r.is_ok());
            if waited {
                return Ok(());
            }
        }
        self.signal(&monitor, c, libc::SIGKILL, true).await?;
        let exited =
            tokio::time::timeout(KILL_WAIT, phase.wait_for(|p| *p == ContainerPhase::Exited))
                .await
                .is_ok_and(|r| r.is_ok());
        match exited {
            true => Ok(()),
            false => Err(DaemonError::Internal(format!(
                "container {} did not exit {}s after SIGKILL",
                c.id,
                KILL_WAIT.as_secs()
            ))),
        }
    }

    /// Signals the container; one that has exited meanwhile is fine.
    async fn signal(
        &self,
        monitor: &crate::monitor::MonitorClient,
        c: &Container,
        signal: i32,
        all: bool,
    ) -> Result<()> {
        match monitor.kill(&c.id, signal, all).await {
            Ok(()) => Ok(()),
            Err(_) if *c.phase.borrow() == ContainerPhase::Exited => Ok(()),
            Err(MonitorError::WrongState { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// RemoveContainer: kills it if it runs and removes everything it had.
    /// Removing a removed container succeeds.
    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let Some(c) = self.store.container(id) else {
            return Ok(());
        };
        let _op = c.op.lock().await;
        self.remove_container_locked(&c).await
    }

    /// RemoveContainer with the container's lock held.
    pub(super) async fn remove_container_locked(&self, c: &Container) -> Result<()> {
        if self.store.container(&c.id).is_none() {
            return Ok(()); // removed while we waited for its lock
        }
        self.stop_container_locked(c, 0).await?;
        match self.store.pod(&c.pod_id) {
            Some(pod) => self.release_container(&pod, c).await,
            None => tracing::warn!(container = %c.id, "removing a container without its pod"),
        }
        let rec = c.snapshot();
        if let Some(m) = &rec.config.metadata {
            let pod_meta = self
                .store
                .pod(&c.pod_id)
                .and_then(|p| p.snapshot().config.metadata)
                .unwrap_or_default();
            self.store
                .release_name(&container_name_key(m, &pod_meta), &c.id);
        }
        self.store.remove_container(&c.id);
        self.publish(ContainerEventType::ContainerDeletedEvent, &rec);
        tracing::info!(container = %c.id, "container removed");
        Ok(())
    }

    /// ContainerStatus.
    pub fn container_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<cri::ContainerStatusResponse> {
        let c = self.store.container_or_err(id)?;
        let rec = c.snapshot();
        let mut info = std::collections::HashMap::new();
        if verbose {
            let v = serde_json::json!({
                "pid": rec.pid,
                "sandboxID": rec.pod_id,
                "bundle": c.dir,
                "phase": rec.phase,
            });
            info.insert("info".to_string(), v.to_string());
        }
        Ok(cri::ContainerStatusResponse {
            status: Some(convert::container_status(&rec)),
            info,
        })
    }

    /// ListContainers, from memory.
    pub fn list_containers(&self, filter: Option<&cri::ContainerFilter>) -> Vec<cri::Container> {
        let mut out: Vec<cri::Container> = self
            .store
            .containers()
            .iter()
            .map(|c| convert::container_summary(&c.snapshot()))
            .filter(|c| match filter {
                None => true,
                Some(f) => {
                    convert::id_matches(&c.id, &f.id)
                        && convert::id_matches(&c.pod_sandbox_id, &f.pod_sandbox_id)
                        && f.state.as_ref().is_none_or(|s| s.state == c.state)
                        && convert::labels_match(&c.labels, &f.label_selector)
                }
            })
            .collect();
        out.sort_by_key(|c| c.created_at);
        out
    }

    /// The container's cgroup.
    pub(super) fn cgroup_of(&self, c: &Container) -> Result<CgroupManager> {
        let pod = self.store.pod_or_err(&c.pod_id)?;
        let path = spec::container_cgroups_path(&pod.snapshot().pod_cgroup, &c.id);
        CgroupManager::new(path.as_deref(), &c.id)
            .map_err(|e| DaemonError::Internal(format!("cgroup of {}: {e}", c.id)))
    }

    /// UpdateContainerResources: applies the new limits to the cgroup and
    /// records them.
    pub async fn update_container_resources(
        &self,
        id: &str,
        resources: Option<cri::LinuxContainerResources>,
    ) -> Result<()> {
        let c = self.store.container_or_err(id)?;
        let _op = c.op.lock().await;
        let Some(resources) = resources else {
            return Ok(()); // nothing to change on Linux
        };
        let (oci, _oom) = spec::linux_resources(&resources)?;
        if c.snapshot().phase != ContainerPhase::Exited {
            self.cgroup_of(&c)?
                .apply(&oci)
                .map_err(|e| DaemonError::Internal(format!("update cgroup of {}: {e}", c.id)))?;
        }
        let rec = {
            let mut r = lock(&c.record);
            r.config
                .linux
                .get_or_insert_with(Default::default)
                .resources = Some(resources);
            r.clone()
        };
        records::save(&c.dir, CONTAINER_RECORD, &rec)
    }

    /// ReopenContainerLog (after kubelet rotated the file).
    pub async fn reopen_container_log(&self, id: &str) -> Result<()> {
        let c = self.store.container_or_err(id)?;
        if c.snapshot().phase != ContainerPhase::Running {
            return Err(DaemonError::state(format!(
                "container {} is not running",
                c.id
            )));
        }
        let pod = self.store.pod_or_err(&c.pod_id)?;
        pod.monitor()?.reopen_log(&c.id).await?;
        Ok(())
    }

    /// ExecSync: runs `cmd` in the container; `timeout` seconds (0: none).
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: i64,
    ) -> Result<cri::ExecSyncResponse> {
        if cmd.is_empty() {
            return Err(DaemonError::invalid("cmd", "empty"));
        }
        let c = self.store.container_or_err(id)?;
        if c.snapshot().phase != ContainerPhase::Running {
            return Err(DaemonError::state(format!(
                "container {} is not running",
                c.id
            )));
        }
        let pod = self.store.pod_or_err(&c.pod_id)?;
        let r = pod
            .monitor()?
            .exec_sync(&ExecSyncRequest {
                id: c.id.clone(),
                args: cmd.clone(),
                env: None,
                timeout_secs: timeout.max(0) as u64,
            })
            .await?;
        if r.timed_out {
            return Err(DaemonError::Timeout(format!(
                "command {cmd:?} timed out after {timeout}s"
            )));
        }
        Ok(cri::ExecSyncResponse {
            stdout: r.stdout,
            stderr: r.stderr,
            exit_code: r.exit_code,
        })
    }
}

/// A phase's name in messages.
pub fn phase_name(p: ContainerPhase) -> &'static str {
    match p {
        ContainerPhase::Creating => "being created",
        ContainerPhase::Created => "created",
        ContainerPhase::Running => "running",
        ContainerPhase::Exited => "exited",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_paths_stay_in_the_pod_log_directory() {
        let meta = cri::ContainerMetadata {
            name: "app".into(),
            attempt: 2,
        };
        let dir = Path::new("/var/log/pods/p");
        let mut c = cri::ContainerConfig::default();
        assert_eq!(log_path(dir, &c, &meta).unwrap(), dir.join("app/2.log"));
        c.log_path = "app/0.log".into();
        assert_eq!(log_path(dir, &c, &meta).unwrap(), dir.join("app/0.log"));
        for bad in ["../../etc/passwd", "/etc/passwd", "a/../../b", "./x"] {
            c.log_path = bad.into();
            let e = log_path(dir, &c, &meta).unwrap_err();
            assert!(e.to_string().starts_with("config.log_path"), "{bad}: {e}");
        }
    }
}
