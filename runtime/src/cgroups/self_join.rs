//! Entering a cgroup v1 from the inside. When a parent writes a child's pid
//! to `cgroup.procs`, the kernel takes the global threadgroup rwsem for
//! writing, which waits for an RCU grace period (5-15 ms here) while holding
//! `cgroup_mutex`, so every other cgroup operation on the host waits too.
//! A single-threaded process that writes `0` (itself) to each hierarchy's
//! `tasks` file moves its only thread without that lock. On v2,
//! `clone3(CLONE_INTO_CGROUP)` does the same job at the clone.
//!
//! The paths are built before the clone; [`SelfJoin::join`] runs in the
//! freshly cloned child, as its first step.

use std::{io::Write, path::PathBuf};

use super::CgroupManager;

/// The `tasks` files of every v1 hierarchy of one cgroup.
#[derive(Debug, Clone)]
pub struct SelfJoin {
    tasks: Vec<PathBuf>,
}

impl CgroupManager {
    /// On cgroup v1, what a newly cloned, still single-threaded child needs
    /// to move itself into this (created) cgroup; `None` on v2.
    pub fn self_join(&self) -> Option<SelfJoin> {
        if self.is_v2() {
            return None;
        }
        let tasks = self
            .cgroup
            .subsystems()
            .iter()
            .map(|s| s.to_controller().path().join("tasks"))
            .collect();
        Some(SelfJoin { tasks })
    }
}

impl SelfJoin {
    /// Moves the calling thread into the cgroup in every hierarchy. Call it
    /// only in a single-threaded process (its only thread is the process).
    pub fn join(&self) -> Result<(), String> {
        for path in &self.tasks {
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|mut f| f.write_all(b"0"))
                .map_err(|e| format!("joining cgroup: writing 0 to {}: {e}", path.display()))?;
        }
        Ok(())
    }
}
