//! Per-pod interface counters.
//!
//! Built-in mode reads the host end of the pod's veth from sysfs (no
//! namespace switch, a few small reads): a veth's receive counters are its
//! peer's transmit counters, so the host end's tx is the pod's rx and vice
//! versa. CNI mode, where the host end's name belongs to the plugin, reads
//! `eth0` from `/proc/thread-self/net/dev` on a thread inside the pod's
//! namespace.

use std::path::Path;

use crate::error::NetError;
use crate::types::{NetStats, POD_IFNAME};

/// Counters of the pod's `eth0`, from the host end `host_veth`.
pub(crate) fn from_host_veth(host_veth: &str, pod_id: &str) -> Result<NetStats, NetError> {
    let link = Path::new("/sys/class/net").join(host_veth);
    // Teardown detaches the veth from the bridge before the namespace (and
    // so the veth) goes away: only an attached veth is a configured pod.
    if !link.join("master").exists() {
        return Err(NetError::NotConfigured(pod_id.to_string()));
    }
    let dir = link.join("statistics");
    let read = |name: &str| -> Result<u64, NetError> {
        let path = dir.join(name);
        let text =
            std::fs::read_to_string(&path).map_err(|e| NetError::io("read counter", &path, e))?;
        text.trim().parse().map_err(|_| NetError::CorruptState {
            path,
            reason: format!("not a counter: {text:?}"),
        })
    };
    Ok(NetStats {
        interface: POD_IFNAME,
        rx_bytes: read("tx_bytes")?,
        tx_bytes: read("rx_bytes")?,
        rx_packets: read("tx_packets")?,
        tx_packets: read("rx_packets")?,
        rx_errors: read("tx_errors")?,
        tx_errors: read("rx_errors")?,
        rx_dropped: read("tx_dropped")?,
        tx_dropped: read("rx_dropped")?,
    })
}

/// Counters of `eth0` read inside the namespace pinned at `netns`.
pub(crate) fn from_netns(netns: &Path, pod_id: &str) -> Result<NetStats, NetError> {
    let path = Path::new("/proc/thread-self/net/dev");
    let text = crate::netns::run_in(netns, || {
        std::fs::read_to_string(path).map_err(|e| NetError::io("read", path, e))
    })?;
    parse_proc_net_dev(&text, POD_IFNAME).ok_or_else(|| NetError::NotConfigured(pod_id.to_string()))
}

/// Parses one interface's line of `/proc/net/dev`.
fn parse_proc_net_dev(text: &str, ifname: &str) -> Option<NetStats> {
    let line = text.lines().find_map(|l| {
        let (name, rest) = l.split_once(':')?;
        (name.trim() == ifname).then_some(rest)
    })?;
    let f: Vec<u64> = line
        .split_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs drop ...
    if f.len() < 12 {
        return None;
    }
    Some(NetStats {
        interface: POD_IFNAME,
        rx_bytes: f[0],
        rx_packets: f[1],
        rx_errors: f[2],
        rx_dropped: f[3],
        tx_bytes: f[8],
        tx_packets: f[9],
        tx_errors: f[10],
        tx_dropped: f[11],
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_proc_net_dev() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n    lo: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n  eth0: 1000 10 1 2 0 0 0 0 2000 20 3 4 0 0 0 0\n";
        let s = super::parse_proc_net_dev(text, "eth0").unwrap();
        assert_eq!(
            (s.rx_bytes, s.rx_packets, s.rx_errors, s.rx_dropped),
            (1000, 10, 1, 2)
        );
        assert_eq!(
            (s.tx_bytes, s.tx_packets, s.tx_errors, s.tx_dropped),
            (2000, 20, 3, 4)
        );
        assert!(super::parse_proc_net_dev(text, "eth1").is_none());
    }
}
