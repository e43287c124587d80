//! `delete`: kills what is left (created containers always, running ones with
//! `force`), removes the cgroup, runs the poststop hooks and removes the state.

use std::{
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use crate::{
    cgroups::CgroupManager,
    error::{Error, Result},
    hooks,
    state::{self, StateRoot, Status},
};

/// How long delete waits for a killed init to exit.
const GONE_TIMEOUT: Duration = Duration::from_secs(10);

/// Deletes container `id`. With `force`, a running container is killed and a
/// missing one is not an error.
pub fn delete(root: &StateRoot, id: &str, force: bool) -> Result<()> {
    super::verb(delete_inner(root, id, force))
}

fn delete_inner(root: &StateRoot, id: &str, force: bool) -> Result<()> {
    state::validate_id(id)?;
    let dir = root.container_dir(id);
    let st = match root.load(id) {
        Ok(st) => st,
        Err(Error::NotFound(_)) if dir.is_dir() => {
            // A create that died before saving its state: only the directory is left.
            return remove_dir(&dir);
        }
        Err(Error::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let status = st.status(root);
    if matches!(status, Status::Running | Status::Paused) && !force {
        return Err(Error::WrongState {
            id: id.into(),
            status: status.to_string(),
            op: "delete (use --force)",
        });
    }
    let cgroup = CgroupManager::new(Some(&st.cgroup_path), id)?;
    if status != Status::Stopped {
        // SAFETY: kill(2) with a pid and a signal.
        unsafe { libc::kill(st.pid, libc::SIGKILL) };
        wait_gone(st.pid, st.init_start_time);
    }
    cgroup.destroy()?;
    if let Some(h) = st.spec.hooks().as_ref().and_then(|h| h.poststop().clone()) {
        let json = serde_json::to_vec(&st.oci(Status::Stopped)).unwrap_or_default();
        if let Err(e) = hooks::run("poststop", &h, &json) {
            tracing::warn!("{e}");
        }
    }
    remove_dir(&dir)
}

fn remove_dir(dir: &std::path::Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", dir, e)),
    }
}

/// Waits (bounded) until the process that started at `start_time` is gone:
/// on its pidfd, which becomes readable the moment it exits.
fn wait_gone(pid: i32, start_time: u64) {
    let Ok(pidfd) = super::start::pidfd_open(pid) else {
        return; // already gone (ESRCH)
    };
    // The pidfd pins the pid: check that it is still our init, not a reuse.
    if state::process_start_time(pid) != Some(start_time) {
        return;
    }
    let deadline = Instant::now() + GONE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: poll on one pollfd we own, for a bounded time.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
        let interrupted =
            n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
        if !interrupted || left.is_zero() {
            return;
        }
    }
}
