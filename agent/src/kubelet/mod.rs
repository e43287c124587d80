//! The kubelet half of berth: static pods from manifest files, run through
//! berthd's own CRI socket with kubelet's semantics.
//!
//! [`manager`] watches the manifest directory and keeps one [`worker`] per
//! pod; a worker drives its pod through CRI (volumes, sandbox, init and app
//! containers, probes, hooks, restarts, graceful stop) and writes its
//! observed [`status`] for the CLI; after a berthd restart it adopts the
//! pod's sandbox and containers (`adopt`) instead of restarting them. Pure logic lives apart and is unit
//! tested: [`probe_state`] (thresholds), [`restarts`] (policy and
//! back-off), [`sequence`] (start order), [`phase`] (phase, conditions, STATUS column),
//! [`termination`] (messages), over a [`clock`]. Handlers: [`actions`]
//! (exec, [`http`] with [`tls`], tcp, [`grpc_health`]), [`killer`] (preStop and stop),
//! [`images`] (pull policy), [`volumes`] (host side of volumes),
//! [`probe_task`] (probe loops), [`view`] (status building).

pub mod actions;
mod adopt;
pub mod clock;
pub mod grpc_health;
pub mod http;
pub mod images;
pub mod killer;
pub mod manager;
pub mod phase;
pub mod probe_state;
pub mod probe_task;
pub mod restarts;
pub mod sequence;
pub mod status;
pub mod termination;
pub mod tls;
mod view;
pub mod volumes;
pub mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::cri_client;
use crate::manifest::PlanOptions;

/// The kubelet could not start.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("create {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The kubelet's status directory: `<state>/kubelet`.
pub fn status_dir(state: &Path) -> PathBuf {
    state.join("kubelet")
}

/// The node's primary IPv4 address (the source of its default route), or
/// 127.0.0.1. A UDP connect only looks the route up; nothing is sent.
fn host_ip() -> String {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "127.0.0.1".into())
}

/// The plan options of this node under berthd's `cfg`.
pub fn plan_options(cfg: &Config) -> PlanOptions {
    let mut o = PlanOptions::for_host();
    o.pods_dir = cfg.root.join("kubelet").join("pods");
    o.log_dir = cfg.root.join("kubelet").join("logs");
    o.seccomp_root = cfg.root.join("seccomp");
    o
}

/// Starts the static pod manager for `cfg`'s manifest directory; it talks
/// to berthd's CRI socket (served by the caller, so it connects in the
/// background and retries until the socket answers).
pub fn start(cfg: &Config) -> Result<tokio::task::JoinHandle<()>, KubeletError> {
    let manifest_dir = cfg.pod_manifest_dir();
    let status = status_dir(&cfg.state);
    let opts = plan_options(cfg);
    for dir in [&manifest_dir, &status, &opts.pods_dir, &opts.log_dir] {
        std::fs::create_dir_all(dir).map_err(|source| KubeletError::Create {
            path: dir.clone(),
            source,
        })?;
    }
    let socket = cfg.listen.clone();
    Ok(tokio::spawn(async move {
        let cri = loop {
            match cri_client::connect(&socket).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::debug!("kubelet: connect {}: {e}", socket.display());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let env = Arc::new(worker::WorkerEnv {
            cri,
            clock: Arc::new(clock::SystemClock),
            status_dir: status,
            host_ips: vec![host_ip()],
            tick: Duration::from_millis(500),
        });
        tracing::info!(dir = %manifest_dir.display(), "kubelet: watching pod manifests");
        manager::Manager::new(manifest_dir, opts, env).run().await;
    }))
}
