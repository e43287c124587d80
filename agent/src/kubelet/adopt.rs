//! Taking a pod over from a previous berthd (after a restart or a crash):
//! the newest ready sandbox of the pod's uid and, per container, its newest
//! instance (and the one before, for `--previous`) become the worker's, so
//! a berthd restart restarts nothing. Other sandboxes of the uid and older
//! instances are removed. Exits that happened meanwhile are seen by the
//! next sync, which applies the restart policy as usual.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use berth_proto::v1 as cri;

use crate::manifest::labels::{CONTAINER_NAME, POD_UID};
use crate::manifest::restart::termination_reason;
use crate::manifest::RuntimeValues;

use super::actions::Target;
use super::manager::STATIC_POD_LABEL;
use super::status::Terminated;
use super::worker::{Instance, Sandbox, Worker};

impl Worker {
    async fn sandboxes_of_uid(&mut self) -> Vec<cri::PodSandbox> {
        let selector = [
            (POD_UID.to_string(), self.plan.uid.clone()),
            (STATIC_POD_LABEL.to_string(), "true".to_string()),
        ]
        .into();
        let mut list = self
            .cri
            .runtime
            .list_pod_sandbox(cri::ListPodSandboxRequest {
                filter: Some(cri::PodSandboxFilter {
                    label_selector: selector,
                    ..Default::default()
                }),
            })
            .await
            .map(|r| r.into_inner().items)
            .unwrap_or_default();
        list.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        list
    }

    async fn instance(&mut self, c: &cri::Container) -> Option<Instance> {
        let st = self
            .cri
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: c.id.clone(),
                verbose: false,
            })
            .await
            .ok()?
            .into_inner()
            .status?;
        let exited =
            (st.state == cri::ContainerState::ContainerExited as i32).then(|| Terminated {
                exit_code: st.exit_code,
                reason: if st.reason.is_empty() {
                    termination_reason(st.exit_code, false).into()
                } else {
                    st.reason.clone()
                },
                message: st.message.clone(),
                started_at: st.started_at,
                finished_at: st.finished_at,
                container_id: c.id.clone(),
            });
        Some(Instance {
            id: c.id.clone(),
            attempt: c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
            log_path: st.log_path,
            started_at: st.started_at,
            exited,
            liveness: None,
            readiness: None,
            startup: None,
            post_started: Arc::new(AtomicBool::new(true)),
            tasks: Vec::new(),
        })
    }

    /// Adopts what a previous berthd left for this pod, if anything.
    pub(crate) async fn adopt(&mut self) {
        let mut found = self.sandboxes_of_uid().await;
        let ready = found
            .iter()
            .position(|s| s.state == cri::PodSandboxState::SandboxReady as i32)
            .map(|i| found.remove(i));
        for old in found {
            let _ = self
                .cri
                .runtime
                .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                    pod_sandbox_id: old.id,
                })
                .await;
        }
        let Some(sb) = ready else {
            return;
        };
        // The file sets may have changed while no berthd was watching.
        if let Err(e) = super::volumes::setup_all(&self.plan.pod_dir, &self.plan.volumes) {
            self.event("Warning", "FailedMount", e.to_string(), None);
        }
        let net = self
            .cri
            .runtime
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: sb.id.clone(),
                verbose: false,
            })
            .await
            .ok()
            .and_then(|r| r.into_inner().status)
            .and_then(|s| s.network);
        let mut pod_ips: Vec<String> = net
            .map(|n| {
                std::iter::once(n.ip)
                    .chain(n.additional_ips.into_iter().map(|i| i.ip))
                    .filter(|ip| !ip.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if pod_ips.is_empty() {
            pod_ips = self.env.host_ips.clone();
        }
        let ip = pod_ips.first().cloned().unwrap_or_default();
        self.sandbox_attempt = sb.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
        self.sandbox = Some(Sandbox {
            id: sb.id.clone(),
            ip: ip.clone(),
            rt: RuntimeValues {
                pod_ips,
                host_ips: self.env.host_ips.clone(),
            },
            started: sb.created_at,
        });
        let listed = self
            .cri
            .runtime
            .list_containers(cri::ListContainersRequest {
                filter: Some(cri::ContainerFilter {
                    pod_sandbox_id: sb.id.clone(),
                    ..Default::default()
                }),
            })
            .await
            .map(|r| r.into_inner().containers)
            .unwrap_or_default();
        let mut by_name: HashMap<String, Vec<cri::Container>> = HashMap::new();
        for c in listed {
            if let Some(name) = c.labels.get(CONTAINER_NAME) {
                by_name.entry(name.clone()).or_default().push(c);
            }
        }
        let mut adopted = 0;
        for i in 0..self.ctrs.len() {
            let Some(mut list) = by_name.remove(&self.ctrs[i].plan.name) else {
                continue;
            };
            list.sort_by_key(|c| std::cmp::Reverse(c.metadata.as_ref().map(|m| m.attempt)));
            let mut list = list.into_iter();
            let (Some(newest), older) = (list.next(), list.next()) else {
                continue;
            };
            for stale in list {
                let _ = self
                    .cri
                    .runtime
                    .remove_container(cri::RemoveContainerRequest {
                        container_id: stale.id,
                    })
                    .await;
            }
            let Some(mut cur) = self.instance(&newest).await else {
                continue;
            };
            let previous = match older {
                Some(o) => self.instance(&o).await,
                None => None,
            };
            if cur.running() {
                let target = Target {
                    container_id: cur.id.clone(),
                    pod_ip: if ip.is_empty() {
                        "127.0.0.1".into()
                    } else {
                        ip.clone()
                    },
                };
                self.spawn_probes(i, &mut cur, &target);
            } else {
                // The next sync records the exit and applies the policy.
                cur.exited = None;
            }
            let c = &mut self.ctrs[i];
            c.starts = cur.attempt + 1;
            c.restart_count = cur.attempt;
            c.current = Some(cur);
            c.previous = previous;
            adopted += 1;
        }
        let short = super::worker::short(&sb.id).to_string();
        self.event(
            "Normal",
            "Adopted",
            format!(
                "pod sandbox {short} and {adopted} container(s) taken over from a previous berthd"
            ),
            None,
        );
    }
}
