//! Container and pod state changes: applied from the monitor's events (and
//! from berthd's own calls), persisted, and published exactly once each, in
//! order, on the GetContainerEvents stream. Changes only move forward
//! (created → running → exited), so an event that arrives after berthd has
//! already applied the same change is a no-op.

use std::sync::{Arc, Weak};

use berth_proto::v1::{ContainerEventResponse, ContainerEventType};

use super::convert;
use super::records::{self, ContainerPhase, ContainerRecord, SandboxPhase, CONTAINER_RECORD};
use super::store::{lock, Container, Pod};
use super::time::{now_ns, parse_rfc3339};
use super::Daemon;
use crate::monitor::protocol::Event;
use crate::monitor::MonitorClient;

/// How a container ended, from the monitor.
#[derive(Debug, Clone)]
pub struct Exit {
    /// Exit code (128 + signal when killed by one).
    pub exit_code: i32,
    /// Exit time, ns.
    pub finished_at: i64,
    /// The OOM killer killed one of its processes.
    pub oom_killed: bool,
}

/// CRI's reason for an exit, as containerd gives it.
pub fn exit_reason(exit_code: i32, oom_killed: bool) -> &'static str {
    if oom_killed {
        "OOMKilled"
    } else if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

impl Daemon {
    /// Publishes a container event with the container's and its pod's status.
    pub fn publish(&self, kind: ContainerEventType, c: &ContainerRecord) {
        let pod = self
            .store
            .pod(&c.pod_id)
            .map(|p| convert::pod_status(&p.snapshot()));
        let _ = self.events.send(ContainerEventResponse {
            container_id: c.id.clone(),
            container_event_type: kind as i32,
            created_at: now_ns(),
            pod_sandbox_status: pod,
            containers_statuses: vec![convert::container_status(c)],
        });
    }

    /// Publishes a pod sandbox event (container id = sandbox id, as
    /// containerd does).
    pub fn publish_pod(&self, kind: ContainerEventType, pod: &Pod) {
        let status = convert::pod_status(&pod.snapshot());
        let containers = self
            .store
            .containers_of(&pod.id)
            .iter()
            .map(|c| convert::container_status(&c.snapshot()))
            .collect();
        let _ = self.events.send(ContainerEventResponse {
            container_id: pod.id.clone(),
            container_event_type: kind as i32,
            created_at: now_ns(),
            pod_sandbox_status: Some(status),
            containers_statuses: containers,
        });
    }

    /// Applies `f` to the container's record if it moves the phase forward
    /// to `to`; persists and publishes. Returns whether it applied.
    fn advance(
        &self,
        c: &Container,
        to: ContainerPhase,
        f: impl FnOnce(&mut ContainerRecord),
    ) -> bool {
        let rec = {
            let mut r = lock(&c.record);
            if r.phase >= to {
                return false;
            }
            r.phase = to;
            f(&mut r);
            r.clone()
        };
        if let Err(e) = records::save(&c.dir, CONTAINER_RECORD, &rec) {
            tracing::error!(container = %c.id, "persist state: {e}");
        }
        c.phase.send_replace(to);
        let kind = match to {
            ContainerPhase::Running => ContainerEventType::ContainerStartedEvent,
            ContainerPhase::Exited => ContainerEventType::ContainerStoppedEvent,
            ContainerPhase::Creating | ContainerPhase::Created => {
                ContainerEventType::ContainerCreatedEvent
            }
        };
        self.publish(kind, &rec);
        true
    }

    /// The container was created (its init waits for start).
    pub fn set_created(&self, c: &Container) -> bool {
        self.advance(c, ContainerPhase::Created, |_| {})
    }

    /// The container runs since `started_at` (ns).
    pub fn set_running(&self, c: &Container, pid: i32, started_at: i64) -> bool {
        self.advance(c, ContainerPhase::Running, |r| {
            r.pid = pid;
            r.started_at = started_at;
        })
    }

    /// The container has exited.
    pub fn set_exited(&self, c: &Container, exit: &Exit) -> bool {
        self.advance(c, ContainerPhase::Exited, |r| {
            r.exit_code = exit.exit_code;
            r.finished_at = exit.finished_at;
            r.reason = exit_reason(exit.exit_code, exit.oom_killed).to_string();
            if r.started_at == 0 {
                // Exited before it was seen running: never leave started_at
                // after finished_at.
                r.started_at = exit.finished_at;
            }
        })
    }

    /// The container was lost while berthd was down (no monitor and no exit
    /// record): exited with an unknown status, as containerd reports it.
    pub fn set_lost(&self, c: &Container) -> bool {
        self.advance(c, ContainerPhase::Exited, |r| {
            r.exit_code = 255;
            r.finished_at = now_ns();
            r.reason = "Unknown".to_string();
            r.message = "the container's monitor was gone when berthd started".to_string();
            if r.started_at == 0 {
                r.started_at = r.finished_at;
            }
        })
    }

    /// Marks the pod not ready (its pause process is gone) and persists it.
    pub fn set_pod_not_ready(&self, pod: &Pod) {
        let rec = {
            let mut r = lock(&pod.record);
            if r.phase == SandboxPhase::NotReady {
                return;
            }
            r.phase = SandboxPhase::NotReady;
            r.clone()
        };
        if let Err(e) = records::save(&pod.dir, records::SANDBOX_RECORD, &rec) {
            tracing::error!(pod = %pod.id, "persist state: {e}");
        }
        self.publish_pod(ContainerEventType::ContainerStoppedEvent, pod);
    }

    /// Applies one monitor event.
    fn on_monitor_event(&self, pod_id: &str, ev: Event) {
        match ev {
            Event::Started {
                id,
                pid,
                started_at,
            } => {
                if let Some(c) = self.store.container(&id) {
                    self.set_running(&c, pid, parse_rfc3339(&started_at).unwrap_or_else(now_ns));
                }
            }
            Event::Exited {
                id,
                exit_code,
                finished_at,
                oom_killed,
                ..
            } => {
                if let Some(c) = self.store.container(&id) {
                    let exit = Exit {
                        exit_code,
                        finished_at: parse_rfc3339(&finished_at).unwrap_or_else(now_ns),
                        oom_killed,
                    };
                    self.set_exited(&c, &exit);
                }
            }
            Event::PauseExited { pid, exit_code, .. } => {
                tracing::info!(pod = pod_id, pid, exit_code, "pause process exited");
                if let Some(pod) = self.store.pod(pod_id) {
                    self.set_pod_not_ready(&pod);
                }
            }
        }
    }

    /// Keeps `client` as the pod's monitor connection and applies its events
    /// until the connection closes.
    pub fn attach_monitor(self: &Arc<Self>, pod: &Pod, client: Arc<MonitorClient>) {
        let mut rx = client.subscribe();
        *lock(&pod.monitor) = Some(client);
        let daemon: Weak<Daemon> = Arc::downgrade(self);
        let pod_id = pod.id.clone();
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let Some(d) = daemon.upgrade() else { break };
                d.on_monitor_event(&pod_id, ev);
            }
            tracing::debug!(pod = %pod_id, "monitor connection closed");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_follow_containerd() {
        assert_eq!(exit_reason(0, false), "Completed");
        assert_eq!(exit_reason(1, false), "Error");
        assert_eq!(exit_reason(137, true), "OOMKilled");
    }
}
