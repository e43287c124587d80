//! The pod worker: drives one manifest pod through CRI as kubelet's pod
//! worker does. Volumes on the host, RunPodSandbox, init containers in
//! order to completion, then the app containers; probes; restarts by
//! policy with the crash-loop back-off; postStart/preStop hooks; refreshed
//! file-set volumes; and the graceful stop (preStop, stop signal, grace
//! period, RemovePodSandbox, volumes removed). After every step it writes
//! the pod's observed status (see [`super::view`]).

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use berth_proto::v1 as cri;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::cri_client::CriClient;
use crate::manifest::backoff::{CrashLoopBackoff, RestartDecision};
use crate::manifest::probes::ProbeKind;
use crate::manifest::restart::termination_reason;
use crate::manifest::{ContainerKind, ContainerPlan, PodPlan, RuntimeValues};

use super::actions::{self, Target};
use super::clock::{from_nanos, nanos, Clock};
use super::killer;
use super::probe_state::{ProbeResult, ProbeState};
use super::probe_task::{lock, ProbeReport, ProbeTask};
use super::restarts::{self, AfterExit};
use super::sequence::{self, Slot};
use super::status::{self, Event, Terminated, MAX_EVENTS};
use super::{images, termination, volumes};

/// What every worker shares.
#[derive(Debug)]
pub struct WorkerEnv {
    pub cri: CriClient,
    pub clock: Arc<dyn Clock>,
    /// Where status files go (`<state>/kubelet`).
    pub status_dir: PathBuf,
    /// The node's IPs (`status.hostIP`).
    pub host_ips: Vec<String>,
    /// How often a worker syncs its pod.
    pub tick: Duration,
}

/// A message to a worker.
#[derive(Debug)]
pub enum Command {
    /// The same pod with new file-set contents (its ConfigMaps or Secrets
    /// changed): rewrite them in place.
    Refresh(Box<PodPlan>),
    /// Stop gracefully, remove the sandbox and volumes, and end.
    Stop,
}

/// The running sandbox.
#[derive(Debug, Clone)]
pub(crate) struct Sandbox {
    pub id: String,
    pub ip: String,
    pub rt: RuntimeValues,
    pub started: i64,
}

impl Sandbox {
    /// Sandbox `id` with the pod's IPs (the first is the pod IP).
    pub fn new(id: String, pod_ips: Vec<String>, host_ips: Vec<String>, started: i64) -> Self {
        Self {
            id,
            ip: pod_ips.first().cloned().unwrap_or_default(),
            rt: RuntimeValues { pod_ips, host_ips },
            started,
        }
    }
}

/// One created container of the pod.
#[derive(Debug)]
pub(crate) struct Instance {
    pub id: String,
    pub attempt: u32,
    pub log_path: String,
    pub started_at: i64,
    pub exited: Option<Terminated>,
    pub liveness: Option<Arc<Mutex<ProbeState>>>,
    pub readiness: Option<Arc<Mutex<ProbeState>>>,
    pub startup: Option<Arc<Mutex<ProbeState>>>,
    /// postStart finished (the container counts as running).
    pub post_started: Arc<AtomicBool>,
    pub tasks: Vec<JoinHandle<()>>,
}

impl Instance {
    /// An instance without probes; `post_started` when postStart is done
    /// (or there is nothing left to wait for).
    pub fn new(
        id: String,
        attempt: u32,
        log_path: String,
        started_at: i64,
        exited: Option<Terminated>,
        post_started: bool,
    ) -> Self {
        Self {
            id,
            attempt,
            log_path,
            started_at,
            exited,
            liveness: None,
            readiness: None,
            startup: None,
            post_started: Arc::new(AtomicBool::new(post_started)),
            tasks: Vec::new(),
        }
    }

    pub fn running(&self) -> bool {
        self.exited.is_none()
    }

    fn result(p: &Option<Arc<Mutex<ProbeState>>>) -> Option<ProbeResult> {
        p.as_ref().map(|s| lock(s).result())
    }

    /// Running and past its startup probe.
    pub fn started(&self) -> bool {
        self.running()
            && self.post_started.load(Ordering::Relaxed)
            && Self::result(&self.startup).is_none_or(|r| r == ProbeResult::Success)
    }

    /// Started and passing its readiness probe.
    pub fn ready(&self) -> bool {
        self.started() && Self::result(&self.readiness).is_none_or(|r| r == ProbeResult::Success)
    }

    fn stop_probes(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

/// One container slot of the pod, across its restarts.
#[derive(Debug)]
pub(crate) struct Ctr {
    pub plan: ContainerPlan,
    pub restart_count: u32,
    /// How many instances were created.
    pub starts: u32,
    pub current: Option<Instance>,
    pub previous: Option<Instance>,
    pub backoff: CrashLoopBackoff,
    /// A planned restart.
    pub pending: Option<RestartDecision>,
    /// Why the last start failed (reason, message).
    pub waiting: Option<(String, String)>,
    /// An init container that completed.
    pub completed: bool,
    /// Terminated for good.
    pub stay: bool,
}

impl Ctr {
    fn new(plan: ContainerPlan) -> Self {
        Self {
            plan,
            restart_count: 0,
            starts: 0,
            current: None,
            previous: None,
            backoff: CrashLoopBackoff::default(),
            pending: None,
            waiting: None,
            completed: false,
            stay: false,
        }
    }

    fn running(&self) -> bool {
        self.current.as_ref().is_some_and(Instance::running)
    }

    fn needs_start(&self, now: SystemTime) -> bool {
        match &self.pending {
            Some(d) => !CrashLoopBackoff::waiting(d, now),
            None => self.current.is_none() && !self.stay && !self.completed,
        }
    }
}

/// The worker of one pod.
pub(crate) struct Worker {
    pub env: Arc<WorkerEnv>,
    pub cri: CriClient,
    pub plan: PodPlan,
    pub source: PathBuf,
    pub created_at: i64,
    pub sandbox: Option<Sandbox>,
    pub(crate) sandbox_attempt: u32,
    retry_sandbox_at: Option<SystemTime>,
    sandbox_failures: u32,
    pub ctrs: Vec<Ctr>,
    pub events: VecDeque<Event>,
    pub init_failed: bool,
    /// `activeDeadlineSeconds` passed: containers killed, pod Failed.
    pub deadline_exceeded: bool,
    pub terminating: bool,
    pub conditions: Vec<status::Condition>,
    probe_tx: mpsc::UnboundedSender<ProbeReport>,
    probe_rx: Option<mpsc::UnboundedReceiver<ProbeReport>>,
    pulled: HashSet<String>,
    last_status: Option<status::PodStatus>,
}

/// Starts the worker of `plan` (from the file `source`); it begins once
/// `after` (the worker of the pod it replaces) has ended.
pub fn spawn(
    plan: PodPlan,
    source: PathBuf,
    env: Arc<WorkerEnv>,
    after: Option<JoinHandle<()>>,
) -> (mpsc::UnboundedSender<Command>, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let join = tokio::spawn(async move {
        if let Some(prev) = after {
            let _ = prev.await;
        }
        Worker::new(plan, source, env).run(rx).await;
    });
    (tx, join)
}

impl Worker {
    fn new(plan: PodPlan, source: PathBuf, env: Arc<WorkerEnv>) -> Self {
        let (probe_tx, probe_rx) = mpsc::unbounded_channel();
        let ctrs = plan.all_containers().cloned().map(Ctr::new).collect();
        let now = nanos(env.clock.now());
        let mut w = Self {
            cri: env.cri.clone(),
            env,
            plan,
            source,
            created_at: now,
            sandbox: None,
            sandbox_attempt: 0,
            retry_sandbox_at: None,
            sandbox_failures: 0,
            ctrs,
            events: VecDeque::new(),
            init_failed: false,
            deadline_exceeded: false,
            terminating: false,
            conditions: Vec::new(),
            probe_tx,
            probe_rx: Some(probe_rx),
            pulled: HashSet::new(),
            last_status: None,
        };
        w.event("Normal", "Scheduled", "pod taken on by berthd".into(), None);
        for warning in w.plan.warnings.clone() {
            w.event("Warning", "Ignored", warning, None);
        }
        w
    }

    fn now(&self) -> SystemTime {
        self.env.clock.now()
    }

    pub(crate) fn event(&mut self, kind: &str, reason: &str, message: String, c: Option<&str>) {
        tracing::info!(pod = %self.plan.name, container = c.unwrap_or(""), reason, "{message}");
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(Event {
            at: nanos(self.now()),
            kind: kind.into(),
            reason: reason.into(),
            message,
            container: c.map(str::to_string),
        });
    }

    async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Command>) {
        let mut tick = tokio::time::interval(self.env.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let Some(mut probes) = self.probe_rx.take() else {
            return;
        };
        self.adopt().await;
        loop {
            tokio::select! {
                _ = tick.tick() => self.sync().await,
                Some(r) = probes.recv() => self.on_probe(r).await,
                cmd = cmds.recv() => match cmd {
                    Some(Command::Refresh(plan)) => self.refresh(*plan),
                    Some(Command::Stop) | None => {
                        self.terminate().await;
                        return;
                    }
                },
            }
            self.write_status();
        }
    }

    fn write_status(&mut self) {
        let s = self.build_status();
        if self.last_status.as_ref() == Some(&s) {
            return;
        }
        let path = status::status_path(&self.env.status_dir, &s.namespace, &s.name);
        if let Err(e) = status::write_json(&path, &s) {
            tracing::warn!("pod {}: {e}", self.plan.name);
        }
        self.last_status = Some(s);
    }

    /// Rewrites the file sets of the volumes from a newer plan.
    fn refresh(&mut self, plan: PodPlan) {
        for v in &plan.volumes {
            match volumes::write_files(v) {
                Ok(true) => self.event(
                    "Normal",
                    "VolumeUpdated",
                    format!("volume {:?} updated", v.name),
                    None,
                ),
                Ok(false) => {}
                Err(e) => self.event("Warning", "FailedMount", e.to_string(), None),
            }
        }
        self.plan.volumes = plan.volumes;
    }

    /// One pass of kubelet's SyncPod.
    async fn sync(&mut self) {
        if self.terminating {
            return;
        }
        if self.sandbox.is_none() && !self.start_sandbox().await {
            return;
        }
        if !self.check_sandbox().await {
            return;
        }
        self.refresh_containers().await;
        if self.init_failed || self.deadline_exceeded {
            return;
        }
        if self.past_deadline() {
            self.exceed_deadline().await;
            return;
        }
        let now = self.now();
        let slots: Vec<Slot> = self
            .ctrs
            .iter()
            .map(|c| Slot {
                kind: c.plan.kind,
                needs_start: c.needs_start(now),
                through: match c.plan.kind {
                    ContainerKind::Sidecar => c.current.as_ref().is_some_and(Instance::started),
                    _ => c.completed,
                },
            })
            .collect();
        for i in sequence::to_start(&slots) {
            self.start_container(i).await;
        }
    }

    /// Whether `activeDeadlineSeconds` has passed since the pod was taken on.
    fn past_deadline(&self) -> bool {
        let Some(d) = self.plan.active_deadline else {
            return false;
        };
        let since = self
            .now()
            .duration_since(from_nanos(self.created_at))
            .unwrap_or_default();
        since > d && !self.is_terminal()
    }

    /// Kills every running container for good: the pod is Failed with
    /// reason DeadlineExceeded.
    async fn exceed_deadline(&mut self) {
        self.deadline_exceeded = true;
        self.event(
            "Warning",
            "DeadlineExceeded",
            "Pod was active on the node longer than the specified deadline".into(),
            None,
        );
        for c in &mut self.ctrs {
            c.pending = None;
            c.stay = true;
            if let Some(cur) = c.current.as_mut() {
                cur.stop_probes();
            }
        }
        let ip = self
            .sandbox
            .as_ref()
            .map(|s| s.ip.clone())
            .unwrap_or_default();
        let running: Vec<usize> = (0..self.ctrs.len())
            .filter(|i| self.ctrs[*i].running())
            .collect();
        self.kill_many(&running, &ip, self.plan.termination_grace_period)
            .await;
        self.refresh_containers().await;
    }

    /// Sets up the volumes and runs the sandbox; false when it failed
    /// (retried with a growing delay).
    async fn start_sandbox(&mut self) -> bool {
        let now = self.now();
        if self.retry_sandbox_at.is_some_and(|t| now < t) {
            return false;
        }
        let failed = |w: &mut Self, reason: &str, msg: String| {
            w.event("Warning", reason, msg, None);
            w.sandbox_failures += 1;
            let wait = Duration::from_secs(1 << w.sandbox_failures.min(5));
            w.retry_sandbox_at = Some(now + wait);
            false
        };
        if let Err(e) = volumes::setup_all(&self.plan.pod_dir, &self.plan.volumes) {
            return failed(self, "FailedMount", e.to_string());
        }
        let config = self.plan.sandbox_config(self.sandbox_attempt);
        let id = match self
            .cri
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await
        {
            Ok(r) => r.into_inner().pod_sandbox_id,
            Err(e) => {
                return failed(
                    self,
                    "FailedCreatePodSandBox",
                    format!("failed to create pod sandbox: {}", e.message()),
                )
            }
        };
        let pod_ips = self.pod_ips(&id).await;
        let sb = Sandbox::new(
            id.clone(),
            pod_ips,
            self.env.host_ips.clone(),
            nanos(self.now()),
        );
        let ip = sb.ip.clone();
        self.sandbox = Some(sb);
        self.sandbox_failures = 0;
        self.retry_sandbox_at = None;
        if let Err(e) = self.write_hosts_file(&ip) {
            self.event("Warning", "FailedHostsFile", e, None);
        }
        self.event(
            "Normal",
            "SandboxReady",
            format!("pod sandbox {} running, IP {ip}", short(&id)),
            None,
        );
        true
    }

    /// The IPs of sandbox `id` (PodSandboxStatus); the node's for a
    /// host-network pod.
    pub(crate) async fn pod_ips(&mut self, id: &str) -> Vec<String> {
        let net = self
            .cri
            .runtime
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: false,
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().status)
            .and_then(|s| s.network);
        let pod_ips: Vec<String> = net
            .map(|n| {
                std::iter::once(n.ip)
                    .chain(n.additional_ips.into_iter().map(|i| i.ip))
                    .filter(|ip| !ip.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if pod_ips.is_empty() {
            // A host-network pod: the node's addresses.
            return self.env.host_ips.clone();
        }
        pod_ips
    }

    /// RemovePodSandbox, errors ignored.
    pub(crate) async fn remove_sandbox(&mut self, id: String) {
        let _ = self
            .cri
            .runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id })
            .await;
    }

    /// RemoveContainer, errors ignored.
    pub(crate) async fn remove_container(&mut self, id: String) {
        let _ = self
            .cri
            .runtime
            .remove_container(cri::RemoveContainerRequest { container_id: id })
            .await;
    }

    /// The containers of sandbox `id`.
    pub(crate) async fn containers_of(
        &mut self,
        id: &str,
    ) -> Result<Vec<cri::Container>, tonic::Status> {
        self.cri
            .runtime
            .list_containers(cri::ListContainersRequest {
                filter: Some(cri::ContainerFilter {
                    pod_sandbox_id: id.into(),
                    ..Default::default()
                }),
            })
            .await
            .map(|r| r.into_inner().containers)
    }

    /// ContainerStatus of container `id`; None when the call fails.
    pub(crate) async fn container_status(&mut self, id: &str) -> Option<cri::ContainerStatus> {
        self.cri
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().status)
    }

    /// The hosts file with `hostAliases` and the FQDN, when the pod has
    /// either: `<pod dir>/etc-hosts`, mounted at /etc/hosts.
    fn write_hosts_file(&self, ip: &str) -> Result<(), String> {
        let extra = self.plan.hosts_file_extra(Some(ip));
        let Some(host) = self.plan.hostname.as_deref().filter(|_| !extra.is_empty()) else {
            return Ok(());
        };
        let mut text = String::from(
            "# Kubernetes-managed hosts file (berth).\n127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
             fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
        );
        if self.plan.fqdn.is_none() {
            text.push_str(&format!("{ip}\t{host}\n"));
        }
        text.push_str(&extra);
        let path = self.hosts_file();
        std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))
    }

    fn hosts_file(&self) -> PathBuf {
        self.plan.pod_dir.join("etc-hosts")
    }

    /// Whether the sandbox is still ready; if it died, everything is
    /// removed and it is re-created on the next pass (false).
    async fn check_sandbox(&mut self) -> bool {
        let Some(sb) = self.sandbox.clone() else {
            return false;
        };
        let st = self
            .cri
            .runtime
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: sb.id.clone(),
                verbose: false,
            })
            .await;
        let ready = match &st {
            Ok(r) => r
                .get_ref()
                .status
                .as_ref()
                .is_some_and(|s| s.state == cri::PodSandboxState::SandboxReady as i32),
            Err(e) => e.code() != tonic::Code::NotFound,
        };
        if ready || self.is_terminal() {
            return true;
        }
        self.event(
            "Normal",
            "SandboxChanged",
            "Pod sandbox changed, it will be killed and re-created.".into(),
            None,
        );
        for c in &mut self.ctrs {
            if let Some(mut cur) = c.current.take() {
                cur.stop_probes();
                if cur.exited.is_none() {
                    cur.exited = Some(Terminated {
                        exit_code: 137,
                        reason: "Error".into(),
                        started_at: cur.started_at,
                        finished_at: nanos(SystemTime::now()),
                        container_id: cur.id.clone(),
                        ..Default::default()
                    });
                }
                c.previous = Some(cur);
            }
            c.pending = None;
            c.completed = false;
            c.stay = false;
        }
        self.remove_sandbox(sb.id).await;
        self.sandbox = None;
        self.sandbox_attempt += 1;
        false
    }

    /// Whether the pod reached Succeeded or Failed.
    fn is_terminal(&self) -> bool {
        self.init_failed
            || (!self.ctrs.is_empty()
                && self
                    .ctrs
                    .iter()
                    .filter(|c| c.plan.kind == ContainerKind::App)
                    .all(|c| c.stay))
    }

    /// Notices containers that exited since the last pass.
    async fn refresh_containers(&mut self) {
        let Some(sb_id) = self.sandbox.as_ref().map(|s| s.id.clone()) else {
            return;
        };
        let Ok(listed) = self.containers_of(&sb_id).await else {
            return;
        };
        let running: HashSet<String> = listed
            .into_iter()
            .filter(|c| c.state != cri::ContainerState::ContainerExited as i32)
            .map(|c| c.id)
            .collect();
        for i in 0..self.ctrs.len() {
            let Some(cur) = &self.ctrs[i].current else {
                continue;
            };
            if cur.exited.is_some() || running.contains(&cur.id) {
                continue;
            }
            let id = cur.id.clone();
            self.on_exit(i, &id).await;
        }
    }

    /// Records the end of container `i`'s instance `id` and decides what
    /// follows.
    async fn on_exit(&mut self, i: usize, id: &str) {
        let st = self.container_status(id).await;
        let now = self.now();
        let c = &mut self.ctrs[i];
        let Some(cur) = c.current.as_mut() else {
            return;
        };
        let (exit_code, reason, started_at, finished_at) = match st {
            Some(s) => (
                s.exit_code,
                s.reason,
                s.started_at,
                if s.finished_at > 0 {
                    s.finished_at
                } else {
                    nanos(now)
                },
            ),
            None => (137, String::new(), cur.started_at, nanos(now)),
        };
        let reason = if reason.is_empty() || reason == "Unknown" {
            termination_reason(exit_code, false).to_string()
        } else {
            reason
        };
        let message = termination::message(
            &c.plan.termination_message_file(cur.attempt),
            c.plan.termination_message.policy,
            exit_code,
            Some(std::path::Path::new(&cur.log_path)),
        );
        cur.stop_probes();
        cur.exited = Some(Terminated {
            exit_code,
            reason: reason.clone(),
            message,
            started_at,
            finished_at,
            container_id: id.to_string(),
        });
        let name = c.plan.name.clone();
        let decision = restarts::after_exit(
            c.plan.kind,
            c.plan.restart_policy,
            exit_code,
            &mut c.backoff,
            from_nanos(finished_at),
        );
        let kind = c.plan.kind;
        let decision = if self.deadline_exceeded {
            AfterExit::Stay
        } else {
            decision
        };
        match decision {
            AfterExit::Done => c.completed = true,
            AfterExit::Stay => c.stay = true,
            AfterExit::Restart(d) => c.pending = Some(d),
        }
        let ev_kind = if exit_code == 0 { "Normal" } else { "Warning" };
        self.event(
            ev_kind,
            "Terminated",
            format!("container {name} exited with {exit_code} ({reason})"),
            Some(&name),
        );
        match decision {
            AfterExit::Restart(d) if d.delay > Duration::ZERO => self.event(
                "Warning",
                "BackOff",
                format!(
                    "Back-off {}s restarting failed container {name}",
                    d.delay.as_secs()
                ),
                Some(&name),
            ),
            AfterExit::Stay if kind == ContainerKind::Init => {
                self.init_failed = true;
                self.event(
                    "Warning",
                    "InitFailed",
                    format!("init container {name} failed and restartPolicy is Never"),
                    Some(&name),
                );
            }
            _ => {}
        }
    }

    /// Creates and starts container `i` (a new instance).
    async fn start_container(&mut self, i: usize) {
        let Some(sb) = self.sandbox.clone() else {
            return;
        };
        let now = self.now();
        let name = self.ctrs[i].plan.name.clone();
        let image = self.ctrs[i]
            .plan
            .config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        if !self.pulled.contains(&image) {
            match images::ensure(&mut self.cri, &image, self.ctrs[i].plan.image_pull_policy).await {
                Ok(warning) => {
                    if let Some(w) = warning {
                        self.event("Warning", "Pulled", w, Some(&name));
                    }
                    self.pulled.insert(image.clone());
                }
                Err(e) => {
                    self.start_failed(i, e.reason, e.message, now);
                    return;
                }
            }
        }
        let attempt = self.ctrs[i].starts;
        let c = &self.ctrs[i];
        if let Err(e) = prepare_termination_file(&c.plan, attempt) {
            self.start_failed(i, "CreateContainerConfigError", e, now);
            return;
        }
        let mut config = c.plan.render(&sb.rt, attempt);
        if self.hosts_file().exists() {
            config.mounts.push(cri::Mount {
                container_path: "/etc/hosts".into(),
                host_path: self.hosts_file().to_string_lossy().into_owned(),
                ..Default::default()
            });
        }
        if c.plan.run_as_non_root {
            if let Err(e) = self.check_non_root(&config, &image).await {
                self.start_failed(i, "CreateContainerConfigError", e, now);
                return;
            }
        }
        let created = self
            .cri
            .runtime
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sb.id.clone(),
                config: Some(config),
                sandbox_config: Some(self.plan.sandbox_config(self.sandbox_attempt)),
            })
            .await;
        let id = match created {
            Ok(r) => r.into_inner().container_id,
            Err(e) => {
                self.start_failed(i, "CreateContainerError", e.message().to_string(), now);
                return;
            }
        };
        self.event(
            "Normal",
            "Created",
            format!("Created container {name}"),
            Some(&name),
        );
        if let Err(e) = self
            .cri
            .runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
        {
            self.remove_container(id.clone()).await;
            self.start_failed(i, "RunContainerError", e.message().to_string(), now);
            return;
        }
        let st = self.container_status(&id).await.unwrap_or_default();
        let started_at = if st.started_at > 0 {
            st.started_at
        } else {
            nanos(now)
        };
        let target = Target::new(id.clone(), &sb.ip);
        let mut inst = Instance::new(id.clone(), attempt, st.log_path, started_at, None, false);
        self.spawn_probes(i, &mut inst, &target);
        if let Some(old) = self.ctrs[i].previous.take() {
            self.remove_container(old.id).await;
        }
        let c = &mut self.ctrs[i];
        c.previous = c.current.take();
        if c.starts > 0 {
            c.restart_count += 1;
        }
        c.starts += 1;
        c.pending = None;
        c.waiting = None;
        let post_start = c.plan.lifecycle.post_start.clone();
        let post_started = inst.post_started.clone();
        c.current = Some(inst);
        self.event(
            "Normal",
            "Started",
            format!("Started container {name}"),
            Some(&name),
        );
        if let Some(h) = post_start {
            let grace = self.plan.termination_grace_period;
            if let Err(e) = actions::hook(&mut self.cri, &target, &h, grace).await {
                self.event(
                    "Warning",
                    "FailedPostStartHook",
                    format!("PostStartHook failed: {e}"),
                    Some(&name),
                );
                self.kill(i, "FailedPostStartHook", None).await;
                return;
            }
        }
        post_started.store(true, Ordering::Relaxed);
    }

    fn start_failed(&mut self, i: usize, reason: &str, message: String, now: SystemTime) {
        let name = self.ctrs[i].plan.name.clone();
        self.event(
            "Warning",
            "Failed",
            format!("{reason}: {message}"),
            Some(&name),
        );
        let c = &mut self.ctrs[i];
        c.waiting = Some((reason.to_string(), message));
        c.pending = Some(c.backoff.on_exit(now));
    }

    /// runAsNonRoot: the config's user, or else the image's, must not be 0.
    async fn check_non_root(
        &mut self,
        config: &cri::ContainerConfig,
        image: &str,
    ) -> Result<(), String> {
        let uid = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.run_as_user)
            .map(|u| u.value);
        let uid = match uid {
            Some(u) => Some(u),
            None => images::status(&mut self.cri, image)
                .await
                .map(|i| i.uid.map(|u| u.value).unwrap_or(0)),
        };
        match uid {
            Some(0) | None => Err("container has runAsNonRoot and image will run as root".into()),
            Some(_) => Ok(()),
        }
    }

    pub(crate) fn spawn_probes(&self, i: usize, inst: &mut Instance, target: &Target) {
        let probes = &self.ctrs[i].plan.probes;
        let state = |kind, p: &Option<crate::manifest::probes::Probe>| {
            p.as_ref()
                .map(|p| Arc::new(Mutex::new(ProbeState::new(kind, p))))
        };
        inst.startup = state(ProbeKind::Startup, &probes.startup);
        inst.liveness = state(ProbeKind::Liveness, &probes.liveness);
        inst.readiness = state(ProbeKind::Readiness, &probes.readiness);
        let started_at = from_nanos(inst.started_at);
        let all = [
            (&probes.startup, &inst.startup),
            (&probes.liveness, &inst.liveness),
            (&probes.readiness, &inst.readiness),
        ];
        for (probe, st) in all {
            let (Some(probe), Some(st)) = (probe, st) else {
                continue;
            };
            let task = ProbeTask {
                cri: self.cri.clone(),
                clock: self.env.clock.clone(),
                target: target.clone(),
                container: i,
                probe: probe.clone(),
                state: st.clone(),
                startup: inst.startup.clone().filter(|s| !Arc::ptr_eq(s, st)),
                started_at,
                tx: self.probe_tx.clone(),
            };
            inst.tasks.push(tokio::spawn(task.run()));
        }
    }

    async fn on_probe(&mut self, r: ProbeReport) {
        let Some(c) = self.ctrs.get(r.container) else {
            return;
        };
        if c.current
            .as_ref()
            .is_none_or(|cur| cur.id != r.container_id)
        {
            return;
        }
        let name = c.plan.name.clone();
        let kind_name = match r.kind {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        };
        let probe = match r.kind {
            ProbeKind::Liveness => c.plan.probes.liveness.as_ref(),
            ProbeKind::Readiness => c.plan.probes.readiness.as_ref(),
            ProbeKind::Startup => c.plan.probes.startup.as_ref(),
        };
        let grace = probe.and_then(|p| p.termination_grace_period);
        match r.result {
            ProbeResult::Failure => {
                self.event(
                    "Warning",
                    "Unhealthy",
                    format!("{kind_name} probe failed: {}", r.message),
                    Some(&name),
                );
                if r.kind != ProbeKind::Readiness {
                    let why = format!(
                        "Container {name} failed {} probe, will be restarted",
                        kind_name.to_lowercase()
                    );
                    self.kill(r.container, &why, grace).await;
                }
            }
            ProbeResult::Success => self.event(
                "Normal",
                "ProbeSucceeded",
                format!("{kind_name} probe succeeded"),
                Some(&name),
            ),
            ProbeResult::Unknown => {}
        }
    }

    /// Kills container `i`'s running instance with the grace period (the
    /// probe's when given); the next pass sees the exit.
    async fn kill(&mut self, i: usize, why: &str, grace: Option<Duration>) {
        let Some(sb) = &self.sandbox else {
            return;
        };
        let c = &mut self.ctrs[i];
        let Some(cur) = c.current.as_mut().filter(|c| c.running()) else {
            return;
        };
        cur.stop_probes();
        let target = Target {
            container_id: cur.id.clone(),
            pod_ip: sb.ip.clone(),
        };
        let name = c.plan.name.clone();
        let pre_stop = c.plan.lifecycle.pre_stop.clone();
        let grace = grace.unwrap_or(self.plan.termination_grace_period);
        self.event("Normal", "Killing", why.to_string(), Some(&name));
        let report = killer::kill(self.cri.clone(), target, pre_stop, grace).await;
        self.kill_report(&name, report);
        let id = self.ctrs[i].current.as_ref().map(|c| c.id.clone());
        if let Some(id) = id {
            self.on_exit(i, &id).await;
        }
    }

    fn kill_report(&mut self, name: &str, r: killer::KillReport) {
        if let Some(e) = r.pre_stop_error {
            self.event(
                "Warning",
                "FailedPreStopHook",
                format!("PreStopHook failed: {e}"),
                Some(name),
            );
        }
        if let Some(e) = r.stop_error {
            self.event("Warning", "FailedKillPod", e, Some(name));
        }
    }

    /// The graceful stop: app containers in parallel, then sidecars in
    /// reverse order, each with preStop and the grace period; then the
    /// sandbox and the volumes go.
    async fn terminate(&mut self) {
        self.terminating = true;
        self.event("Normal", "Killing", "Stopping the pod".into(), None);
        self.write_status();
        for c in &mut self.ctrs {
            if let Some(cur) = c.current.as_mut() {
                cur.stop_probes();
            }
        }
        let grace = self.plan.termination_grace_period;
        let ip = self
            .sandbox
            .as_ref()
            .map(|s| s.ip.clone())
            .unwrap_or_default();
        let running = |w: &Self, kinds: &[ContainerKind]| -> Vec<usize> {
            (0..w.ctrs.len())
                .filter(|i| kinds.contains(&w.ctrs[*i].plan.kind) && w.ctrs[*i].running())
                .collect()
        };
        let apps = running(self, &[ContainerKind::App, ContainerKind::Init]);
        self.kill_many(&apps, &ip, grace).await;
        let mut sidecars = running(self, &[ContainerKind::Sidecar]);
        sidecars.reverse();
        for i in sidecars {
            self.kill_many(&[i], &ip, grace).await;
        }
        if let Some(sb) = self.sandbox.take() {
            let _ = self
                .cri
                .runtime
                .stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: sb.id.clone(),
                })
                .await;
            if let Err(e) = self
                .cri
                .runtime
                .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                    pod_sandbox_id: sb.id,
                })
                .await
            {
                tracing::warn!("pod {}: remove sandbox: {}", self.plan.name, e.message());
            }
        }
        if let Err(e) = volumes::teardown(&self.plan.pod_dir) {
            tracing::warn!("pod {}: {e}", self.plan.name);
        }
        let path = status::status_path(&self.env.status_dir, &self.plan.namespace, &self.plan.name);
        let _ = std::fs::remove_file(path);
        tracing::info!(pod = %self.plan.name, "pod removed");
    }

    async fn kill_many(&mut self, idx: &[usize], ip: &str, grace: Duration) {
        let jobs: Vec<_> = idx
            .iter()
            .filter_map(|i| {
                let c = &self.ctrs[*i];
                let cur = c.current.as_ref()?;
                let target = Target {
                    container_id: cur.id.clone(),
                    pod_ip: ip.to_string(),
                };
                Some((
                    c.plan.name.clone(),
                    killer::kill(
                        self.cri.clone(),
                        target,
                        c.plan.lifecycle.pre_stop.clone(),
                        grace,
                    ),
                ))
            })
            .collect();
        let (names, futs): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        let reports = futures_util::future::join_all(futs).await;
        for (name, r) in names.iter().zip(reports) {
            self.kill_report(name, r);
        }
    }
}

/// Creates the empty termination message file (mode 0666) for start
/// number `attempt`.
fn prepare_termination_file(plan: &ContainerPlan, attempt: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let file = plan.termination_message_file(attempt);
    let err = |e: std::io::Error| format!("termination message file {}: {e}", file.display());
    std::fs::create_dir_all(&plan.termination_dir).map_err(err)?;
    std::fs::write(&file, b"").map_err(err)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).map_err(err)
}

/// A short id for messages.
pub(crate) fn short(id: &str) -> &str {
    id.get(..13).unwrap_or(id)
}
