//! Cgroups for one container, on cgroup v1 or v2, through cgroups-rs.
//! Owned here: turning `linux.cgroupsPath` into a cgroup, applying
//! `linux.resources`, adding processes, listing and killing them, stats, and
//! removing the cgroup on delete.

use oci_spec::runtime::LinuxResources;

/// Errors from cgroup management; each names the cgroup path and the file or
/// resource that failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Placeholder until the manager lands.
    #[error("cgroups are not implemented yet")]
    Unimplemented,
}

/// A container's cgroup. Reconstructible from the path alone (after a restart).
#[derive(Debug, Clone)]
pub struct CgroupManager {
    path: String,
}

impl CgroupManager {
    /// The cgroup for `cgroups_path` (the spec's `linux.cgroupsPath`; when empty,
    /// `/berth/<id>`). Does not create anything.
    pub fn new(cgroups_path: Option<&str>, id: &str) -> Result<Self, CgroupError> {
        let path = match cgroups_path {
            Some(p) if !p.is_empty() => p.to_string(),
            _ => format!("/berth/{id}"),
        };
        Ok(Self { path })
    }

    /// The cgroup path relative to the hierarchy root, as stored in state.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Creates the cgroup (in every v1 hierarchy, or the v2 directory).
    pub fn create(&self) -> Result<(), CgroupError> {
        Err(CgroupError::Unimplemented)
    }

    /// Applies `resources`; fails naming the first resource the kernel refused.
    pub fn apply(&self, _resources: &LinuxResources) -> Result<(), CgroupError> {
        Err(CgroupError::Unimplemented)
    }

    /// Moves `pid` (a whole thread group) into the cgroup.
    pub fn add_process(&self, _pid: i32) -> Result<(), CgroupError> {
        Err(CgroupError::Unimplemented)
    }

    /// On cgroup v2, an fd of the cgroup directory for `clone3(CLONE_INTO_CGROUP)`.
    pub fn v2_dir_fd(&self) -> Option<std::os::fd::OwnedFd> {
        None
    }

    /// The pids of every process in the cgroup.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        Err(CgroupError::Unimplemented)
    }

    /// Sends `signal` to every process in the cgroup.
    pub fn kill_all(&self, _signal: i32) -> Result<(), CgroupError> {
        Err(CgroupError::Unimplemented)
    }

    /// Removes the cgroup; kills what is left in it first. Idempotent.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        Err(CgroupError::Unimplemented)
    }
}
