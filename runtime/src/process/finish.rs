//! The tail every container process goes through right before `execve`, in the
//! order the kernel requires: seccomp (early when it needs CAP_SYS_ADMIN), the
//! user switch, capability sets, no_new_privs, seccomp (late when no_new_privs
//! allows it), close-on-exec for every fd but stdio and the preserved ones.

use oci_spec::runtime::Process;

use crate::{error::Error, process::exec::Execve, seccomp};

/// What the tail needs, all computed before it starts.
pub struct Finish<'a> {
    /// The spec's process (user, capabilities, noNewPrivileges).
    pub process: &'a Process,
    /// The compiled seccomp filter, if any.
    pub seccomp: Option<&'a seccomp::Program>,
    /// The fds 3..3+N that stay open in the container.
    pub preserve_fds: u32,
    /// Whether setgroups(2) is allowed (false in a user namespace with setgroups denied).
    pub setgroups_allowed: bool,
    /// The prepared execve.
    pub execve: &'a Execve,
}

impl Finish<'_> {
    /// Runs the tail and execs; returns only the error that stopped it.
    pub fn exec(self) -> Error {
        match self.secure() {
            Ok(()) => self.execve.exec(),
            Err(e) => e,
        }
    }

    fn secure(&self) -> Result<(), Error> {
        let nnp = self.process.no_new_privileges().unwrap_or(false);
        if let (Some(p), false) = (self.seccomp, nnp) {
            seccomp::install(p)?;
        }
        if let Some(c) = self.process.capabilities() {
            super::caps::drop_bounding(c)?;
        }
        super::user::switch(self.process.user(), self.setgroups_allowed)?;
        if let Some(c) = self.process.capabilities() {
            super::caps::apply_sets(c)?;
        }
        if nnp {
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(Error::last_os("prctl(PR_SET_NO_NEW_PRIVS)"));
            }
            if let Some(p) = self.seccomp {
                seccomp::install(p)?;
            }
        }
        // The parent-death signal guarded setup only; it would survive execve.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
        let first = 3 + self.preserve_fds;
        // SAFETY: close_range only flags fds; CLOSE_RANGE_CLOEXEC closes nothing now.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_close_range,
                first,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        if rc != 0 {
            return Err(Error::last_os("close_range"));
        }
        Ok(())
    }
}
