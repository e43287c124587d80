//! The built-in network: a bridge with the gateway addresses, one veth pair
//! per pod, addresses from the on-disk pools, and hostPort/masquerade rules
//! in berth's nftables table.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::config::NetworkConfig;
use crate::error::NetError;
use crate::ipam::Pool;
use crate::netlink::Netlink;
use crate::nft::{NftTable, PodTarget};
use crate::record::{PodRecord, Records};
use crate::types::{PodNetworkRequest, PodNetworkStatus, POD_IFNAME};

/// Built-in network state shared by all pods.
#[derive(Debug)]
pub(crate) struct Builtin {
    bridge: String,
    mtu: u32,
    pool4: Pool,
    pool6: Option<Pool>,
    nft: NftTable,
}

impl Builtin {
    /// Opens the pools, sets forwarding, creates the bridge and the
    /// nftables table.
    pub fn new(cfg: &NetworkConfig) -> Result<Self, NetError> {
        let pool4 = Pool::open(&cfg.state_dir, IpNet::V4(cfg.subnet_v4))?;
        let pool6 = cfg
            .subnet_v6
            .map(|v6| Pool::open(&cfg.state_dir, IpNet::V6(v6)))
            .transpose()?;
        let builtin = Builtin {
            bridge: cfg.bridge.clone(),
            mtu: cfg.mtu,
            pool4,
            pool6,
            nft: NftTable::new(&cfg.nft_table)?,
        };
        crate::sysctl::write_net("ipv4/ip_forward", "1")?;
        if builtin.pool6.is_some() {
            crate::sysctl::write_net("ipv6/conf/all/forwarding", "1")?;
        }
        block_on_own_thread(builtin.ensure_bridge())?;
        builtin
            .nft
            .ensure(cfg.subnet_v4, cfg.subnet_v6, cfg.masquerade)?;
        Ok(builtin)
    }

    /// `Ok` while the bridge exists.
    pub fn status(&self) -> Result<(), String> {
        if std::path::Path::new("/sys/class/net")
            .join(&self.bridge)
            .exists()
        {
            Ok(())
        } else {
            Err(format!("bridge {} is missing", self.bridge))
        }
    }

    fn gateways(&self) -> Vec<(IpAddr, u8)> {
        std::iter::once(&self.pool4)
            .chain(self.pool6.as_ref())
            .map(|p| (p.gateway(), p.prefix_len()))
            .collect()
    }

    /// Creates the bridge if needed, allows 127.0.0.0/8 sources on it (for
    /// hostPorts reached from the host's loopback) and returns its index.
    async fn ensure_bridge(&self) -> Result<u32, NetError> {
        let nl = Netlink::host()?;
        let index = nl
            .ensure_bridge(&self.bridge, self.mtu, &self.gateways())
            .await?;
        crate::sysctl::write_net(&format!("ipv4/conf/{}/route_localnet", self.bridge), "1")?;
        Ok(index)
    }

    /// The host end's name: `bv` and 13 hex digits of a hash of bridge and
    /// pod id (15 characters, the kernel's limit).
    pub fn host_veth_name(&self, pod_id: &str) -> String {
        let hash = fnv1a(self.bridge.as_bytes(), pod_id.as_bytes());
        format!("bv{:013x}", hash & 0x000f_ffff_ffff_ffff)
    }

    /// Wires up a pod; on failure everything done so far is undone.
    pub async fn setup(
        &self,
        records: &Records,
        req: &PodNetworkRequest,
    ) -> Result<PodNetworkStatus, NetError> {
        let mut record = PodRecord {
            pod_id: req.id.clone(),
            netns: req.netns.clone(),
            host_veth: Some(self.host_veth_name(&req.id)),
            ..PodRecord::default()
        };
        let result = self.setup_steps(records, req, &mut record).await;
        if result.is_err() {
            if let Err(undo) = self.teardown(records, &record).await {
                tracing::warn!(pod = %req.id, error = %undo, "rolling back failed pod network setup");
            }
        }
        result
    }

    async fn setup_steps(
        &self,
        records: &Records,
        req: &PodNetworkRequest,
        record: &mut PodRecord,
    ) -> Result<PodNetworkStatus, NetError> {
        record.ipv4 = match self.pool4.allocate(&req.id)? {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        };
        if let Some(pool6) = &self.pool6 {
            record.ipv6 = match pool6.allocate(&req.id)? {
                IpAddr::V6(ip) => Some(ip),
                IpAddr::V4(_) => None,
            };
        }
        // Recorded before any link exists, so a crash from here on leaves a
        // record that teardown (or gc) can undo. A crash just before this
        // leaves only address files, which gc frees.
        records.save(record)?;
        let host_veth = self.host_veth_name(&req.id);
        let netns_file = crate::netns::open(&req.netns)?;
        let host = Netlink::host()?;
        let bridge_index = match host.link_index(&self.bridge).await? {
            Some(index) => index,
            None => self.ensure_bridge().await?,
        };
        host.create_veth(&host_veth, POD_IFNAME, bridge_index, &netns_file, self.mtu)
            .await?;
        let pod = Netlink::in_netns(&req.netns)?;
        let v4 = record
            .ipv4
            .map(|ip| (ip, self.pool4.prefix_len(), gw4(&self.pool4)));
        let v6 = record
            .ipv6
            .zip(self.pool6.as_ref())
            .map(|(ip, pool)| (ip, pool.prefix_len(), gw6(pool)));
        pod.configure_pod_interface(POD_IFNAME, v4, v6).await?;
        let target = PodTarget {
            ipv4: record.ipv4,
            ipv6: record.ipv6,
        };
        let nft = self.nft.clone();
        let mappings = req.port_mappings.clone();
        run_blocking(move || nft.add_pod(target, &mappings)).await?;
        record.port_mappings = req.port_mappings.clone();
        records.save(record)?;
        Ok(PodNetworkStatus {
            ipv4: record.ipv4,
            ipv6: record.ipv6,
            interface: POD_IFNAME.to_string(),
            cni_result: None,
        })
    }

    /// Undoes everything in `record`; every step tolerates its resource
    /// being gone already. The record file is removed last. Once this
    /// returns the pod has no connectivity and its addresses may be reused;
    /// its detached veth disappears with its namespace.
    pub async fn teardown(&self, records: &Records, record: &PodRecord) -> Result<(), NetError> {
        let target = PodTarget {
            ipv4: record.ipv4,
            ipv6: record.ipv6,
        };
        let nft = self.nft.clone();
        let mappings = record.port_mappings.clone();
        run_blocking(move || nft.remove_pod(target, &mappings)).await?;
        // Detached, not deleted: the veth pair dies with the pod's
        // namespace (remove_netns), in the kernel's batched namespace
        // cleanup, instead of costing this call an unregister.
        if let Some(veth) = &record.host_veth {
            Netlink::host()?.detach_link(veth).await?;
        }
        if let Some(ip) = record.ipv4 {
            self.pool4.release(ip.into(), &record.pod_id)?;
        }
        if let (Some(ip), Some(pool6)) = (record.ipv6, &self.pool6) {
            pool6.release(ip.into(), &record.pod_id)?;
        }
        records.remove(&record.pod_id)
    }

    /// Fails if the pod's host veth is gone.
    pub fn check(&self, record: &PodRecord) -> Result<(), NetError> {
        match &record.host_veth {
            Some(veth) if !std::path::Path::new("/sys/class/net").join(veth).exists() => {
                Err(NetError::LinkNotFound(veth.clone()))
            }
            _ => Ok(()),
        }
    }

    /// Every address allocation of both pools.
    pub fn allocations(&self) -> Result<Vec<(IpAddr, String)>, NetError> {
        let mut all = self.pool4.allocations()?;
        if let Some(pool6) = &self.pool6 {
            all.extend(pool6.allocations()?);
        }
        Ok(all)
    }

    /// Frees every address whose owner `keep` rejects; returns how many.
    pub fn release_unowned(&self, keep: &dyn Fn(&str) -> bool) -> Result<usize, NetError> {
        let mut released = 0;
        for pool in std::iter::once(&self.pool4).chain(self.pool6.as_ref()) {
            for (ip, owner) in pool.allocations()? {
                if !keep(&owner) {
                    pool.release(ip, &owner)?;
                    released += 1;
                }
            }
        }
        Ok(released)
    }

    /// Deletes the bridge and the nftables table.
    pub async fn destroy(&self) -> Result<(), NetError> {
        let nft = self.nft.clone();
        run_blocking(move || nft.delete()).await?;
        Netlink::host()?.delete_link(&self.bridge).await
    }
}

fn gw4(pool: &Pool) -> Ipv4Addr {
    match pool.gateway() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

fn gw6(pool: &Pool) -> Ipv6Addr {
    match pool.gateway() {
        IpAddr::V6(ip) => ip,
        IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
    }
}

/// 64-bit FNV-1a over `a`, a separator, then `b`.
fn fnv1a(a: &[u8], b: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in a.iter().chain(b"/").chain(b) {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Runs blocking work (an `nft` run, or an nf_tables transaction, which may
/// wait for the namespace's commit lock) off the async worker threads.
pub(crate) async fn run_blocking<T, F>(work: F) -> Result<T, NetError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, NetError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| NetError::WorkerPanicked("blocking network task".to_string()))?
}

/// Runs a future to completion on a new thread with its own runtime, so
/// synchronous constructors work both inside and outside an async runtime.
pub(crate) fn block_on_own_thread<T, F>(fut: F) -> Result<T, NetError>
where
    T: Send,
    F: std::future::Future<Output = Result<T, NetError>> + Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .map_err(|e| NetError::NetlinkSocket {
                        target: "runtime".to_string(),
                        source: e,
                    })?;
                rt.block_on(fut)
            })
            .join()
            .map_err(|_| NetError::WorkerPanicked("network setup thread".to_string()))?
    })
}
