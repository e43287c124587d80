//! The tail every container process goes through right before `execve`, in the
//! order the kernel requires: default signal dispositions and an empty signal
//! mask (ignored signals survive execve, and the Rust processes that clone
//! containers ignore SIGPIPE), seccomp (early when it needs CAP_SYS_ADMIN), the
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
        reset_signals()?;
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

/// The kernel's `struct sigaction` (x86_64 and aarch64 layout), for the
/// raw syscall: glibc's wrappers refuse the two real-time signals it keeps
/// for itself, and a cloner may have left those ignored too.
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Every catchable signal back to its default action, none blocked: a
/// container starts as if from a fresh `init`, whatever its cloner ignored
/// or blocked.
fn reset_signals() -> Result<(), Error> {
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid, fully initialised action and
        // the kernel's sigset size; no old action is asked for.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                std::mem::size_of::<u64>(),
            )
        };
        if rc != 0 {
            return Err(Error::last_os("rt_sigaction(SIG_DFL)"));
        }
    }
    // SAFETY: an empty set, initialised by sigemptyset before use.
    let rc = unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(Error::last_os("sigprocmask"));
    }
    Ok(())
}
