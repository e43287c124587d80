//! One pod network under test, the built-in network or the CNI plugin chain:
//! a `berth_cni::Network` with its own bridge, subnet, nftables table, state
//! and namespace directories, the timed setup and teardown of its pods, and
//! the pods it still owns, which [`PodNetwork::close`] tears down.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use berth_cni::{
    Ipv4Net, NetError, Network, NetworkConfig, NetworkMode, PodNetworkRequest, PortMapping,
    Protocol,
};

use crate::error::BenchError;

/// The port every pod's hostPort maps to.
const CONTAINER_PORT: u16 = 80;
/// Host ports cycle through this many values above a path's base.
const HOST_PORT_SPAN: u64 = 10_000;
/// Time a CNI plugin may take before it is killed.
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What distinguishes the two paths: names, addresses and ports that
/// collide with neither each other, the tests nor a real `berth0`.
struct Layout {
    name: &'static str,
    bridge: &'static str,
    subnet: &'static str,
    nft_table: &'static str,
    host_port_base: u16,
}

const BUILTIN: Layout = Layout {
    name: "builtin",
    bridge: "bbench-b0",
    subnet: "10.236.0.0/16",
    nft_table: "berth_bench",
    host_port_base: 20_000,
};

const CNI: Layout = Layout {
    name: "cni",
    bridge: "bbench-c0",
    subnet: "10.237.0.0/16",
    nft_table: "berth_bench_cni",
    host_port_base: 40_000,
};

/// A pod network and the pods it owns.
#[derive(Debug)]
pub struct PodNetwork {
    name: &'static str,
    description: String,
    net: Network,
    subnet: Ipv4Net,
    host_port_base: u16,
    live: Mutex<BTreeSet<String>>,
    next_id: AtomicU64,
}

impl PodNetwork {
    /// berth's built-in network, keeping its state under `work_dir/builtin`.
    pub fn builtin(work_dir: &Path) -> Result<PodNetwork, BenchError> {
        let cfg = config(&BUILTIN, work_dir, NetworkMode::Builtin)?;
        let description = format!(
            "bridge {}, {}, nft table inet {}, masquerade",
            BUILTIN.bridge, BUILTIN.subnet, BUILTIN.nft_table
        );
        PodNetwork::open(&BUILTIN, cfg, description)
    }

    /// The CNI path: a conflist written under `work_dir/cni/net.d` chaining
    /// the `bridge` (with `host-local` IPAM), `loopback` and `portmap`
    /// plugins found in `plugin_dir`.
    pub fn cni(work_dir: &Path, plugin_dir: &Path) -> Result<PodNetwork, BenchError> {
        let conf_dir = work_dir.join(CNI.name).join("net.d");
        let ipam_dir = work_dir.join(CNI.name).join("host-local");
        for dir in [&conf_dir, &ipam_dir] {
            std::fs::create_dir_all(dir).map_err(|source| BenchError::Io {
                op: "create directory",
                path: dir.clone(),
                source,
            })?;
        }
        let conf_file = conf_dir.join("10-berth-bench.conflist");
        std::fs::write(&conf_file, conflist(&ipam_dir).to_string()).map_err(|source| {
            BenchError::Io {
                op: "write",
                path: conf_file.clone(),
                source,
            }
        })?;
        let mode = NetworkMode::Cni {
            conf_dir,
            bin_dirs: vec![plugin_dir.to_path_buf()],
        };
        let cfg = config(&CNI, work_dir, mode)?;
        let description = format!(
            "{}/{{bridge,host-local,loopback,portmap}}, bridge {}, {}, ipMasq",
            plugin_dir.display(),
            CNI.bridge,
            CNI.subnet
        );
        PodNetwork::open(&CNI, cfg, description)
    }

    fn open(
        layout: &Layout,
        cfg: NetworkConfig,
        description: String,
    ) -> Result<PodNetwork, BenchError> {
        let subnet = cfg.subnet_v4;
        let net = Network::new(cfg).map_err(|source| BenchError::Net {
            path: layout.name,
            op: "open",
            pod: "-".to_string(),
            source: Box::new(source),
        })?;
        Ok(PodNetwork {
            name: layout.name,
            description,
            net,
            subnet,
            host_port_base: layout.host_port_base,
            live: Mutex::new(BTreeSet::new()),
            next_id: AtomicU64::new(0),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// One line on what this path is made of, for the report's header.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// A new pod with its namespace created (untimed) and one TCP hostPort,
    /// owned until [`PodNetwork::discard`].
    pub fn new_pod(&self) -> Result<PodNetworkRequest, BenchError> {
        let serial = self.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("bb{}-{}-{serial}", std::process::id(), self.name);
        self.owned().insert(id.clone());
        let netns = self
            .net
            .create_netns(&id)
            .map_err(|source| self.error("create netns", &id, source))?;
        Ok(PodNetworkRequest {
            name: format!("bench-{serial}"),
            namespace: "berth-bench".to_string(),
            uid: format!("uid-{id}"),
            port_mappings: vec![PortMapping {
                protocol: Protocol::Tcp,
                container_port: CONTAINER_PORT,
                host_port: self.host_port(serial),
                host_ip: None,
            }],
            id,
            netns,
        })
    }

    /// The wall time of `setup`; fails unless the pod got an address in
    /// this path's subnet.
    pub async fn setup(&self, pod: &PodNetworkRequest) -> Result<Duration, BenchError> {
        let started = Instant::now();
        let status = self
            .net
            .setup(pod)
            .await
            .map_err(|source| self.error("setup", &pod.id, source))?;
        let elapsed = started.elapsed();
        match status.ipv4 {
            Some(ip) if self.subnet.contains(&ip) => Ok(elapsed),
            other => Err(BenchError::Misbehaved {
                runtime: self.name,
                what: format!(
                    "pod {} got address {other:?}, not in {}",
                    pod.id, self.subnet
                ),
            }),
        }
    }

    /// The wall time of `teardown`.
    pub async fn teardown(&self, pod: &str) -> Result<Duration, BenchError> {
        let started = Instant::now();
        self.net
            .teardown(pod)
            .await
            .map_err(|source| self.error("teardown", pod, source))?;
        Ok(started.elapsed())
    }

    /// Tears the pod down if it is still set up, removes its namespace and
    /// forgets it (untimed).
    pub async fn discard(&self, pod: &str) -> Result<(), BenchError> {
        let torn_down = self
            .net
            .teardown(pod)
            .await
            .map_err(|source| self.error("teardown", pod, source));
        let removed = self
            .net
            .remove_netns(pod)
            .map_err(|source| self.error("remove netns", pod, source));
        if removed.is_ok() {
            self.owned().remove(pod);
        }
        torn_down.and(removed)
    }

    /// Discards every pod still owned, then removes the bridge, the
    /// nftables table and the namespace directory's mount. Returns the
    /// first failure after trying everything.
    pub async fn close(&self) -> Result<(), BenchError> {
        let leftovers: Vec<String> = self.owned().iter().cloned().collect();
        let mut first_error = None;
        for pod in leftovers {
            if let Err(error) = self.discard(&pod).await {
                first_error.get_or_insert(error);
            }
        }
        if let Err(source) = self.net.destroy().await {
            first_error.get_or_insert(self.error("destroy", "-", source));
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Whether the node's ruleset (nftables, which also holds the rules
    /// `iptables` makes here) mentions the pod's host port.
    pub fn host_port_in_ruleset(&self, pod: &PodNetworkRequest) -> Result<bool, BenchError> {
        let output = Command::new("nft")
            .args(["list", "ruleset"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|source| BenchError::Spawn {
                binary: PathBuf::from("nft"),
                source,
            })?;
        let ruleset = String::from_utf8_lossy(&output.stdout);
        let ports = pod.port_mappings.iter().map(|m| m.host_port.to_string());
        let words: Vec<&str> = ruleset
            .split(|c: char| !c.is_ascii_digit())
            .filter(|word| !word.is_empty())
            .collect();
        Ok(ports.into_iter().all(|port| words.contains(&port.as_str())))
    }

    fn host_port(&self, serial: u64) -> u16 {
        // serial % span < 10_000 and the bases are at most 40_000.
        self.host_port_base + (serial % HOST_PORT_SPAN) as u16
    }

    fn error(&self, op: &'static str, pod: &str, source: NetError) -> BenchError {
        BenchError::Net {
            path: self.name,
            op,
            pod: pod.to_string(),
            source: Box::new(source),
        }
    }

    fn owned(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The network config of `layout`, with state under `work_dir/<name>`.
fn config(
    layout: &Layout,
    work_dir: &Path,
    mode: NetworkMode,
) -> Result<NetworkConfig, BenchError> {
    let dir = work_dir.join(layout.name);
    let subnet = layout.subnet.parse().map_err(|_| BenchError::Misbehaved {
        runtime: layout.name,
        what: format!("bad subnet {}", layout.subnet),
    })?;
    Ok(NetworkConfig {
        mode,
        bridge: layout.bridge.to_string(),
        subnet_v4: subnet,
        subnet_v6: None,
        mtu: 1500,
        state_dir: dir.join("state"),
        netns_dir: dir.join("netns"),
        masquerade: true,
        nft_table: layout.nft_table.to_string(),
        plugin_timeout: PLUGIN_TIMEOUT,
    })
}

/// The CNI path's conflist: the same features as the built-in network
/// (gateway on the bridge, egress masquerade, hairpin, one hostPort).
fn conflist(ipam_dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "berth-bench",
        "plugins": [
            {
                "type": "bridge",
                "bridge": CNI.bridge,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "mtu": 1500,
                "ipam": {
                    "type": "host-local",
                    "dataDir": ipam_dir,
                    "ranges": [[{ "subnet": CNI.subnet }]],
                    "routes": [{ "dst": "0.0.0.0/0" }]
                }
            },
            { "type": "loopback" },
            { "type": "portmap", "capabilities": { "portMappings": true } }
        ]
    })
}
