//! Spawning a child with `clone3`: new user/pid namespaces from the first
//! instruction and, on cgroup v2, straight into its cgroup (`CLONE_INTO_CGROUP`
//! avoids the RCU wait of moving a task later). Falls back to `clone` when
//! `clone3` is missing. The child runs a closure and `_exit`s with its result.

use std::os::fd::RawFd;

use nix::sched::CloneFlags;

use crate::error::{Error, Result};

/// `struct clone_args` of clone3(2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Runs `child` in a new process with `flags`; returns its pid in the caller's
/// pid namespace. The caller must be single-threaded (fork semantics).
pub fn spawn(
    flags: CloneFlags,
    cgroup_fd: Option<RawFd>,
    child: impl FnOnce() -> i32,
) -> Result<i32> {
    let mut args = CloneArgs {
        flags: flags.bits() as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 with a null stack has fork semantics: the child resumes here
    // on a copy of our address space. `args` outlives the call.
    let mut pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENOSYS) || cgroup_fd.is_some() {
            return Err(Error::Sys {
                op: "clone3".into(),
                source: err,
            });
        }
        // SAFETY: the classic clone with a null stack is fork with namespace flags.
        pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                flags.bits() as libc::c_ulong | libc::SIGCHLD as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid < 0 {
            return Err(Error::last_os("clone"));
        }
    }
    if pid == 0 {
        let code = child();
        // SAFETY: leave the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    Ok(pid as i32)
}
