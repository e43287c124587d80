//! Running probe and hook handlers, as kubelet does: exec in the container
//! through CRI ExecSync; httpGet, tcpSocket and grpc from the host against
//! the pod IP (or the handler's host); a hook's sleep on the worker.

use std::time::Duration;

use berth_proto::v1 as cri;

use crate::cri_client::CriClient;
use crate::manifest::lifecycle::Hook;
use crate::manifest::probes::{HttpGet, ProbeAction, Scheme};

use super::grpc_health;
use super::http;

/// Where a handler runs.
#[derive(Debug, Clone)]
pub struct Target {
    pub container_id: String,
    /// The pod IP (127.0.0.1 for a pod without one, e.g. host network).
    pub pod_ip: String,
}

impl Target {
    /// Container `container_id` of a pod with IP `pod_ip` (127.0.0.1 when
    /// empty).
    pub fn new(container_id: String, pod_ip: &str) -> Self {
        let pod_ip = if pod_ip.is_empty() {
            "127.0.0.1"
        } else {
            pod_ip
        };
        Self {
            container_id,
            pod_ip: pod_ip.into(),
        }
    }
}

/// The outcome of one handler run: success, and a message on failure.
pub type Outcome = Result<(), String>;

async fn exec(cri: &mut CriClient, t: &Target, command: &[String], timeout: Duration) -> Outcome {
    let secs = i64::try_from(timeout.as_secs().max(1)).unwrap_or(i64::MAX);
    let call = cri.runtime.exec_sync(cri::ExecSyncRequest {
        container_id: t.container_id.clone(),
        cmd: command.to_vec(),
        timeout: secs,
    });
    // ExecSync enforces the timeout; the margin covers the call itself.
    let r = tokio::time::timeout(timeout + Duration::from_secs(2), call)
        .await
        .map_err(|_| format!("command timed out after {}s", timeout.as_secs()))?
        .map_err(|e| format!("exec: {}", e.message()))?
        .into_inner();
    if r.exit_code == 0 {
        return Ok(());
    }
    let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
    out.push_str(&String::from_utf8_lossy(&r.stderr));
    let out = out.trim();
    Err(if out.is_empty() {
        format!("command exited with {}", r.exit_code)
    } else {
        format!("command exited with {}: {out}", r.exit_code)
    })
}

async fn http_get(t: &Target, h: &HttpGet, timeout: Duration) -> Outcome {
    let host = h.host.as_deref().unwrap_or(&t.pod_ip);
    let https = h.scheme == Scheme::Https;
    let code = http::get(https, host, h.port, &h.path, &h.headers, timeout).await?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

async fn tcp(host: &str, port: u16, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("dial tcp {host}:{port}: {e}")),
        Err(_) => Err(format!("dial tcp {host}:{port}: i/o timeout")),
    }
}

/// Runs a probe's handler once.
pub async fn probe(
    cri: &mut CriClient,
    t: &Target,
    action: &ProbeAction,
    timeout: Duration,
) -> Outcome {
    match action {
        ProbeAction::Exec { command } => exec(cri, t, command, timeout).await,
        ProbeAction::HttpGet(h) => http_get(t, h, timeout).await,
        ProbeAction::TcpSocket { host, port } => {
            tcp(host.as_deref().unwrap_or(&t.pod_ip), *port, timeout).await
        }
        ProbeAction::Grpc { port, service } => {
            grpc_health::check(&t.pod_ip, *port, service.as_deref(), timeout).await
        }
    }
}

/// Runs a lifecycle hook, giving it at most `limit`.
pub async fn hook(cri: &mut CriClient, t: &Target, h: &Hook, limit: Duration) -> Outcome {
    match h {
        Hook::Exec { command } => exec(cri, t, command, limit).await,
        Hook::HttpGet(g) => http_get(t, g, limit).await,
        Hook::Sleep(d) => {
            tokio::time::sleep((*d).min(limit)).await;
            Ok(())
        }
    }
}
