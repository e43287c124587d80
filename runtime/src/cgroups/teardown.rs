//! Removing a container's cgroup on delete. Owned here: the fast path (one
//! rmdir per hierarchy, which is all an emptied cgroup needs), and for a
//! cgroup that still holds processes or children: killing everything,
//! waiting for it to empty without fixed sleeps (v2: `cgroup.events` wakes
//! us; v1: short polls), and removing it.

use std::io::{Read, Seek};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{error, files, CgroupError, CgroupManager};

/// How long `destroy` waits for killed processes to leave the cgroup.
const EMPTY_TIMEOUT: Duration = Duration::from_secs(10);

/// v1 polling: the first pause and the longest one (doubling in between).
const POLL_FIRST: Duration = Duration::from_micros(100);
const POLL_MAX: Duration = Duration::from_millis(10);

/// How often the slow path tries rmdir, and the first pause between tries
/// (doubling after each): the kernel may still be releasing the last task.
const REMOVE_TRIES: u32 = 6;
const REMOVE_FIRST_DELAY: Duration = Duration::from_millis(1);

impl CgroupManager {
    /// Removes the cgroup; kills what is left in it first, waits for it to
    /// empty, then removes it from every hierarchy. A missing cgroup is
    /// success, so this is idempotent.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        if self.try_rmdir_all() {
            return Ok(());
        }
        if !self.cgroup.exists() {
            return Ok(());
        }
        for child in self.child_cgroups()? {
            child.destroy()?;
        }
        self.kill_everything()?;
        self.wait_empty()?;
        self.remove_dirs()
    }

    /// The cgroup's directory in every hierarchy (one on v2).
    fn dirs(&self) -> Vec<PathBuf> {
        if self.is_v2() {
            return vec![self.v2_dir()];
        }
        self.cgroup
            .subsystems()
            .iter()
            .map(|s| s.to_controller().path().to_path_buf())
            .collect()
    }

    /// One rmdir per hierarchy; true when the cgroup is gone from all of
    /// them. Stops at the first directory that is busy (processes or
    /// children left), so a live cgroup is left whole for the slow path.
    fn try_rmdir_all(&self) -> bool {
        self.dirs()
            .iter()
            .all(|dir| match std::fs::remove_dir(dir) {
                Ok(()) => true,
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            })
    }

    /// rmdir in every hierarchy, retried a few times. Gone already is success.
    fn remove_dirs(&self) -> Result<(), CgroupError> {
        let mut delay = REMOVE_FIRST_DELAY;
        let mut last = None;
        for _ in 0..REMOVE_TRIES {
            match self.cgroup.delete() {
                Ok(()) if !self.cgroup.exists() => return Ok(()),
                Ok(()) => last = Some("cgroup directory still exists after rmdir".into()),
                Err(_) if !self.cgroup.exists() => return Ok(()),
                Err(e) => last = Some(Box::new(e) as error::Source),
            }
            std::thread::sleep(delay);
            delay *= 2;
        }
        Err(CgroupError::Remove {
            cgroup: self.path.clone(),
            source: last.unwrap_or_else(|| "rmdir failed".into()),
        })
    }

    /// The cgroups directly below this one (made by the container itself).
    fn child_cgroups(&self) -> Result<Vec<CgroupManager>, CgroupError> {
        let dir = self.procs_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(CgroupError::Read {
                    cgroup: self.path.clone(),
                    file: dir.display().to_string(),
                    source: Box::new(e),
                })
            }
        };
        let mut children = Vec::new();
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let name = entry.file_name();
                let path = format!("{}/{}", self.path, name.to_string_lossy());
                children.push(CgroupManager::new(Some(&path), "")?);
            }
        }
        Ok(children)
    }

    /// SIGKILLs every process. v2's `cgroup.kill` does it atomically (forks
    /// included); elsewhere the cgroup is frozen while listing and signalling
    /// when a freezer is available.
    fn kill_everything(&self) -> Result<(), CgroupError> {
        if self.has_cgroup_kill() {
            return self.kill_all(libc::SIGKILL);
        }
        if self.pids()?.is_empty() {
            return Ok(());
        }
        let frozen = self.freeze().is_ok();
        let killed = self.kill_all(libc::SIGKILL);
        if frozen {
            self.thaw()?;
        }
        killed
    }

    /// Whether the kernel has v2's `cgroup.kill` for this cgroup.
    pub(super) fn has_cgroup_kill(&self) -> bool {
        self.is_v2() && self.v2_dir().join("cgroup.kill").exists()
    }

    /// Waits until no process is left; bounded. v2 sleeps on `cgroup.events`
    /// (the kernel signals a change of `populated`); v1 polls `cgroup.procs`
    /// with short, growing pauses and re-kills stragglers.
    fn wait_empty(&self) -> Result<(), CgroupError> {
        let deadline = Instant::now() + EMPTY_TIMEOUT;
        let emptied = if self.is_v2() {
            self.wait_unpopulated(deadline)?
        } else {
            self.poll_empty(deadline)?
        };
        if emptied {
            return Ok(());
        }
        Err(CgroupError::NotEmpty {
            cgroup: self.path.clone(),
            pids: self.pids()?,
        })
    }

    fn poll_empty(&self, deadline: Instant) -> Result<bool, CgroupError> {
        let mut pause = POLL_FIRST;
        loop {
            if self.pids()?.is_empty() {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            self.kill_all(libc::SIGKILL)?;
            std::thread::sleep(pause);
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    /// v2: reads `populated` from `cgroup.events`, and between reads waits
    /// for the kernel's change notification (POLLPRI) rather than sleeping.
    fn wait_unpopulated(&self, deadline: Instant) -> Result<bool, CgroupError> {
        let dir = self.v2_dir();
        let read_err = |e: std::io::Error| CgroupError::Read {
            cgroup: self.path.clone(),
            file: "cgroup.events".into(),
            source: Box::new(e),
        };
        let mut events = match std::fs::File::open(dir.join("cgroup.events")) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(read_err(e)),
        };
        let mut text = String::new();
        loop {
            text.clear();
            events.rewind().map_err(read_err)?;
            events.read_to_string(&mut text).map_err(read_err)?;
            if files::keyed_value(&text, "populated") == Some("0") {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            // Re-kill on each wake-up: cheap, and covers a kernel without
            // cgroup.kill where a process forked while being signalled.
            self.kill_all(libc::SIGKILL)?;
            wait_for_change(&events, left.min(Duration::from_millis(100)), &dir);
        }
    }
}

/// Sleeps until `file` (a kernfs notification file) changes or `timeout`
/// passes. Errors only shorten the wait: the caller re-reads and re-checks.
fn wait_for_change(file: &std::fs::File, timeout: Duration, dir: &Path) {
    let mut fds = [libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    }];
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: poll on one pollfd we own, for a bounded time.
    if unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) } < 0 {
        tracing::debug!(
            "poll {}/cgroup.events: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
}
