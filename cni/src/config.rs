//! The daemon-wide network configuration and its defaults.

use std::path::PathBuf;

use ipnet::{Ipv4Net, Ipv6Net};

use crate::error::NetError;

/// Which implementation wires pods to the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// berth's own bridge, veth pairs, IPAM and nftables rules.
    Builtin,
    /// Standard CNI plugins driven by a network config list.
    Cni {
        /// Directory searched for `*.conflist`, `*.conf` and `*.json` files
        /// (the first in lexical order that parses wins).
        conf_dir: PathBuf,
        /// Directories searched, in order, for plugin executables.
        bin_dirs: Vec<PathBuf>,
    },
}

impl NetworkMode {
    /// CNI mode with the conventional locations: `/etc/cni/net.d` for
    /// configs, `/opt/cni/bin` then `/usr/lib/cni` for plugins.
    pub fn default_cni() -> Self {
        NetworkMode::Cni {
            conf_dir: PathBuf::from("/etc/cni/net.d"),
            bin_dirs: vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")],
        }
    }
}

/// Configuration of the node's pod network, one per daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Built-in network or CNI plugins.
    pub mode: NetworkMode,
    /// Name of the host bridge every pod's veth is attached to (built-in mode).
    pub bridge: String,
    /// IPv4 pod subnet; the bridge takes its first host address as gateway.
    pub subnet_v4: Ipv4Net,
    /// IPv6 pod subnet, `None` for an IPv4-only network.
    pub subnet_v6: Option<Ipv6Net>,
    /// MTU of the bridge and of every pod interface.
    pub mtu: u32,
    /// Where address allocations and per-pod records are kept.
    pub state_dir: PathBuf,
    /// Where per-pod network namespaces are pinned by bind mounts.
    pub netns_dir: PathBuf,
    /// Masquerade pod traffic that leaves the pod subnet.
    pub masquerade: bool,
    /// Name of the nftables `inet` table owned by this network.
    pub nft_table: String,
    /// Time a CNI plugin may run before it is killed.
    pub plugin_timeout: std::time::Duration,
}

/// The default IPv6 unique-local pod subnet used when dual stack is enabled
/// without an explicit subnet.
pub fn default_ula_subnet() -> Ipv6Net {
    // fd00:be:27::/64 — a fixed unique-local prefix ("be27" ~ berth).
    Ipv6Net::new(
        std::net::Ipv6Addr::new(0xfd00, 0xbe, 0x27, 0, 0, 0, 0, 0),
        64,
    )
    .unwrap_or_default()
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            mode: NetworkMode::Builtin,
            bridge: "berth0".to_string(),
            subnet_v4: Ipv4Net::new(std::net::Ipv4Addr::new(10, 88, 0, 0), 16).unwrap_or_default(),
            subnet_v6: None,
            mtu: 1500,
            state_dir: PathBuf::from("/var/lib/berth/network"),
            netns_dir: PathBuf::from("/run/berth/netns"),
            masquerade: true,
            nft_table: "berth".to_string(),
            plugin_timeout: std::time::Duration::from_secs(60),
        }
    }
}

impl NetworkConfig {
    /// Turns on dual stack with the default ULA subnet.
    pub fn with_default_ipv6(mut self) -> Self {
        self.subnet_v6 = Some(default_ula_subnet());
        self
    }

    /// Checks every field for values the network cannot work with.
    pub fn validate(&self) -> Result<(), NetError> {
        let invalid = |field, reason: &str| {
            Err(NetError::InvalidConfig {
                field,
                reason: reason.to_string(),
            })
        };
        if self.bridge.is_empty() || self.bridge.len() > 15 || self.bridge.contains(['/', ' ']) {
            return invalid("bridge", "must be 1-15 characters without '/' or spaces");
        }
        if self.subnet_v4.prefix_len() > 30 {
            return invalid("subnet_v4", "prefix must be /30 or shorter");
        }
        if let Some(v6) = self.subnet_v6 {
            if v6.prefix_len() > 126 {
                return invalid("subnet_v6", "prefix must be /126 or shorter");
            }
        }
        if !(1280..=65535).contains(&self.mtu) {
            return invalid("mtu", "must be between 1280 and 65535");
        }
        let table_ok = !self.nft_table.is_empty()
            && self.nft_table.len() <= 64
            && self
                .nft_table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !table_ok {
            return invalid("nft_table", "must be 1-64 characters of [A-Za-z0-9_-]");
        }
        Ok(())
    }
}
