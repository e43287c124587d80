//! berth's nftables table: egress masquerade and hostPort DNAT.
//!
//! The table, maps and rules are made with the `nft` tool reading a script
//! on stdin, once per daemon start: the tool is the stable, documented
//! interface to nf_tables, while speaking nf_tables netlink directly would
//! mean hand-encoding rule expression bytecode with no maintained Rust
//! library for it. A pod's hostPorts, though, are only map elements (plain
//! data), written over a long-lived netlink socket (`nft_elements.rs`): a
//! short-lived `nft` per pod cost a fork/exec and, on teardown, an RCU grace
//! period at its exit. Each pod's elements land or fail together, in one
//! transaction.
//!
//! Layout of the `inet` table (name from the config):
//! - four verdict-free maps hold every hostPort as an element, keyed by
//!   `[host address .] protocol . host port` and mapping to
//!   `pod address . container port` (`hp4`, `hp4ip`, `hp6`, `hp6ip`). A pod's
//!   mappings are exactly its elements: adding uses `create element` (so a
//!   host port taken by another pod is an error, never a silent override)
//!   and removal deletes exactly those keys.
//! - `hostports` does the DNAT lookups; `prerouting` (traffic from outside
//!   and from pods) and `output` (traffic from the host itself) jump to it
//!   for packets addressed to a local address.
//! - `postrouting` masquerades DNATed traffic that came from 127.0.0.0/8
//!   (the bridge has `route_localnet=1` so such packets may leave on it),
//!   DNATed pod-to-pod traffic (so replies come back through the host), and,
//!   when enabled, pod traffic leaving the pod subnet.
//!
//! hostPorts on `::1` cannot work: the kernel never routes IPv6 loopback
//! traffic off the host's loopback, so IPv6 mappings answer on the host's
//! other addresses only.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use ipnet::{Ipv4Net, Ipv6Net};
use nix::errno::Errno;

use crate::error::NetError;
use crate::nft_elements::{Concat, ElementData, ElementOp, ElementSocket};
use crate::types::{PortMapping, Protocol};

/// Handle on the nftables table owned by one `Network`; clones share its
/// element socket.
#[derive(Debug, Clone)]
pub(crate) struct NftTable {
    name: String,
    elements: Arc<Mutex<ElementSocket>>,
}

/// The addresses a pod's hostPorts point at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PodTarget {
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

impl NftTable {
    /// A handle on table `name` in the caller's network namespace.
    pub fn new(name: &str) -> Result<Self, NetError> {
        Ok(NftTable {
            name: name.to_string(),
            elements: Arc::new(Mutex::new(ElementSocket::open()?)),
        })
    }

    /// Creates the table, maps and chains, or rewrites the chains of an
    /// existing table while keeping the maps (and so every pod's mappings)
    /// intact.
    pub fn ensure(
        &self,
        subnet_v4: Ipv4Net,
        subnet_v6: Option<Ipv6Net>,
        masquerade: bool,
    ) -> Result<(), NetError> {
        let t = &self.name;
        let mut s = format!("add table inet {t}\n");
        for (map, key, value) in [
            (
                "hp4",
                "inet_proto . inet_service",
                "ipv4_addr . inet_service",
            ),
            (
                "hp4ip",
                "ipv4_addr . inet_proto . inet_service",
                "ipv4_addr . inet_service",
            ),
            (
                "hp6",
                "inet_proto . inet_service",
                "ipv6_addr . inet_service",
            ),
            (
                "hp6ip",
                "ipv6_addr . inet_proto . inet_service",
                "ipv6_addr . inet_service",
            ),
        ] {
            let _ = writeln!(s, "add map inet {t} {map} {{ type {key} : {value}; }}");
        }
        let chains = [
            ("hostports", ""),
            (
                "prerouting",
                "type nat hook prerouting priority -100; policy accept;",
            ),
            (
                "output",
                "type nat hook output priority -100; policy accept;",
            ),
            (
                "postrouting",
                "type nat hook postrouting priority 100; policy accept;",
            ),
        ];
        for (chain, base) in chains {
            let _ = writeln!(s, "add chain inet {t} {chain} {{ {base} }}");
            let _ = writeln!(s, "flush chain inet {t} {chain}");
        }
        let mut rule = |chain: &str, body: &str| {
            let _ = writeln!(s, "add rule inet {t} {chain} {body}");
        };
        rule(
            "hostports",
            "dnat ip to ip daddr . meta l4proto . th dport map @hp4ip",
        );
        rule(
            "hostports",
            "meta nfproto ipv4 dnat ip to meta l4proto . th dport map @hp4",
        );
        rule(
            "hostports",
            "dnat ip6 to ip6 daddr . meta l4proto . th dport map @hp6ip",
        );
        rule(
            "hostports",
            "meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @hp6",
        );
        rule("prerouting", "fib daddr type local jump hostports");
        rule("output", "fib daddr type local jump hostports");
        rule(
            "postrouting",
            "ct status dnat ip saddr 127.0.0.0/8 masquerade",
        );
        rule(
            "postrouting",
            &format!("ct status dnat ip saddr {subnet_v4} ip daddr {subnet_v4} masquerade"),
        );
        if let Some(v6) = subnet_v6 {
            rule(
                "postrouting",
                &format!("ct status dnat ip6 saddr {v6} ip6 daddr {v6} masquerade"),
            );
        }
        if masquerade {
            rule(
                "postrouting",
                &format!("ip saddr {subnet_v4} ip daddr != {subnet_v4} masquerade"),
            );
            if let Some(v6) = subnet_v6 {
                rule(
                    "postrouting",
                    &format!("ip6 saddr {v6} ip6 daddr != {v6} masquerade"),
                );
            }
        }
        self.apply(&s)
    }

    /// Installs every mapping of a pod in one transaction.
    pub fn add_pod(&self, target: PodTarget, mappings: &[PortMapping]) -> Result<(), NetError> {
        let elements = elements(target, mappings)?;
        match self.apply_elements(ElementOp::Create, &elements) {
            Err(Errno::EEXIST) => Err(NetError::PortMapping {
                mapping: mappings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                reason: "host port already mapped by another pod".to_string(),
            }),
            other => other.map_err(|errno| self.element_error("create", errno)),
        }
    }

    /// Removes exactly the elements `add_pod` installed for these mappings;
    /// elements already gone are skipped.
    pub fn remove_pod(&self, target: PodTarget, mappings: &[PortMapping]) -> Result<(), NetError> {
        let elements = elements(target, mappings)?;
        match self.apply_elements(ElementOp::Delete, &elements) {
            Ok(()) => return Ok(()),
            Err(Errno::ENOENT) => {}
            Err(errno) => return Err(self.element_error("delete", errno)),
        }
        // Some element is already gone (an interrupted earlier teardown):
        // delete one at a time and accept "no such element".
        for element in elements {
            match self.apply_elements(ElementOp::Delete, std::slice::from_ref(&element)) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(errno) => return Err(self.element_error("delete", errno)),
            }
        }
        Ok(())
    }

    fn apply_elements(&self, op: ElementOp, elements: &[ElementData]) -> Result<(), Errno> {
        self.elements
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .apply(&self.name, op, elements)
    }

    fn element_error(&self, op: &str, errno: Errno) -> NetError {
        NetError::Nftables {
            table: self.name.clone(),
            reason: format!("{op} hostPort map elements: {}", errno.desc()),
        }
    }

    /// Deletes the whole table; a missing table is fine.
    pub fn delete(&self) -> Result<(), NetError> {
        match self.apply(&format!("delete table inet {}\n", self.name)) {
            Err(NetError::Nftables { reason, .. }) if reason.contains("No such file") => Ok(()),
            other => other,
        }
    }

    fn apply(&self, script: &str) -> Result<(), NetError> {
        let fail = |reason: String| NetError::Nftables {
            table: self.name.clone(),
            reason,
        };
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot run nft: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .map_err(|e| fail(format!("writing script to nft: {e}")))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| fail(format!("waiting for nft: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(fail(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ))
        }
    }
}

/// The map elements for `mappings` toward `target`, as nf_tables data:
/// keys `[host address .] protocol . host port`, values
/// `pod address . container port`.
fn elements(target: PodTarget, mappings: &[PortMapping]) -> Result<Vec<ElementData>, NetError> {
    let mut out = Vec::new();
    for m in mappings {
        if m.host_port == 0 || m.container_port == 0 {
            return Err(NetError::PortMapping {
                mapping: m.to_string(),
                reason: "host and container ports must be non-zero".to_string(),
            });
        }
        let proto_port = |key: Concat| {
            key.field(&[protocol_number(m.protocol)])
                .field(&m.host_port.to_be_bytes())
                .into_bytes()
        };
        let host_ip = m.host_ip.filter(|ip| !ip.is_unspecified());
        let mut push = |map, key: Vec<u8>, pod: IpAddr| {
            out.push(ElementData {
                map,
                key,
                value: Concat::default()
                    .field(&ip_bytes(pod))
                    .field(&m.container_port.to_be_bytes())
                    .into_bytes(),
            })
        };
        match host_ip {
            Some(ip @ IpAddr::V4(_)) => {
                let pod = target.ipv4.ok_or_else(|| family_error(m, "IPv4"))?;
                let key = proto_port(Concat::default().field(&ip_bytes(ip)));
                push("hp4ip", key, pod.into());
            }
            Some(ip @ IpAddr::V6(_)) => {
                let pod = target.ipv6.ok_or_else(|| family_error(m, "IPv6"))?;
                let key = proto_port(Concat::default().field(&ip_bytes(ip)));
                push("hp6ip", key, pod.into());
            }
            None => {
                if let Some(pod) = target.ipv4 {
                    push("hp4", proto_port(Concat::default()), pod.into());
                }
                if let Some(pod) = target.ipv6 {
                    push("hp6", proto_port(Concat::default()), pod.into());
                }
            }
        }
    }
    Ok(out)
}

/// The IP protocol number nftables' `inet_proto` holds.
fn protocol_number(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Tcp => libc::IPPROTO_TCP as u8,
        Protocol::Udp => libc::IPPROTO_UDP as u8,
        Protocol::Sctp => libc::IPPROTO_SCTP as u8,
    }
}

/// An address in network byte order.
fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn family_error(m: &PortMapping, family: &str) -> NetError {
    NetError::PortMapping {
        mapping: m.to_string(),
        reason: format!("host ip is {family} but the pod has no {family} address"),
    }
}
