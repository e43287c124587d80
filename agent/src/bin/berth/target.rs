//! What `exec`, `attach` and `port-forward` act on, from the names users
//! type: a manifest pod by name (`-n` namespace, `pod/NAME` accepted as
//! kubectl writes it), a CRI sandbox id, or a container id (unique prefixes
//! as berthd accepts them). A pod's container is the one `-c` names, or its
//! only one.

use anyhow::{bail, Context};
use berth_agent::cri_client::CriClient;
use berth_proto::v1 as cri;

use crate::kube::Kube;
use crate::logs::pick_container;

/// How the user named the target.
pub struct Target<'a> {
    /// Pod name, sandbox id or container id.
    pub name: &'a str,
    /// The pod's container (`-c`).
    pub container: Option<&'a str>,
    /// The manifest pod's namespace (`-n`).
    pub namespace: &'a str,
}

/// A container the target resolved to.
pub struct Resolved {
    /// Its full id.
    pub id: String,
    /// Its CRI status.
    pub status: cri::ContainerStatus,
    /// The verbose status's `info` (JSON), if berthd gave one.
    pub info: Option<serde_json::Value>,
}

/// The name without kubectl's `pod/` or `pods/` kind prefix.
fn bare(name: &str) -> &str {
    name.strip_prefix("pod/")
        .or_else(|| name.strip_prefix("pods/"))
        .unwrap_or(name)
}

async fn container_status(c: &mut CriClient, id: &str) -> Option<Resolved> {
    let r = c
        .runtime
        .container_status(cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        })
        .await
        .ok()?
        .into_inner();
    let info = r
        .info
        .get("info")
        .and_then(|i| serde_json::from_str(i).ok());
    let status = r.status?;
    Some(Resolved {
        id: status.id.clone(),
        status,
        info,
    })
}

/// The container of sandbox `pod` named `name`, or its only one.
async fn sandbox_container(
    c: &mut CriClient,
    pod: &str,
    name: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let Ok(r) = c
        .runtime
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.into(),
            verbose: false,
        })
        .await
    else {
        return Ok(None);
    };
    let r = r.into_inner();
    // Restarts leave exited instances with the same name: prefer a running
    // one, then the newest.
    let mut all = r.containers_statuses;
    all.sort_by_key(|s| {
        (
            s.state == cri::ContainerState::ContainerRunning as i32,
            s.created_at,
        )
    });
    fn name_of(s: &cri::ContainerStatus) -> &str {
        s.metadata.as_ref().map_or("", |m| m.name.as_str())
    }
    let mut names: Vec<&str> = all.iter().map(name_of).collect();
    names.sort_unstable();
    names.dedup();
    let found = match name {
        Some(n) => all.iter().rev().find(|s| name_of(s) == n),
        None if names.len() == 1 => all.last(),
        None if names.is_empty() => bail!("pod sandbox {pod} has no containers"),
        None => bail!(
            "a container name must be specified for pod sandbox {pod} (-c), choose one of {names:?}"
        ),
    };
    match found {
        Some(s) => Ok(Some(s.id.clone())),
        None => bail!(
            "container {:?} is not valid for pod sandbox {pod}: choose one of {names:?}",
            name.unwrap_or_default()
        ),
    }
}

/// The id of the container `t` names: a pod's, or the name itself (taken
/// as a container id, unchecked).
pub async fn container_id(
    c: &mut CriClient,
    kube: &Kube,
    t: &Target<'_>,
) -> anyhow::Result<String> {
    let name = bare(t.name);
    let id = if let Some(pod) = kube.pod(t.namespace, name) {
        let view = pick_container(&pod, t.container)?;
        view.container_id.clone().with_context(|| {
            format!(
                "container {:?} in pod {}/{} has not started",
                view.name, t.namespace, pod.name
            )
        })?
    } else if let Some(id) = sandbox_container(c, name, t.container).await? {
        id
    } else if t.container.is_some() {
        bail!(
            "no pod {name:?} in namespace {:?} and no pod sandbox with that id",
            t.namespace
        );
    } else {
        t.name.to_string()
    };
    Ok(id)
}

/// The container `t` names and its status; an error says what was looked
/// for.
pub async fn container(c: &mut CriClient, kube: &Kube, t: &Target<'_>) -> anyhow::Result<Resolved> {
    let id = container_id(c, kube, t).await?;
    let name = bare(t.name);
    container_status(c, &id).await.with_context(|| {
        format!(
            "no pod {name:?} in namespace {:?}, no pod sandbox and no container with that id",
            t.namespace
        )
    })
}

/// The pod sandbox id of a manifest pod `name` (in `namespace`) or of the
/// sandbox id (or prefix) `name`.
pub async fn sandbox(
    c: &mut CriClient,
    kube: &Kube,
    namespace: &str,
    name: &str,
) -> anyhow::Result<String> {
    let name = bare(name);
    let id = match kube.pod(namespace, name) {
        Some(pod) => pod
            .sandbox_id
            .with_context(|| format!("pod {namespace}/{name} has no sandbox yet"))?,
        None => name.to_string(),
    };
    let r = c
        .runtime
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: id,
            verbose: false,
        })
        .await
        .with_context(|| {
            format!("no pod {name:?} in namespace {namespace:?} and no pod sandbox with that id")
        })?
        .into_inner();
    let status = r.status.unwrap_or_default();
    if status.state != cri::PodSandboxState::SandboxReady as i32 {
        bail!("pod sandbox {} is not ready", status.id);
    }
    Ok(status.id)
}

/// Fails unless the container runs (exec and attach need it to).
pub fn need_running(r: &Resolved) -> anyhow::Result<()> {
    if r.status.state == cri::ContainerState::ContainerRunning as i32 {
        return Ok(());
    }
    let state = match cri::ContainerState::try_from(r.status.state) {
        Ok(cri::ContainerState::ContainerCreated) => "created",
        Ok(cri::ContainerState::ContainerExited) => "exited",
        _ => "in an unknown state",
    };
    bail!("container {} is {state}, not running", r.id)
}

/// Whether the container was created with a terminal: `process.terminal`
/// in its bundle's `config.json` (the bundle directory is in the verbose
/// status); false when that cannot be read.
pub fn has_tty(r: &Resolved) -> bool {
    let Some(bundle) = r.info.as_ref().and_then(|i| i["bundle"].as_str()) else {
        return false;
    };
    std::fs::read(std::path::Path::new(bundle).join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["process"]["terminal"].as_bool())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_prefixes_are_dropped() {
        assert_eq!(bare("pod/web"), "web");
        assert_eq!(bare("pods/web"), "web");
        assert_eq!(bare("web"), "web");
        assert_eq!(bare("deploy/web"), "deploy/web");
    }
}
