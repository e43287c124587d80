//! One probe's loop for one container instance: a tick every
//! `periodSeconds` (the first at once), each running the handler when the
//! shared [`ProbeState`] says so (initial delay passed, not gated by the
//! startup probe, not on hold), and reporting result changes to the pod
//! worker. The worker aborts the task when the instance goes.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::cri_client::CriClient;
use crate::manifest::probes::{Probe, ProbeKind};

use super::actions::{self, Target};
use super::clock::Clock;
use super::probe_state::{ProbeResult, ProbeState};

/// A probe result change, for the worker.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// The container's index in the pod (init containers first).
    pub container: usize,
    pub container_id: String,
    pub kind: ProbeKind,
    pub result: ProbeResult,
    pub message: String,
}

/// Locks a probe state, recovering from a poisoned lock (the state is
/// plain data).
pub fn lock(s: &Mutex<ProbeState>) -> std::sync::MutexGuard<'_, ProbeState> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything one probe loop needs.
pub struct ProbeTask {
    pub cri: CriClient,
    pub clock: Arc<dyn Clock>,
    pub target: Target,
    pub container: usize,
    pub probe: Probe,
    pub state: Arc<Mutex<ProbeState>>,
    /// The container's startup probe, which gates liveness and readiness.
    pub startup: Option<Arc<Mutex<ProbeState>>>,
    pub started_at: SystemTime,
    pub tx: mpsc::UnboundedSender<ProbeReport>,
}

impl ProbeTask {
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(self.probe.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let gated = self
                .startup
                .as_ref()
                .is_some_and(|s| lock(s).result() != ProbeResult::Success);
            let now = self.clock.now();
            if !lock(&self.state).should_run(now, self.started_at, gated) {
                continue;
            }
            let outcome = actions::probe(
                &mut self.cri,
                &self.target,
                &self.probe.action,
                self.probe.timeout,
            )
            .await;
            let (ok, message) = match outcome {
                Ok(()) => (true, String::new()),
                Err(m) => (false, m),
            };
            let (changed, kind) = {
                let mut s = lock(&self.state);
                (s.observe(ok, message.clone(), self.clock.now()), s.kind)
            };
            if let Some(result) = changed {
                let report = ProbeReport {
                    container: self.container,
                    container_id: self.target.container_id.clone(),
                    kind,
                    result,
                    message,
                };
                if self.tx.send(report).is_err() {
                    return;
                }
            }
        }
    }
}
