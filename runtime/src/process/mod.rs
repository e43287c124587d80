//! The processes the runtime starts inside a container: how they are cloned,
//! and everything applied to them between clone and `execve` (namespaces are in
//! `crate::namespaces`, the filesystem in `crate::rootfs`).

pub mod caps;
pub mod clone;
pub mod exec;
pub mod finish;
pub mod init;
pub mod joiner;
pub mod rlimits;
pub mod user;

/// Makes `fds` the calling process's stdin, stdout and stderr.
pub fn install_stdio(fds: [std::os::fd::RawFd; 3]) -> crate::Result<()> {
    for (target, fd) in fds.into_iter().enumerate() {
        if fd == target as i32 {
            continue;
        }
        // SAFETY: dup2 on fds the caller handed us; the copy is not close-on-exec.
        if unsafe { libc::dup2(fd, target as i32) } < 0 {
            return Err(crate::Error::last_os(format!(
                "dup2 {fd} onto stdio {target}"
            )));
        }
    }
    Ok(())
}
