//! A worker's state as the status file shows it: per-container state,
//! last termination, readiness, restarts and probe results, and the pod's
//! phase, conditions (with their transition times) and STATUS column.

use std::sync::{Arc, Mutex};

use crate::manifest::ContainerKind;

use super::clock::nanos;
use super::phase::{self, InitView};
use super::probe_state::ProbeState;
use super::probe_task::lock;
use super::restarts;
use super::status::{Condition, ContainerView, PodStatus, State, Terminated};
use super::worker::{Ctr, Worker};

fn probe_views(states: [&Option<Arc<Mutex<ProbeState>>>; 3]) -> Vec<super::status::ProbeView> {
    states
        .into_iter()
        .flatten()
        .map(|s| lock(s).view())
        .collect()
}

impl Worker {
    fn container_view(&self, c: &Ctr, initialized: bool) -> ContainerView {
        let now = self.env.clock.now();
        let pod = format!(
            "{}_{}({})",
            self.plan.name, self.plan.namespace, self.plan.uid
        );
        let prev_exit = || c.previous.as_ref().and_then(|p| p.exited.clone());
        let (state, last_state): (State, Option<Terminated>) = match &c.current {
            Some(cur) if cur.running() => (
                State::Running {
                    started_at: cur.started_at,
                },
                prev_exit(),
            ),
            Some(cur) => {
                let t = cur.exited.clone().unwrap_or_default();
                match &c.pending {
                    Some(d) => {
                        let state = match restarts::crash_loop_message(d, now, &c.plan.name, &pod) {
                            Some(message) => State::Waiting {
                                reason: "CrashLoopBackOff".into(),
                                message,
                            },
                            None => State::default(),
                        };
                        (state, Some(t))
                    }
                    None => (State::Terminated(t), prev_exit()),
                }
            }
            None => {
                let (reason, message) = match &c.waiting {
                    Some((r, m)) => (r.clone(), m.clone()),
                    None if c.plan.kind != ContainerKind::App || !initialized => {
                        ("PodInitializing".into(), String::new())
                    }
                    None => ("ContainerCreating".into(), String::new()),
                };
                (State::Waiting { reason, message }, prev_exit())
            }
        };
        let cur = c.current.as_ref();
        ContainerView {
            name: c.plan.name.clone(),
            image: c
                .plan
                .config
                .image
                .as_ref()
                .map(|i| i.image.clone())
                .unwrap_or_default(),
            container_id: cur.map(|c| c.id.clone()),
            state,
            last_state,
            ready: cur.is_some_and(|c| c.ready()),
            started: cur.is_some_and(|c| c.started()),
            restart_count: c.restart_count,
            log_path: cur.map(|c| c.log_path.clone()).filter(|p| !p.is_empty()),
            previous_log_path: c
                .previous
                .as_ref()
                .map(|p| p.log_path.clone())
                .filter(|p| !p.is_empty()),
            probes: cur
                .map(|c| probe_views([&c.startup, &c.liveness, &c.readiness]))
                .unwrap_or_default(),
        }
    }

    fn set_condition(&mut self, kind: &str, status: bool, reason: Option<&str>) {
        let now = nanos(self.env.clock.now());
        match self.conditions.iter_mut().find(|c| c.kind == kind) {
            Some(c) if c.status == status => {}
            Some(c) => {
                c.status = status;
                c.last_transition = now;
                c.reason = reason.map(str::to_string);
            }
            None => self.conditions.push(Condition {
                kind: kind.into(),
                status,
                last_transition: now,
                reason: reason.map(str::to_string),
            }),
        }
    }

    /// The status file's content now.
    pub(crate) fn build_status(&mut self) -> PodStatus {
        let n_init = self.plan.init_containers.len();
        let kinds: Vec<ContainerKind> = self.ctrs[..n_init].iter().map(|c| c.plan.kind).collect();
        let init_done = self.ctrs[..n_init].iter().all(|c| match c.plan.kind {
            ContainerKind::Sidecar => c.current.as_ref().is_some_and(|i| i.started()),
            _ => c.completed,
        });
        let init: Vec<ContainerView> = self.ctrs[..n_init]
            .iter()
            .map(|c| self.container_view(c, init_done))
            .collect();
        let apps: Vec<ContainerView> = self.ctrs[n_init..]
            .iter()
            .map(|c| self.container_view(c, init_done))
            .collect();
        let init_views: Vec<InitView<'_>> = init
            .iter()
            .zip(&kinds)
            .map(|(view, kind)| InitView { view, kind: *kind })
            .collect();
        let phase = phase::phase(
            &init_views,
            &apps,
            self.plan.restart_policy,
            self.init_failed || self.deadline_exceeded,
        );
        let display = if self.deadline_exceeded && !self.terminating {
            "DeadlineExceeded".to_string()
        } else {
            phase::display_status(&init_views, &apps, phase, self.terminating)
        };
        let initialized = phase::initialized(&init_views);
        let containers_ready = phase::containers_ready(&apps) && !self.terminating;
        drop(init_views);
        let not_ready = (!containers_ready).then_some("ContainersNotReady");
        self.set_condition("PodScheduled", true, None);
        self.set_condition(
            "Initialized",
            initialized,
            (!initialized).then_some("ContainersNotInitialized"),
        );
        self.set_condition("ContainersReady", containers_ready, not_ready);
        self.set_condition("Ready", containers_ready, not_ready);
        PodStatus {
            name: self.plan.name.clone(),
            namespace: self.plan.namespace.clone(),
            uid: self.plan.uid.clone(),
            source: self.source.clone(),
            phase: phase.as_str().into(),
            status: display,
            message: self
                .deadline_exceeded
                .then(|| "Pod was active on the node longer than the specified deadline".into()),
            sandbox_id: self.sandbox.as_ref().map(|s| s.id.clone()),
            pod_ip: self
                .sandbox
                .as_ref()
                .map(|s| s.ip.clone())
                .filter(|ip| !ip.is_empty()),
            created_at: self.created_at,
            start_time: self.sandbox.as_ref().map(|s| s.started),
            terminating: self.terminating,
            conditions: self.conditions.clone(),
            init_containers: init,
            containers: apps,
            events: self.events.iter().cloned().collect(),
        }
    }
}
