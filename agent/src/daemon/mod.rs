//! berthd: the CRI runtime and image services over the pieces the other
//! modules provide (image store, spec builder, per-pod monitors, network).
//!
//! [`Daemon`] owns the node's state; one module per group of calls:
//! [`sandboxes`] (RunPodSandbox, Stop, Remove, Status, List), [`containers`]
//! (Create, Start, Stop, Remove, Status, List, Update, ReopenLog, ExecSync),
//! [`stats`], [`lifecycle`] (state changes from monitor events, and the
//! GetContainerEvents stream), [`recovery`] (restart after a crash),
//! [`streaming`] (exec/attach/port-forward behind the streaming server),
//! [`runtime_service`] (the thin tonic layer), [`convert`] (records → CRI
//! messages). State lives in [`store`] (memory) and [`records`] (disk).

pub mod containers;
pub mod convert;
pub mod error;
pub mod lifecycle;
pub mod records;
pub mod recovery;
pub mod runtime_service;
pub mod sandboxes;
pub mod stats;
pub mod store;
pub mod streaming;
pub mod time;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_cni::Network;
use berth_proto::v1::ContainerEventResponse;
use tokio::sync::broadcast;

use crate::config::Config;
use crate::images::ImageStore;
pub use error::{DaemonError, Result};
use store::Store;

/// How many container events a slow GetContainerEvents client may fall
/// behind before it is cut off (it then relists, as kubelet does).
const EVENT_BUFFER: usize = 1024;

/// The node's runtime state; shared by every CRI call.
pub struct Daemon {
    /// The configuration.
    pub cfg: Config,
    /// The image store.
    pub images: Arc<ImageStore>,
    /// Pod networking.
    pub network: Network,
    /// Pods and containers.
    pub store: Store,
    /// GetContainerEvents subscribers.
    pub events: broadcast::Sender<ContainerEventResponse>,
    /// The pod CIDR kubelet gave with UpdateRuntimeConfig.
    pub pod_cidr: Mutex<String>,
    /// Previous cpu samples, for usage rates.
    pub cpu_samples: stats::CpuSamples,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("root", &self.cfg.root)
            .finish()
    }
}

impl Daemon {
    /// Opens the image store and the network, creates the state
    /// directories, and recovers every pod and container a previous berthd
    /// left. Must run on a tokio runtime.
    pub async fn open(cfg: Config) -> Result<Arc<Self>> {
        check_socket_room(&cfg)?;
        for dir in [
            cfg.root.clone(),
            cfg.state.clone(),
            cfg.pods_dir(),
            cfg.pods_run_dir(),
            containers_dir(&cfg),
            cfg.logs_dir(),
            cfg.runtime_root(),
        ] {
            std::fs::create_dir_all(&dir).map_err(DaemonError::io("create", &dir))?;
        }
        let images = Arc::new(ImageStore::open(&cfg.images_dir(), cfg.registry.clone())?);
        match crate::default_image::ensure(&images) {
            Ok(Some(_)) => {}
            Ok(None) => tracing::info!("no /bin/busybox: the default image is not available"),
            Err(e) => tracing::warn!("default image: {e}"),
        }
        let network = Network::new(cfg.network_config())?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let daemon = Arc::new(Daemon {
            cfg,
            images,
            network,
            store: Store::default(),
            events,
            pod_cidr: Mutex::new(String::new()),
            cpu_samples: stats::CpuSamples::default(),
        });
        daemon.recover().await?;
        Ok(daemon)
    }

    /// `<root>/pods/<id>`.
    pub fn pod_dir(&self, id: &str) -> PathBuf {
        self.cfg.pods_dir().join(id)
    }

    /// `<state>/pods/<id>`.
    pub fn pod_run_dir(&self, id: &str) -> PathBuf {
        self.cfg.pods_run_dir().join(id)
    }

    /// `<root>/containers/<id>`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        containers_dir(&self.cfg).join(id)
    }
}

/// The longest path a unix socket can have (`sun_path` less its NUL).
const SOCKET_PATH_MAX: usize = 107;

/// Refuses a `state` directory so long that a pod's monitor socket
/// (`<state>/pods/<64 hex>/monitor.sock`) could not be bound.
fn check_socket_room(cfg: &Config) -> Result<()> {
    let longest = cfg
        .pods_run_dir()
        .join("0".repeat(64))
        .join(crate::monitor::SOCKET_NAME);
    let len = longest.as_os_str().len();
    if len > SOCKET_PATH_MAX {
        return Err(DaemonError::invalid(
            "state",
            format!(
                "{} is too long: monitor sockets under it would be {len} bytes, over the {SOCKET_PATH_MAX} a unix socket path can have",
                cfg.state.display()
            ),
        ));
    }
    Ok(())
}

/// `<root>/containers`.
fn containers_dir(cfg: &Config) -> PathBuf {
    cfg.root.join("containers")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_dir_too_long_for_monitor_sockets_is_refused() {
        let ok = Config::default();
        check_socket_room(&ok).unwrap();
        let long = Config {
            state: PathBuf::from(format!("/run/{}", "x".repeat(40))),
            ..Default::default()
        };
        let e = check_socket_room(&long).unwrap_err();
        assert!(e.to_string().starts_with("state:"), "{e}");
    }
}
