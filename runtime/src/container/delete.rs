//! `delete`: kills what is left (created containers always, running ones with
//! `force`), removes the cgroup, runs the poststop hooks and removes the state.

use std::time::{Duration, Instant};

use crate::{
    cgroups::CgroupManager,
    error::{Error, Result},
    hooks,
    state::{self, StateRoot, Status},
};

/// Deletes container `id`. With `force`, a running container is killed and a
/// missing one is not an error.
pub fn delete(root: &StateRoot, id: &str, force: bool) -> Result<()> {
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

/// Waits (bounded) until the process that started at `start_time` is gone.
fn wait_gone(pid: i32, start_time: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pause = Duration::from_micros(100);
    while state::process_start_time(pid) == Some(start_time) && Instant::now() < deadline {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
