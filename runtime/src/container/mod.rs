//! The container verbs, one file each, as the runc command line names them.

mod create;
mod delete;
mod exec;
mod kill;
mod query;
mod start;

pub use create::{create, CreateOptions, Created};
pub use delete::delete;
pub use exec::{exec, ExecOptions, Execed};
pub use kill::{kill, parse_signal};
pub use query::{list, pids, state_json};
pub use start::start;

use std::{fs::File, os::fd::AsRawFd};

use nix::sched::CloneFlags;

use crate::error::{Error, Result};

/// Every public verb's last step: a release of the code pages it touched
/// becomes pending, if the process asked for it
/// (`crate::pages::release_after_verbs`).
fn verb<T>(result: Result<T>) -> Result<T> {
    crate::pages::after_verb();
    result
}

/// Points the caller's `pid_for_children` at another pid namespace for one
/// clone, and back on drop, so later forks (hooks) stay in our namespace.
pub(crate) struct PidNsForChildren {
    own: File,
}

impl PidNsForChildren {
    /// Enters `target` for our future children.
    pub(crate) fn enter(target: &std::path::Path) -> Result<Self> {
        let own = File::open("/proc/self/ns/pid")
            .map_err(|e| Error::io("open", "/proc/self/ns/pid", e))?;
        let t = File::open(target).map_err(|e| Error::io("open", target, e))?;
        crate::namespaces::setns(&t, CloneFlags::CLONE_NEWPID, target)?;
        Ok(Self { own })
    }
}

impl Drop for PidNsForChildren {
    fn drop(&mut self) {
        // SAFETY: setns on an fd we own.
        unsafe { libc::setns(self.own.as_raw_fd(), libc::CLONE_NEWPID) };
    }
}

/// Writes `pid` to `path` atomically, as runc's `--pid-file`.
pub(crate) fn write_pid_file(path: &std::path::Path, pid: i32) -> Result<()> {
    crate::state::write_atomic(path, pid.to_string().as_bytes())
}

/// Reaps `pid` if it is our child; ignores every error.
pub(crate) fn reap(pid: i32) {
    // SAFETY: waitpid on a pid; a null status pointer is allowed.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
}
