//! The plan a runner executes for one pod: the CRI sandbox config, the
//! volumes to set up, and per init and app container its CRI config, probes,
//! hooks, restart policy and termination settings. Values only the running
//! sandbox knows (pod and host IPs) stay deferred until
//! [`ContainerPlan::render`].

use std::path::PathBuf;
use std::time::Duration;

use berth_proto::v1::{ContainerConfig, ContainerMetadata, Mount, PodSandboxConfig};

use super::dns::{self, HostAlias};
use super::env::{EnvVars, RuntimeValues, Template};
use super::labels;
use super::lifecycle::{Lifecycle, TerminationMessage};
use super::probes::Probes;
use super::resources::QosClass;
use super::restart::{ContainerKind, RestartPolicy};
use super::volumes::VolumePlan;

/// `imagePullPolicy`, defaulted as the apiserver does (Always for `:latest`
/// or an untagged image, IfNotPresent otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub(crate) fn resolve(explicit: Option<&str>, image: &str) -> Self {
        match explicit {
            Some("Always") => Self::Always,
            Some("Never") => Self::Never,
            Some("IfNotPresent") => Self::IfNotPresent,
            _ => {
                let last = image.rsplit('/').next().unwrap_or(image);
                let tagged = last.contains(':') || image.contains('@');
                if !tagged || last.ends_with(":latest") {
                    Self::Always
                } else {
                    Self::IfNotPresent
                }
            }
        }
    }
}

/// One pod, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct PodPlan {
    pub name: String,
    pub namespace: String,
    /// `metadata.uid`, or one derived from the pod's content, node and
    /// source (as kubelet does for static pods): the same file gives the
    /// same uid, a changed pod a new one.
    pub uid: String,
    /// 1-based document number in the file.
    pub document: usize,
    /// RunPodSandbox's config (attempt 0).
    pub sandbox: PodSandboxConfig,
    /// The pod's hostname; `None` for a host-network pod (it keeps the node's).
    pub hostname: Option<String>,
    /// `<hostname>.<subdomain>.<namespace>.svc.<domain>` with a subdomain.
    pub fqdn: Option<String>,
    /// Extra /etc/hosts entries (`hostAliases`), see
    /// [`PodPlan::hosts_file_extra`].
    pub host_aliases: Vec<HostAlias>,
    pub restart_policy: RestartPolicy,
    pub qos: QosClass,
    /// `terminationGracePeriodSeconds` (default 30 s).
    pub termination_grace_period: Duration,
    /// `activeDeadlineSeconds`.
    pub active_deadline: Option<Duration>,
    /// The pod's directory: volumes and termination message files.
    pub pod_dir: PathBuf,
    /// Volumes, in spec order; set them all up before the first container.
    pub volumes: Vec<VolumePlan>,
    /// Init containers (and sidecars) in order.
    pub init_containers: Vec<ContainerPlan>,
    pub containers: Vec<ContainerPlan>,
    /// What kubelet would report as warning events (and went on).
    pub warnings: Vec<String>,
}

impl PodPlan {
    /// The sandbox config for attempt `attempt` (a re-created sandbox).
    pub fn sandbox_config(&self, attempt: u32) -> PodSandboxConfig {
        let mut s = self.sandbox.clone();
        if let Some(m) = s.metadata.as_mut() {
            m.attempt = attempt;
        }
        s
    }

    /// The lines to append to the pod's hosts file: `hostAliases`, and the
    /// FQDN line when the pod IP is known.
    pub fn hosts_file_extra(&self, pod_ip: Option<&str>) -> String {
        let mut out = String::new();
        if let (Some(ip), Some(fqdn), Some(host)) = (pod_ip, &self.fqdn, &self.hostname) {
            out.push_str(&format!("{ip}\t{fqdn}\t{host}\n"));
        }
        out.push_str(&dns::host_alias_lines(&self.host_aliases));
        out
    }

    /// All containers, init first.
    pub fn all_containers(&self) -> impl Iterator<Item = &ContainerPlan> {
        self.init_containers.iter().chain(&self.containers)
    }
}

/// One container, ready to create.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerPlan {
    pub name: String,
    pub kind: ContainerKind,
    /// The policy this container restarts by (see [`ContainerKind::restart_policy`]).
    pub restart_policy: RestartPolicy,
    pub image_pull_policy: PullPolicy,
    /// CreateContainer's config for the first start, with deferred values
    /// empty: use [`ContainerPlan::render`] when
    /// [`ContainerPlan::needs_runtime_values`], and for restarts.
    pub config: ContainerConfig,
    /// The runner must refuse to start the container as uid 0 (the image's
    /// user counts when the config sets none).
    pub run_as_non_root: bool,
    pub probes: Probes,
    pub lifecycle: Lifecycle,
    pub termination_message: TerminationMessage,
    /// Spec hash (also in the `io.kubernetes.container.hash` annotation).
    pub hash: String,
    pub(crate) env: EnvVars,
    pub(crate) command: Vec<Template>,
    pub(crate) args: Vec<Template>,
    /// `<pod dir>/containers/<name>`: one termination message file per start.
    pub termination_dir: PathBuf,
}

impl ContainerPlan {
    /// Whether env, command or args use pod/host IPs.
    pub fn needs_runtime_values(&self) -> bool {
        !(self.env.is_static()
            && self
                .command
                .iter()
                .chain(&self.args)
                .all(Template::is_static))
    }

    /// The host file mounted at the termination message path for start
    /// number `restart_count` (the runner creates it empty, mode 0666).
    pub fn termination_message_file(&self, restart_count: u32) -> PathBuf {
        self.termination_dir.join(restart_count.to_string())
    }

    /// CreateContainer's config for start number `restart_count` (0 first),
    /// with deferred values from `rt`: attempt, log path
    /// `<name>/<restart count>.log`, restart count annotation, termination
    /// message mount.
    pub fn render(&self, rt: &RuntimeValues, restart_count: u32) -> ContainerConfig {
        let mut c = self.config.clone();
        c.metadata = Some(ContainerMetadata {
            name: self.name.clone(),
            attempt: restart_count,
        });
        c.envs = self.env.render(rt);
        c.command = self.command.iter().map(|t| t.render(rt)).collect();
        c.args = self.args.iter().map(|t| t.render(rt)).collect();
        c.log_path = format!("{}/{restart_count}.log", self.name);
        labels::set_restart_count(&mut c.annotations, restart_count);
        let msg = Mount {
            container_path: self.termination_message.path.clone(),
            host_path: self
                .termination_message_file(restart_count)
                .to_string_lossy()
                .into_owned(),
            ..Default::default()
        };
        match c
            .mounts
            .iter_mut()
            .find(|m| m.container_path == msg.container_path)
        {
            Some(m) => *m = msg,
            None => c.mounts.push(msg),
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_defaults() {
        let r = PullPolicy::resolve;
        assert_eq!(r(None, "busybox"), PullPolicy::Always);
        assert_eq!(r(None, "berth.local/busybox:latest"), PullPolicy::Always);
        assert_eq!(r(None, "localhost:5000/busybox"), PullPolicy::Always);
        assert_eq!(
            r(None, "localhost:5000/busybox:1.36"),
            PullPolicy::IfNotPresent
        );
        assert_eq!(r(None, "busybox@sha256:abc"), PullPolicy::IfNotPresent);
        assert_eq!(r(Some("Never"), "busybox"), PullPolicy::Never);
        assert_eq!(
            r(Some("IfNotPresent"), "busybox:latest"),
            PullPolicy::IfNotPresent
        );
    }
}
