//! Requests and results exchanged with the agent.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Transport protocol of a host port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The protocol's lowercase name, as nftables and CNI spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One `hostPort` of a pod: traffic to `host_ip:host_port` goes to the pod's
/// `container_port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Port inside the pod.
    pub container_port: u16,
    /// Port on the host.
    pub host_port: u16,
    /// Host address to match; `None` (or an unspecified address) means every
    /// local address.
    pub host_ip: Option<IpAddr>,
}

impl std::fmt::Display for PortMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host_ip {
            Some(ip) => write!(f, "{}:{}", ip, self.host_port)?,
            None => write!(f, "*:{}", self.host_port)?,
        }
        write!(f, "->{}/{}", self.container_port, self.protocol.as_str())
    }
}

/// What the agent knows about a pod when it asks for its network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetworkRequest {
    /// Sandbox id; keys every resource of the pod.
    pub id: String,
    /// Pod name (metadata.name).
    pub name: String,
    /// Pod namespace (metadata.namespace).
    pub namespace: String,
    /// Pod uid (metadata.uid).
    pub uid: String,
    /// The pod's network namespace, as returned by `Network::create_netns`.
    pub netns: PathBuf,
    /// Host ports to map into the pod.
    pub port_mappings: Vec<PortMapping>,
}

/// The pod's addresses once its network is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetworkStatus {
    /// Primary IPv4 address, if the network assigned one.
    pub ipv4: Option<Ipv4Addr>,
    /// IPv6 address, if the network is dual stack.
    pub ipv6: Option<Ipv6Addr>,
    /// Name of the pod's interface (`eth0`).
    pub interface: String,
    /// The CNI chain's full result (routes, DNS), in CNI mode.
    pub cni_result: Option<crate::cni::CniResult>,
}

impl PodNetworkStatus {
    /// The primary address: IPv4 if present, else IPv6 (CRI's `PodIP`).
    pub fn primary_ip(&self) -> Option<IpAddr> {
        self.ipv4
            .map(IpAddr::V4)
            .or_else(|| self.ipv6.map(IpAddr::V6))
    }

    /// Every address, primary first (CRI's `PodIPs`).
    pub fn all_ips(&self) -> Vec<IpAddr> {
        let v4 = self.ipv4.map(IpAddr::V4);
        let v6 = self.ipv6.map(IpAddr::V6);
        v4.into_iter().chain(v6).collect()
    }
}

/// Counters of the pod's `eth0`, seen from inside the pod.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// The interface counted (`eth0`).
    pub interface: &'static str,
    /// Bytes received by the pod.
    pub rx_bytes: u64,
    /// Bytes sent by the pod.
    pub tx_bytes: u64,
    /// Packets received by the pod.
    pub rx_packets: u64,
    /// Packets sent by the pod.
    pub tx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Packets dropped on receive.
    pub rx_dropped: u64,
    /// Packets dropped on transmit.
    pub tx_dropped: u64,
}

/// The name of the interface inside every pod.
pub const POD_IFNAME: &str = "eth0";
