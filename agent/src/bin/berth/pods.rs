//! The CRI-level commands: `berth version`, `sandboxes` (`pods --cri`),
//! `ps`, `inspect`, `stop` and `rm` by sandbox id, `exec` without a
//! terminal or stdin (ExecSync; the streaming kind is in `stream`).

use anyhow::Context;
use berth_agent::cri_client::CriClient;
use berth_proto::v1 as cri;

use crate::table;

/// A command's exit code to pass on as berth's own (`berth exec`).
#[derive(Debug)]
pub struct ExitStatus(pub u8);

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for ExitStatus {}

#[derive(clap::Args)]
pub struct PodsArgs {
    /// Only pods with this label (`key=value`, repeatable).
    #[arg(short, long)]
    pub label: Vec<String>,
}

#[derive(clap::Args)]
pub struct PsArgs {
    /// Exited and created containers too.
    #[arg(short, long)]
    all: bool,
    /// Only the containers of this pod.
    #[arg(short, long)]
    pod: Option<String>,
}

fn labels(pairs: &[String]) -> anyhow::Result<std::collections::HashMap<String, String>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--label {p:?}: expected key=value"))
        })
        .collect()
}

/// Prints versions and conditions.
pub async fn version(c: &mut CriClient) -> anyhow::Result<()> {
    let v = c
        .runtime
        .version(cri::VersionRequest::default())
        .await?
        .into_inner();
    println!("RuntimeName:       {}", v.runtime_name);
    println!("RuntimeVersion:    {}", v.runtime_version);
    println!("RuntimeApiVersion: {}", v.runtime_api_version);
    let s = c
        .runtime
        .status(cri::StatusRequest { verbose: false })
        .await?
        .into_inner();
    for cond in s.status.map(|s| s.conditions).unwrap_or_default() {
        let extra = if cond.status {
            String::new()
        } else {
            format!(" ({}: {})", cond.reason, cond.message)
        };
        println!("{}: {}{extra}", cond.r#type, cond.status);
    }
    Ok(())
}

fn pod_state(state: i32) -> &'static str {
    match cri::PodSandboxState::try_from(state) {
        Ok(cri::PodSandboxState::SandboxReady) => "Ready",
        _ => "NotReady",
    }
}

fn container_state(state: i32) -> &'static str {
    match cri::ContainerState::try_from(state) {
        Ok(cri::ContainerState::ContainerCreated) => "Created",
        Ok(cri::ContainerState::ContainerRunning) => "Running",
        Ok(cri::ContainerState::ContainerExited) => "Exited",
        _ => "Unknown",
    }
}

/// Lists pods.
pub async fn pods(c: &mut CriClient, a: &PodsArgs) -> anyhow::Result<()> {
    let filter = cri::PodSandboxFilter {
        label_selector: labels(&a.label)?,
        ..Default::default()
    };
    let pods = c
        .runtime
        .list_pod_sandbox(cri::ListPodSandboxRequest {
            filter: Some(filter),
        })
        .await?
        .into_inner()
        .items;
    let mut rows = Vec::new();
    for p in pods {
        let st = c
            .runtime
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: p.id.clone(),
                verbose: false,
            })
            .await?
            .into_inner();
        let ip = st
            .status
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .filter(|ip| !ip.is_empty())
            .unwrap_or_else(|| "-".into());
        let m = p.metadata.unwrap_or_default();
        let running = st
            .containers_statuses
            .iter()
            .filter(|c| c.state == cri::ContainerState::ContainerRunning as i32)
            .count();
        rows.push(vec![
            table::short(&p.id),
            m.name,
            m.namespace,
            pod_state(p.state).into(),
            format!("{running}/{}", st.containers_statuses.len()),
            ip,
            table::age(p.created_at),
        ]);
    }
    table::print(
        &[
            "POD ID",
            "NAME",
            "NAMESPACE",
            "STATE",
            "RUNNING",
            "IP",
            "AGE",
        ],
        &rows,
    );
    Ok(())
}

/// Lists containers.
pub async fn ps(c: &mut CriClient, a: &PsArgs) -> anyhow::Result<()> {
    let filter = cri::ContainerFilter {
        pod_sandbox_id: a.pod.clone().unwrap_or_default(),
        state: (!a.all).then_some(cri::ContainerStateValue {
            state: cri::ContainerState::ContainerRunning as i32,
        }),
        ..Default::default()
    };
    let list = c
        .runtime
        .list_containers(cri::ListContainersRequest {
            filter: Some(filter),
        })
        .await?
        .into_inner()
        .containers;
    let rows: Vec<Vec<String>> = list
        .into_iter()
        .map(|k| {
            vec![
                table::short(&k.id),
                k.image.map(|i| i.image).unwrap_or_default(),
                k.metadata.map(|m| m.name).unwrap_or_default(),
                container_state(k.state).into(),
                table::age(k.created_at),
                table::short(&k.pod_sandbox_id),
            ]
        })
        .collect();
    table::print(
        &["CONTAINER", "IMAGE", "NAME", "STATE", "CREATED", "POD ID"],
        &rows,
    );
    Ok(())
}

/// Prints a pod's or container's status as JSON.
pub async fn inspect(c: &mut CriClient, id: &str) -> anyhow::Result<()> {
    if let Ok(r) = c
        .runtime
        .container_status(cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        })
        .await
    {
        let r = r.into_inner();
        let s = r.status.unwrap_or_default();
        let v = serde_json::json!({
            "id": s.id,
            "name": s.metadata.map(|m| m.name),
            "state": container_state(s.state),
            "exitCode": s.exit_code,
            "reason": s.reason,
            "image": s.image.map(|i| i.image),
            "imageRef": s.image_ref,
            "logPath": s.log_path,
            "createdAt": s.created_at,
            "startedAt": s.started_at,
            "finishedAt": s.finished_at,
            "labels": s.labels,
            "info": r.info.get("info").and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok()),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let r = c
        .runtime
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: true,
        })
        .await
        .with_context(|| format!("no pod or container {id:?}"))?
        .into_inner();
    let s = r.status.unwrap_or_default();
    let v = serde_json::json!({
        "id": s.id,
        "name": s.metadata.as_ref().map(|m| &m.name),
        "namespace": s.metadata.as_ref().map(|m| &m.namespace),
        "state": pod_state(s.state),
        "ip": s.network.as_ref().map(|n| &n.ip),
        "createdAt": s.created_at,
        "labels": s.labels,
        "containers": r.containers_statuses.iter().map(|c| serde_json::json!({
            "id": c.id,
            "name": c.metadata.as_ref().map(|m| &m.name),
            "state": container_state(c.state),
            "exitCode": c.exit_code,
        })).collect::<Vec<_>>(),
        "info": r.info.get("info").and_then(|i| serde_json::from_str::<serde_json::Value>(i).ok()),
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// Stops a pod.
pub async fn stop(c: &mut CriClient, pod: &str) -> anyhow::Result<()> {
    c.runtime
        .stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: pod.into(),
        })
        .await
        .with_context(|| format!("stop pod {pod}"))?;
    println!("Stopped pod {pod}");
    Ok(())
}

/// Removes a pod.
pub async fn rm(c: &mut CriClient, pod: &str) -> anyhow::Result<()> {
    c.runtime
        .remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod.into(),
        })
        .await
        .with_context(|| format!("remove pod {pod}"))?;
    println!("Removed pod {pod}");
    Ok(())
}

/// Runs a command in a container; exits with its code.
pub async fn exec(
    c: &mut CriClient,
    id: &str,
    cmd: Vec<String>,
    timeout: i64,
) -> anyhow::Result<()> {
    use std::io::Write;
    let r = c
        .runtime
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.into(),
            cmd,
            timeout,
        })
        .await
        .with_context(|| format!("exec in {id}"))?
        .into_inner();
    std::io::stdout().write_all(&r.stdout)?;
    std::io::stderr().write_all(&r.stderr)?;
    exit_result(r.exit_code)
}

/// A remote command's exit code as berth's own result: Ok for 0, else an
/// [`ExitStatus`] (1-255).
pub fn exit_result(code: i32) -> anyhow::Result<()> {
    if code != 0 {
        return Err(ExitStatus(code.clamp(1, 255) as u8).into());
    }
    Ok(())
}
