//! Cgroups for one container, on cgroup v1 or v2, through cgroups-rs.
//! Owned here: turning `linux.cgroupsPath` into a cgroup, applying
//! `linux.resources`, adding processes, listing, freezing and killing them,
//! stats, and removing the cgroup on delete.
//!
//! The host's cgroup version is detected per host: a cgroup2 filesystem at
//! `/sys/fs/cgroup` is v2; anything else (v1, or hybrid with an empty
//! cgroup2 at `/sys/fs/cgroup/unified`) is treated as v1.

mod blkio;
mod bpf;
mod cpu;
mod device_filter;
mod devices;
mod error;
mod files;
mod freezer;
mod memory;
pub mod path;
mod self_join;
mod stats;
mod teardown;
#[cfg(test)]
mod tests;
mod v2_tree;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use cgroups_rs::fs::error::Error as CrateError;
use cgroups_rs::fs::hierarchies;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::MaxValue;
use cgroups_rs::fs::{Cgroup, ControllIdentifier, Controller, Subsystem};
use cgroups_rs::CgroupPid;
use oci_spec::runtime::LinuxResources;

pub use error::CgroupError;
pub use self_join::SelfJoin;
pub use stats::CgroupStats;

/// Where the unified (v2) hierarchy is mounted.
const V2_ROOT: &str = "/sys/fs/cgroup";

/// A container's cgroup. Reconstructible from the path alone (after a restart).
#[derive(Debug, Clone)]
pub struct CgroupManager {
    /// `/a/b`, relative to every hierarchy's root.
    path: String,
    /// The crate's handle on the cgroup in every hierarchy.
    cgroup: Cgroup,
}

impl CgroupManager {
    /// The cgroup for `cgroups_path` (the spec's `linux.cgroupsPath`; see
    /// [`path`] for the accepted forms; when empty, `/berth/<id>`). Does not
    /// create anything.
    pub fn new(cgroups_path: Option<&str>, id: &str) -> Result<Self, CgroupError> {
        let path = path::resolve(cgroups_path, id)?;
        let cgroup = Cgroup::load(hierarchies::auto(), path.trim_start_matches('/'));
        Ok(Self { path, cgroup })
    }

    /// The cgroup path relative to the hierarchy root, as stored in state.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether this host uses the unified (v2) hierarchy.
    pub fn is_v2(&self) -> bool {
        self.cgroup.v2()
    }

    /// Creates the cgroup (in every v1 hierarchy, or the v2 directory with
    /// the host's controllers enabled in every ancestor's
    /// `cgroup.subtree_control`). On v1, a new cpuset cgroup gets its
    /// `cpuset.cpus`/`cpuset.mems` from the nearest parent that has them.
    pub fn create(&self) -> Result<(), CgroupError> {
        if self.is_v2() {
            v2_tree::create(Path::new(V2_ROOT), &self.path)?;
            return self.check_v2_controllers();
        }
        self.cgroup.create().map_err(|e| CgroupError::Create {
            cgroup: self.path.clone(),
            source: Box::new(e),
        })
    }

    /// Applies `resources`; fails naming the first resource the kernel refused.
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(cpu) = resources.cpu() {
            self.apply_cpu(cpu)?;
        }
        if let Some(memory) = resources.memory() {
            self.apply_memory(memory)?;
        }
        if let Some(pids) = resources.pids() {
            self.apply_pids(pids.limit())?;
        }
        if let Some(limits) = resources.hugepage_limits() {
            self.apply_hugepages(limits)?;
        }
        if let Some(block_io) = resources.block_io() {
            self.apply_blkio(block_io)?;
        }
        if let Some(unified) = resources.unified() {
            self.apply_unified(unified)?;
        }
        if let Some(devices) = resources.devices() {
            self.apply_devices(devices)?;
        }
        Ok(())
    }

    /// Moves `pid` (a whole thread group) into the cgroup.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        self.cgroup
            .add_task_by_tgid(CgroupPid::from(pid as u64))
            .map_err(self.crate_err("adding a process"))
    }

    /// On cgroup v2, an fd of the cgroup directory for `clone3(CLONE_INTO_CGROUP)`.
    pub fn v2_dir_fd(&self) -> Option<OwnedFd> {
        if !self.is_v2() {
            return None;
        }
        let dir = std::fs::File::open(self.v2_dir()).ok()?;
        Some(OwnedFd::from(dir))
    }

    /// The pids of every process in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        // The crate's procs() reads cgroup.procs of every v1 hierarchy and
        // hides read errors; one hierarchy is enough, and errors matter here.
        let dir = self.procs_dir();
        let text = match files::read(&self.path, &dir, "cgroup.procs") {
            Err(_) if !dir.exists() => return Ok(Vec::new()),
            other => other?,
        };
        Ok(text
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect())
    }

    /// Sends `signal` to every process in the cgroup. Processes that exit
    /// meanwhile are not an error.
    pub fn kill_all(&self, signal: i32) -> Result<(), CgroupError> {
        if signal == libc::SIGKILL && self.has_cgroup_kill() {
            // Kills every process atomically, including ones forking right now.
            return self.cgroup.kill().map_err(self.crate_err("killing"));
        }
        if signal <= 0 || signal > libc::SIGRTMAX() {
            return Err(CgroupError::InvalidValue {
                cgroup: self.path.clone(),
                resource: "signal",
                reason: format!("{signal} is not a signal number"),
            });
        }
        for pid in self.pids()? {
            // SAFETY: kill(2) takes two integers and touches no memory of ours.
            // (nix's kill has no realtime signals, which kill_all must pass on.)
            if unsafe { libc::kill(pid, signal) } == 0 {
                continue;
            }
            match nix::Error::last() {
                nix::Error::ESRCH => {}
                source => {
                    return Err(CgroupError::Signal {
                        cgroup: self.path.clone(),
                        pid,
                        signal,
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    fn apply_pids(&self, limit: i64) -> Result<(), CgroupError> {
        let max = if limit > 0 {
            MaxValue::Value(limit)
        } else {
            MaxValue::Max
        };
        self.require::<PidController>("pids limit", "pids")?
            .set_pid_max(max)
            .map_err(self.crate_err("pids limit"))
    }

    /// Writes the spec's `unified` map (v2 only) as raw files: the crate
    /// has no generic file writer.
    fn apply_unified(
        &self,
        unified: &std::collections::HashMap<String, String>,
    ) -> Result<(), CgroupError> {
        if unified.is_empty() {
            return Ok(());
        }
        if !self.is_v2() {
            return Err(self.unsupported("unified", "needs cgroup v2".into()));
        }
        let mut keys: Vec<_> = unified.keys().collect();
        keys.sort();
        for key in keys {
            if key.contains('/') || (key.starts_with("cgroup.") && key != "cgroup.type") {
                return Err(CgroupError::InvalidValue {
                    cgroup: self.path.clone(),
                    resource: "unified",
                    reason: format!("key {key:?} is not a controller file"),
                });
            }
            files::write(&self.path, "unified", &self.v2_dir(), key, &unified[key])?;
        }
        Ok(())
    }

    /// On v2, warns about controllers the host has but the new cgroup did
    /// not get (an ancestor's `cgroup.subtree_control` refused them).
    fn check_v2_controllers(&self) -> Result<(), CgroupError> {
        let root = PathBuf::from(V2_ROOT);
        let wanted = files::read(&self.path, &root, "cgroup.controllers")?;
        let got = files::read(&self.path, &self.v2_dir(), "cgroup.controllers")?;
        let got: Vec<&str> = got.split_whitespace().collect();
        for controller in wanted.split_whitespace() {
            if !got.contains(&controller) {
                tracing::warn!(
                    cgroup = %self.path,
                    controller,
                    "controller not enabled for the cgroup; its limits cannot be applied"
                );
            }
        }
        Ok(())
    }

    /// The v2 directory of the cgroup.
    fn v2_dir(&self) -> PathBuf {
        PathBuf::from(V2_ROOT).join(self.path.trim_start_matches('/'))
    }

    /// The directory whose `cgroup.procs` lists the cgroup's processes.
    fn procs_dir(&self) -> PathBuf {
        if self.is_v2() {
            return self.v2_dir();
        }
        // Every v1 hierarchy holds the same processes; take the first one
        // that still has the cgroup (a partial removal may have run).
        let dirs = self
            .cgroup
            .subsystems()
            .iter()
            .map(|s| s.to_controller().path());
        let mut first = None;
        for dir in dirs {
            if dir.exists() {
                return dir.to_path_buf();
            }
            first.get_or_insert_with(|| dir.to_path_buf());
        }
        first.unwrap_or_else(|| self.v2_dir())
    }

    /// The controller of type `T`, if this host has it.
    fn controller<'a, T>(&'a self) -> Option<&'a T>
    where
        &'a T: From<&'a Subsystem>,
        T: Controller + ControllIdentifier,
    {
        self.cgroup.controller_of::<T>()
    }

    /// The controller of type `T`, or an error naming `resource` and the
    /// missing `controller`.
    fn require<'a, T>(
        &'a self,
        resource: &'static str,
        controller: &str,
    ) -> Result<&'a T, CgroupError>
    where
        &'a T: From<&'a Subsystem>,
        T: Controller + ControllIdentifier,
    {
        self.controller::<T>()
            .ok_or_else(|| self.unsupported(resource, format!("no {controller} controller")))
    }

    fn unsupported(&self, resource: &'static str, reason: String) -> CgroupError {
        CgroupError::Unsupported {
            cgroup: self.path.clone(),
            resource,
            reason,
        }
    }

    /// Maps an error of the crate while applying `resource`.
    fn crate_err(&self, resource: &'static str) -> impl Fn(CrateError) -> CgroupError + '_ {
        move |e| CgroupError::from_crate(&self.path, resource, e)
    }
}
