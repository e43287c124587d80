//! Taking a pod over from a previous berthd (after a restart or a crash):
//! the newest ready sandbox of the pod's uid and, per container, its newest
//! instance (and the one before, for `--previous`) become the worker's, so
//! a berthd restart restarts nothing. Other sandboxes of the uid and older
//! instances are removed. Exits that happened meanwhile are seen by the
//! next sync, which applies the restart policy as usual.

use std::collections::HashMap;

use berth_proto::v1 as cri;

use crate::manifest::labels::{CONTAINER_NAME, POD_UID};
use crate::manifest::restart::termination_reason;

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
        let st = self.container_status(&c.id).await?;
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
        Some(Instance::new(
            c.id.clone(),
            c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
            st.log_path,
            st.started_at,
            exited,
            true,
        ))
    }

    /// Adopts what a previous berthd left for this pod, if anything.
    pub(crate) async fn adopt(&mut self) {
        let mut found = self.sandboxes_of_uid().await;
        let ready = found
            .iter()
            .position(|s| s.state == cri::PodSandboxState::SandboxReady as i32)
            .map(|i| found.remove(i));
        for old in found {
            self.remove_sandbox(old.id).await;
        }
        let Some(sb) = ready else {
            return;
        };
        // The file sets may have changed while no berthd was watching.
        if let Err(e) = super::volumes::setup_all(&self.plan.pod_dir, &self.plan.volumes) {
            self.event("Warning", "FailedMount", e.to_string(), None);
        }
        let pod_ips = self.pod_ips(&sb.id).await;
        let sandbox = Sandbox::new(
            sb.id.clone(),
            pod_ips,
            self.env.host_ips.clone(),
            sb.created_at,
        );
        let ip = sandbox.ip.clone();
        self.sandbox_attempt = sb.metadata.as_ref().map(|m| m.attempt).unwrap_or(0);
        self.sandbox = Some(sandbox);
        let listed = self.containers_of(&sb.id).await.unwrap_or_default();
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
                self.remove_container(stale.id).await;
            }
            let Some(mut cur) = self.instance(&newest).await else {
                continue;
            };
            let previous = match older {
                Some(o) => self.instance(&o).await,
                None => None,
            };
            if cur.running() {
                let target = Target::new(cur.id.clone(), &ip);
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
