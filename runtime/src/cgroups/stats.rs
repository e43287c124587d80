//! Usage numbers of the cgroup, for CRI stats and the OOMKilled reason:
//! cpu time, memory usage and working set, memory limit, pid count, and the
//! OOM kill counter. Each reads a handful of files, raw: the crate's stat
//! readers read every file of a controller (8 for cpuacct, 10+ for memory)
//! and turn read errors into zeros.

use std::path::{Path, PathBuf};

use cgroups_rs::fs::cpuacct::CpuAcctController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{ControllIdentifier, Controller, Subsystem};

use super::{files, CgroupError, CgroupManager};

/// Memory limits at or above this are "no limit" (v1 reports unlimited as
/// the largest page-aligned i64).
const UNLIMITED_FLOOR: u64 = 1 << 62;

/// A snapshot of the cgroup's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// Total cpu time of all tasks, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// The user-mode part of `cpu_usage_ns`.
    pub cpu_user_ns: u64,
    /// The kernel-mode part of `cpu_usage_ns`.
    pub cpu_system_ns: u64,
    /// Memory charged to the cgroup (page cache included), in bytes.
    pub memory_usage_bytes: u64,
    /// Usage minus inactive file pages, as kubelet computes the working set.
    pub memory_working_set_bytes: u64,
    /// The hard memory limit; `None` when unlimited.
    pub memory_limit_bytes: Option<u64>,
    /// Number of tasks in the cgroup.
    pub pids_current: u64,
}

/// Per-version file names of the memory numbers.
struct MemoryFiles {
    usage: &'static str,
    limit: &'static str,
    inactive_file_key: &'static str,
}

const MEMORY_V1: MemoryFiles = MemoryFiles {
    usage: "memory.usage_in_bytes",
    limit: "memory.limit_in_bytes",
    inactive_file_key: "total_inactive_file",
};
const MEMORY_V2: MemoryFiles = MemoryFiles {
    usage: "memory.current",
    limit: "memory.max",
    inactive_file_key: "inactive_file",
};

impl CgroupManager {
    /// Current usage numbers; controllers the host lacks leave their fields 0.
    pub fn stats(&self) -> Result<CgroupStats, CgroupError> {
        let mut stats = CgroupStats::default();
        self.read_cpu_stats(&mut stats)?;
        self.read_memory_stats(&mut stats)?;
        if let Some(ctl) = self.controller::<PidController>() {
            stats.pids_current = ctl
                .get_pid_current()
                .map_err(self.crate_err("pids current"))?;
        }
        Ok(stats)
    }

    /// How many processes of the cgroup the OOM killer has killed (v2
    /// `memory.events`, v1 `memory.oom_control`, key `oom_kill`).
    pub fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        let Some(dir) = self.dir_of::<MemController>() else {
            return Ok(0);
        };
        let file = if self.is_v2() {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        files::read_keyed(&self.path, &dir, file, "oom_kill")
    }

    fn read_cpu_stats(&self, stats: &mut CgroupStats) -> Result<(), CgroupError> {
        if self.is_v2() {
            // cpu.stat is a core file on v2, present without the cpu controller.
            let dir = self.v2_dir();
            let usec = |key| files::read_keyed(&self.path, &dir, "cpu.stat", key);
            stats.cpu_usage_ns = usec("usage_usec")? * 1000;
            stats.cpu_user_ns = usec("user_usec")? * 1000;
            stats.cpu_system_ns = usec("system_usec")? * 1000;
            return Ok(());
        }
        let Some(dir) = self.dir_of::<CpuAcctController>() else {
            return Ok(());
        };
        stats.cpu_usage_ns = files::read_u64(&self.path, &dir, "cpuacct.usage")?;
        // The split needs kernel 4.7+; older kernels leave it 0.
        let optional = |file| optional_u64(&self.path, &dir, file);
        stats.cpu_user_ns = optional("cpuacct.usage_user")?;
        stats.cpu_system_ns = optional("cpuacct.usage_sys")?;
        Ok(())
    }

    fn read_memory_stats(&self, stats: &mut CgroupStats) -> Result<(), CgroupError> {
        let Some(dir) = self.dir_of::<MemController>() else {
            return Ok(());
        };
        let names = if self.is_v2() { &MEMORY_V2 } else { &MEMORY_V1 };
        let usage = files::read_u64(&self.path, &dir, names.usage)?;
        let inactive = files::read_keyed(&self.path, &dir, "memory.stat", names.inactive_file_key)?;
        let limit = files::read(&self.path, &dir, names.limit)?;
        stats.memory_usage_bytes = usage;
        stats.memory_working_set_bytes = usage.saturating_sub(inactive);
        stats.memory_limit_bytes = parse_limit(&limit);
        Ok(())
    }

    /// The directory of controller `T` for this cgroup, if the host has it.
    pub(super) fn dir_of<'a, T>(&'a self) -> Option<PathBuf>
    where
        &'a T: From<&'a Subsystem>,
        T: Controller + ControllIdentifier + 'a,
    {
        self.controller::<T>().map(|c| c.path().to_path_buf())
    }
}

/// A memory limit file's value; `None` for `max` or v1's "unlimited".
fn parse_limit(text: &str) -> Option<u64> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|v| *v < UNLIMITED_FLOOR)
}

fn optional_u64(cgroup: &str, dir: &Path, file: &str) -> Result<u64, CgroupError> {
    if dir.join(file).exists() {
        files::read_u64(cgroup, dir, file)
    } else {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_limit;

    #[test]
    fn limits_parse_with_unlimited_as_none() {
        assert_eq!(parse_limit("33554432\n"), Some(33_554_432));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
    }
}
