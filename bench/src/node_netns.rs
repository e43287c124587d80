//! The private network namespace the network bench runs in, standing in for
//! the node's: every bridge, veth, nftables table and iptables chain either
//! path makes lives there and vanishes with the bench process, whatever
//! happens to it, so nothing can touch the host's network, a real `berth0`
//! or the tests running beside the bench.

use std::process::{Command, Stdio};

use nix::sched::{unshare, CloneFlags};

use crate::error::BenchError;

/// Moves the calling thread into a new network namespace with `lo` up.
/// Call it first thing in `main`, while the process has one thread: every
/// thread and child process started afterwards inherits the namespace.
pub fn enter() -> Result<(), BenchError> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(BenchError::NodeNetns)?;
    let lo_up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|source| BenchError::Spawn {
            binary: "ip".into(),
            source,
        })?;
    if lo_up.success() {
        Ok(())
    } else {
        Err(BenchError::Failed {
            runtime: "ip",
            verb: "link set lo up",
            id: "node".to_string(),
            reason: format!("exited with {lo_up}"),
        })
    }
}
