//! Restart after a crash or `kill -9`: berthd rebuilds its in-memory state
//! from its records, reconnects to every pod's monitor (in parallel) and
//! reconciles each container with what the monitor saw while berthd was
//! down: containers that started or exited meanwhile get their pids, times
//! and exit codes. A pod whose monitor is gone gets its containers' exits
//! from the monitor's exit records (or Unknown), and turns NotReady.
//! Half-made pods and containers (a crash inside Run/Create) are undone.
//! Last, the network frees addresses and links of pods that no longer exist.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use tokio::sync::watch;

use super::containers::container_name_key;
use super::error::Result;
use super::lifecycle::Exit;
use super::records::{
    self, ContainerPhase, ContainerRecord, SandboxPhase, SandboxRecord, CONTAINER_RECORD,
    SANDBOX_RECORD,
};
use super::sandboxes::pod_name_key;
use super::store::{lock, Container, Pod};
use super::time::{now_ns, parse_rfc3339};
use super::Daemon;
use crate::monitor::protocol::{ContainerState, ContainerStatus};
use crate::monitor::{records as monitor_records, MonitorClient};

/// Every record of kind `T` in the subdirectories of `dir`.
fn load_all<T: for<'de> serde::Deserialize<'de>>(dir: &Path, name: &str) -> Vec<T> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| match records::load::<T>(&e.path(), name) {
            Ok(r) => r,
            Err(err) => {
                tracing::error!("recovery: skipping {}: {err}", e.path().display());
                None
            }
        })
        .collect()
}

impl Daemon {
    /// Recovers every pod and container from disk (see the module docs).
    pub(super) async fn recover(self: &Arc<Self>) -> Result<()> {
        let pods: Vec<SandboxRecord> = load_all(&self.cfg.pods_dir(), SANDBOX_RECORD);
        let mut by_pod: HashMap<String, Vec<ContainerRecord>> = HashMap::new();
        for c in load_all::<ContainerRecord>(&self.cfg.root.join("containers"), CONTAINER_RECORD) {
            by_pod.entry(c.pod_id.clone()).or_default().push(c);
        }
        self.remove_unrecorded_pod_dirs(&pods).await;
        let started = std::time::Instant::now();
        let count = pods.len();
        join_all(pods.into_iter().map(|p| {
            let containers = by_pod.remove(&p.id).unwrap_or_default();
            self.recover_pod(p, containers)
        }))
        .await;
        for (pod_id, orphans) in by_pod {
            for c in orphans {
                tracing::warn!(container = %c.id, pod = %pod_id, "recovery: container of a missing pod, removing");
                self.release_orphan(&c).await;
            }
        }
        let live: HashSet<String> = self.store.pods().iter().map(|p| p.id.clone()).collect();
        match self.network.gc(&live).await {
            Ok(report) => tracing::debug!("network gc: {report:?}"),
            Err(e) => tracing::warn!("network gc: {e}"),
        }
        if count > 0 {
            tracing::info!(pods = count, elapsed = ?started.elapsed(), "recovered pods");
        }
        Ok(())
    }

    /// A pod directory without `sandbox.json` is a RunPodSandbox killed
    /// before its first record: undo whatever it got to (a monitor may run).
    async fn remove_unrecorded_pod_dirs(&self, pods: &[SandboxRecord]) {
        let Ok(entries) = std::fs::read_dir(self.cfg.pods_dir()) else {
            return;
        };
        let known: HashSet<&str> = pods.iter().map(|p| p.id.as_str()).collect();
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if known.contains(id.as_str()) || e.path().join(SANDBOX_RECORD).exists() {
                continue;
            }
            tracing::warn!(pod = %id, "recovery: removing a pod directory without a record");
            let pod = self.pod_from(SandboxRecord {
                id: id.clone(),
                config: Default::default(),
                runtime_handler: String::new(),
                created_at: 0,
                phase: SandboxPhase::Creating,
                netns: None,
                ips: Vec::new(),
                pod_cgroup: String::new(),
                pause_pid: None,
            });
            self.release_sandbox(&pod).await;
        }
    }

    fn pod_from(&self, rec: SandboxRecord) -> Arc<Pod> {
        Arc::new(Pod {
            id: rec.id.clone(),
            dir: self.pod_dir(&rec.id),
            run_dir: self.pod_run_dir(&rec.id),
            record: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            monitor: Mutex::new(None),
        })
    }

    fn container_from(&self, rec: ContainerRecord) -> Arc<Container> {
        let (phase, _) = watch::channel(rec.phase);
        Arc::new(Container {
            id: rec.id.clone(),
            pod_id: rec.pod_id.clone(),
            dir: self.container_dir(&rec.id),
            record: Mutex::new(rec),
            op: tokio::sync::Mutex::new(()),
            phase,
        })
    }

    /// Undoes a container berthd has no pod for (or a half-made one).
    async fn release_orphan(&self, rec: &ContainerRecord) {
        let root = berth_runtime::StateRoot::new(self.cfg.runtime_root());
        let _ = berth_runtime::container::delete(&root, &rec.id, true);
        let dir = self.container_dir(&rec.id);
        if let Err(e) = self.images.release_rootfs(&dir) {
            tracing::warn!(container = %rec.id, "release rootfs: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    async fn recover_pod(self: &Arc<Self>, rec: SandboxRecord, containers: Vec<ContainerRecord>) {
        let pod = self.pod_from(rec);
        let rec = pod.snapshot();
        if rec.phase == SandboxPhase::Creating {
            tracing::warn!(pod = %pod.id, "recovery: undoing a pod whose RunPodSandbox did not finish");
            for c in &containers {
                self.release_orphan(c).await;
            }
            self.release_sandbox(&pod).await;
            return;
        }
        let pod_meta = rec.config.metadata.clone().unwrap_or_default();
        if let Err(e) = self
            .store
            .reserve_name("pod sandbox", &pod_name_key(&pod_meta), &pod.id)
        {
            tracing::error!(pod = %pod.id, "recovery: {e}");
        }
        self.store.add_pod(pod.clone());
        let mut known = Vec::new();
        for c in containers {
            if c.phase == ContainerPhase::Creating {
                tracing::warn!(container = %c.id, "recovery: undoing a container whose CreateContainer did not finish");
                if let Ok(m) = MonitorClient::connect(&pod.run_dir).await {
                    let _ = m.remove(&c.id).await;
                }
                self.release_orphan(&c).await;
                continue;
            }
            if let Some(meta) = &c.config.metadata {
                let _ = self.store.reserve_name(
                    "container",
                    &container_name_key(meta, &pod_meta),
                    &c.id,
                );
            }
            let c = self.container_from(c);
            self.store.add_container(c.clone());
            known.push(c);
        }

        match MonitorClient::connect(&pod.run_dir).await {
            Ok(client) => {
                let client = Arc::new(client);
                self.attach_monitor(&pod, client.clone());
                match client.list().await {
                    Ok((pause_pid, statuses)) => self.reconcile(&pod, &known, pause_pid, &statuses),
                    Err(e) => {
                        tracing::error!(pod = %pod.id, "recovery: monitor list: {e}");
                        self.reconcile_without_monitor(&pod, &known);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(pod = %pod.id, "recovery: no monitor ({e})");
                self.reconcile_without_monitor(&pod, &known);
            }
        }
    }

    /// Brings containers up to date with the monitor's list.
    fn reconcile(
        &self,
        pod: &Pod,
        known: &[Arc<Container>],
        pause_pid: Option<i32>,
        statuses: &[ContainerStatus],
    ) {
        for c in known {
            match statuses.iter().find(|s| s.id == c.id) {
                Some(s) => self.apply_status(c, s),
                None => self.apply_exit_record(pod, c),
            }
        }
        if pause_pid.is_none() {
            self.set_pod_not_ready(pod);
        }
    }

    fn reconcile_without_monitor(&self, pod: &Pod, known: &[Arc<Container>]) {
        for c in known {
            self.apply_exit_record(pod, c);
        }
        self.set_pod_not_ready(pod);
    }

    fn apply_status(&self, c: &Container, s: &ContainerStatus) {
        let ts = |t: &Option<String>| t.as_deref().and_then(parse_rfc3339).unwrap_or_else(now_ns);
        match s.state {
            ContainerState::Created => {}
            ContainerState::Running => {
                self.set_running(c, s.pid, ts(&s.started_at));
            }
            ContainerState::Exited => {
                if s.started_at.is_some() {
                    self.set_running(c, s.pid, ts(&s.started_at));
                }
                self.set_exited(
                    c,
                    &Exit {
                        exit_code: s.exit_code.unwrap_or(255),
                        finished_at: ts(&s.finished_at),
                        oom_killed: s.oom_killed,
                    },
                );
            }
        }
    }

    /// A container the monitor does not hold: its exit record, or lost.
    fn apply_exit_record(&self, pod: &Pod, c: &Container) {
        if lock(&c.record).phase == ContainerPhase::Exited {
            return;
        }
        match monitor_records::read_exit(&pod.dir, &c.id) {
            Ok(Some(exit)) => {
                self.set_exited(
                    c,
                    &Exit {
                        exit_code: exit.exit_code,
                        finished_at: parse_rfc3339(&exit.finished_at).unwrap_or_else(now_ns),
                        oom_killed: exit.oom_killed,
                    },
                );
            }
            _ => {
                self.set_lost(c);
            }
        }
    }
}
