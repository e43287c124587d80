//! Pod networking for berth: the built-in bridge network and standard CNI
//! plugins.
//!
//! berthd owns one [`Network`]. For each pod sandbox (except hostNetwork
//! pods) it calls, in order: [`Network::create_netns`],
//! [`Network::setup`]; later [`Network::teardown`] (StopPodSandbox, may be
//! repeated or race with itself) and [`Network::remove_netns`]
//! (RemovePodSandbox). [`Network::stats`] serves PodSandboxStats and
//! [`Network::status`] the runtime's NetworkReady condition.
//!
//! ```no_run
//! # async fn sandbox() -> Result<(), berth_cni::NetError> {
//! use berth_cni::{Network, NetworkConfig, PodNetworkRequest, PortMapping, Protocol};
//! let net = Network::new(NetworkConfig::default().with_default_ipv6())?;
//! if let Err(reason) = net.status() {
//!     eprintln!("NetworkReady=false: {reason}"); // runtime Status
//! }
//! let netns = net.create_netns("0123abcd")?; // RunPodSandbox
//! let status = net
//!     .setup(&PodNetworkRequest {
//!         id: "0123abcd".into(),
//!         name: "web".into(),
//!         namespace: "default".into(),
//!         uid: "5f1e...".into(),
//!         netns,
//!         port_mappings: vec![PortMapping {
//!             protocol: Protocol::Tcp,
//!             container_port: 80,
//!             host_port: 8080,
//!             host_ip: None,
//!         }],
//!     })
//!     .await?;
//! println!("pod ips: {:?}", status.all_ips());
//! let counters = net.stats("0123abcd")?; // PodSandboxStats
//! # let _ = counters;
//! net.teardown("0123abcd").await?; // StopPodSandbox (repeatable)
//! net.remove_netns("0123abcd")?; // RemovePodSandbox (repeatable)
//! # Ok(())
//! # }
//! ```
//!
//! The async methods must run on a tokio runtime with its IO driver
//! enabled (netlink sockets are registered with it).
//!
//! Every resource of a pod is recorded on disk under the state directory
//! before it is created, so teardown undoes exactly what setup did, also
//! after a berthd restart.

#![warn(missing_docs)]

mod builtin;
pub mod cni;
mod config;
mod dial;
mod error;
mod ipam;
mod loopback;
mod netlink;
mod netns;
mod nft;
mod nft_elements;
mod pod_locks;
mod record;
mod stats;
mod sysctl;
mod types;

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;

pub use config::{default_ula_subnet, NetworkConfig, NetworkMode};
pub use dial::dial_localhost;
pub use error::NetError;
pub use ipnet::{Ipv4Net, Ipv6Net};
pub use types::{NetStats, PodNetworkRequest, PodNetworkStatus, PortMapping, Protocol, POD_IFNAME};

use builtin::Builtin;
use pod_locks::PodLocks;
use record::Records;

/// The node's pod network; one per daemon.
#[derive(Debug)]
pub struct Network {
    cfg: NetworkConfig,
    backend: Backend,
    records: Records,
    locks: PodLocks,
}

#[derive(Debug)]
enum Backend {
    Builtin(Builtin),
    Cni(cni::CniNetwork),
}

impl Network {
    /// Opens the network: validates `cfg`, creates the state directories
    /// and, in built-in mode, the bridge, forwarding sysctls and the nftables
    /// table. Existing allocations and pod records are kept, so re-opening
    /// after a restart continues where the previous daemon stopped.
    pub fn new(mut cfg: NetworkConfig) -> Result<Self, NetError> {
        cfg.validate()?;
        // "10.88.0.5/16" means the subnet 10.88.0.0/16.
        cfg.subnet_v4 = cfg.subnet_v4.trunc();
        cfg.subnet_v6 = cfg.subnet_v6.map(|v6| v6.trunc());
        std::fs::create_dir_all(&cfg.state_dir)
            .map_err(|e| NetError::io("create state dir", &cfg.state_dir, e))?;
        let records = Records::open(&cfg.state_dir)?;
        netns::prepare_dir(&cfg.netns_dir)?;
        let backend = match &cfg.mode {
            NetworkMode::Builtin => Backend::Builtin(Builtin::new(&cfg)?),
            NetworkMode::Cni { conf_dir, bin_dirs } => Backend::Cni(cni::CniNetwork::new(
                conf_dir.clone(),
                bin_dirs.clone(),
                cfg.plugin_timeout,
            )),
        };
        Ok(Network {
            cfg,
            backend,
            records,
            locks: PodLocks::default(),
        })
    }

    /// The configuration this network was opened with.
    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    /// `Ok` when pods can be networked; otherwise the reason, for the CRI
    /// `NetworkReady=false` condition (bridge gone, no usable CNI config).
    pub fn status(&self) -> Result<(), String> {
        match &self.backend {
            Backend::Builtin(b) => b.status(),
            Backend::Cni(c) => c.status(),
        }
    }

    /// Creates the pod's network namespace, pinned by a bind mount at
    /// `<netns_dir>/<pod_id>`, with `lo` up and IPv6 DAD off. Returns the
    /// existing path if it is already there.
    pub fn create_netns(&self, pod_id: &str) -> Result<PathBuf, NetError> {
        validate_pod_id(pod_id)?;
        netns::create(&self.cfg.netns_dir, pod_id)
    }

    /// Path where the pod's namespace is (or would be) pinned.
    pub fn netns_path(&self, pod_id: &str) -> Result<PathBuf, NetError> {
        validate_pod_id(pod_id)?;
        Ok(self.cfg.netns_dir.join(pod_id))
    }

    /// Connects the pod in `req.netns` to the network and maps its host
    /// ports. On failure everything done so far is rolled back. Fails with
    /// [`NetError::AlreadyConfigured`] if the pod is already set up.
    pub async fn setup(&self, req: &PodNetworkRequest) -> Result<PodNetworkStatus, NetError> {
        validate_pod_id(&req.id)?;
        let _guard = self.locks.lock(&req.id).await;
        if self.records.load(&req.id)?.is_some() {
            return Err(NetError::AlreadyConfigured(req.id.clone()));
        }
        match &self.backend {
            Backend::Builtin(b) => b.setup(&self.records, req).await,
            Backend::Cni(c) => c.setup(&self.records, req).await,
        }
    }

    /// Disconnects the pod: removes its host ports, its veth (or runs the
    /// CNI DEL) and frees its addresses. Idempotent; concurrent calls for
    /// one pod are serialised, so the work is done exactly once.
    pub async fn teardown(&self, pod_id: &str) -> Result<(), NetError> {
        validate_pod_id(pod_id)?;
        let _guard = self.locks.lock(pod_id).await;
        let Some(record) = self.records.load(pod_id)? else {
            return Ok(());
        };
        match &self.backend {
            Backend::Builtin(b) => b.teardown(&self.records, &record).await,
            Backend::Cni(c) => c.teardown(&self.records, &record).await,
        }
    }

    /// Verifies a set-up pod: CNI CHECK through the chain in CNI mode; in
    /// built-in mode, that the pod's host veth still exists.
    pub async fn check(&self, pod_id: &str) -> Result<(), NetError> {
        validate_pod_id(pod_id)?;
        let record = self
            .records
            .load(pod_id)?
            .ok_or_else(|| NetError::NotConfigured(pod_id.to_string()))?;
        match &self.backend {
            Backend::Builtin(b) => b.check(&record),
            Backend::Cni(c) => c.check(&record).await,
        }
    }

    /// CNI mode: runs VERSION for every plugin of the current config list
    /// and returns each plugin's supported versions; fails if one does not
    /// support the list's `cniVersion`. Built-in mode: an empty list.
    pub async fn plugin_versions(&self) -> Result<Vec<(String, Vec<String>)>, NetError> {
        match &self.backend {
            Backend::Builtin(_) => Ok(Vec::new()),
            Backend::Cni(c) => c.versions().await,
        }
    }

    /// Unmounts and deletes the pod's namespace; idempotent.
    pub fn remove_netns(&self, pod_id: &str) -> Result<(), NetError> {
        netns::remove(&self.netns_path(pod_id)?)
    }

    /// Counters of the pod's `eth0` (seen from inside the pod).
    pub fn stats(&self, pod_id: &str) -> Result<NetStats, NetError> {
        validate_pod_id(pod_id)?;
        match &self.backend {
            Backend::Builtin(b) => stats::from_host_veth(&b.host_veth_name(pod_id), pod_id),
            Backend::Cni(_) => {
                let netns = self.netns_path(pod_id)?;
                if !netns::is_pinned(&netns) {
                    return Err(NetError::NotConfigured(pod_id.to_string()));
                }
                stats::from_netns(&netns, pod_id)
            }
        }
    }

    /// The status of a pod already set up (from its record), e.g. for
    /// PodSandboxStatus after a restart.
    pub fn pod_status(&self, pod_id: &str) -> Result<PodNetworkStatus, NetError> {
        validate_pod_id(pod_id)?;
        let record = self
            .records
            .load(pod_id)?
            .ok_or_else(|| NetError::NotConfigured(pod_id.to_string()))?;
        Ok(PodNetworkStatus {
            ipv4: record.ipv4,
            ipv6: record.ipv6,
            interface: POD_IFNAME.to_string(),
            cni_result: record
                .cni
                .and_then(|att| att.result)
                .and_then(|raw| serde_json::from_value(raw).ok()),
        })
    }

    /// Ids of every pod whose network is set up.
    pub fn configured_pods(&self) -> Result<Vec<String>, NetError> {
        self.records.pod_ids()
    }

    /// Every address allocated by the built-in IPAM, with its pod id.
    pub fn allocations(&self) -> Result<Vec<(IpAddr, String)>, NetError> {
        match &self.backend {
            Backend::Builtin(b) => b.allocations(),
            Backend::Cni(_) => Ok(Vec::new()),
        }
    }

    /// Removes the bridge and the nftables table, and unmounts the
    /// namespace directory (uninstall, tests). Pods should be torn down and
    /// their namespaces removed first.
    pub async fn destroy(&self) -> Result<(), NetError> {
        if let Backend::Builtin(b) = &self.backend {
            b.destroy().await?;
        }
        netns::release_dir(&self.cfg.netns_dir)
    }

    /// Reconciles with the pods berthd knows (call at startup, before
    /// serving): tears down networks and removes namespaces of pods not in
    /// `live`, and frees addresses whose owner is not live (left by a crash
    /// between allocation and recording).
    pub async fn gc(&self, live: &HashSet<String>) -> Result<GcReport, NetError> {
        let mut report = GcReport::default();
        for pod in self.records.pod_ids()? {
            if !live.contains(&pod) {
                self.teardown(&pod).await?;
                report.torn_down.push(pod);
            }
        }
        let entries = std::fs::read_dir(&self.cfg.netns_dir)
            .map_err(|e| NetError::io("list netns dir", &self.cfg.netns_dir, e))?;
        for entry in entries.flatten() {
            let Some(pod) = entry.file_name().to_str().map(String::from) else {
                continue;
            };
            if !live.contains(&pod) && validate_pod_id(&pod).is_ok() {
                self.remove_netns(&pod)?;
                report.netns_removed.push(pod);
            }
        }
        if let Backend::Builtin(b) = &self.backend {
            report.addresses_released = b.release_unowned(&|owner| live.contains(owner))?;
        }
        Ok(report)
    }
}

/// What [`Network::gc`] cleaned up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Pods whose network was torn down.
    pub torn_down: Vec<String>,
    /// Pods whose namespace was removed.
    pub netns_removed: Vec<String>,
    /// Addresses freed that no live pod owned.
    pub addresses_released: usize,
}

/// Pod ids become file names and hash keys: 1-128 characters of
/// `[A-Za-z0-9_.-]`, not starting with a dot.
fn validate_pod_id(id: &str) -> Result<(), NetError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(NetError::InvalidPodId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>(_: &T) {}

    /// berthd shares one `Network` across tasks and spawns its futures.
    #[allow(dead_code)]
    fn network_and_its_futures_can_cross_threads(net: &Network, req: &PodNetworkRequest) {
        assert_send_sync::<Network>();
        assert_send(&net.setup(req));
        assert_send(&net.teardown("pod"));
        assert_send(&net.check("pod"));
        assert_send(&net.gc(&HashSet::new()));
    }

    #[test]
    fn pod_ids_are_validated() {
        for ok in ["a", "0123abcdef", "pod_1.x-y", &"x".repeat(128)] {
            assert!(validate_pod_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", ".x", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(validate_pod_id(bad).is_err(), "{bad}");
        }
    }
}
