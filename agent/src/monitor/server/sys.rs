//! Small system helpers: pipes, non-blocking mode, reads that tell EOF from
//! "nothing yet", socket sends that never raise SIGPIPE, killing and reaping
//! a child, wait statuses.

use std::os::fd::{AsFd, OwnedFd, RawFd};

use nix::{
    fcntl::{fcntl, FcntlArg, OFlag},
    sys::{
        signal::{kill, Signal},
        socket::{send as nix_send, MsgFlags},
        wait::waitpid,
    },
    unistd::Pid,
};

use crate::monitor::error::{MonitorError, Result};

fn sys_err(op: String, e: nix::Error) -> MonitorError {
    MonitorError::Sys {
        op,
        source: e.into(),
    }
}

/// A pipe with `flags` (always close-on-exec): (read end, write end).
pub fn pipe_with(flags: OFlag) -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(flags | OFlag::O_CLOEXEC).map_err(|e| sys_err("pipe2".into(), e))
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    pipe_with(OFlag::empty())
}

/// Sets O_NONBLOCK on `fd`.
pub fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    let err = |e| sys_err("fcntl O_NONBLOCK".into(), e);
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL).map_err(err)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map_err(err)?;
    Ok(())
}

/// What a non-blocking read gave.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes.
    Data(usize),
    /// Nothing available now.
    Empty,
    /// End of stream (EOF, or EIO from a pty whose slave is closed) or an error.
    Closed,
}

/// One read from a non-blocking fd.
pub fn read(fd: RawFd, buf: &mut [u8]) -> ReadOutcome {
    loop {
        // SAFETY: read into a buffer we own, of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            return ReadOutcome::Data(n as usize);
        }
        if n == 0 {
            return ReadOutcome::Closed;
        }
        match nix::Error::last() {
            nix::Error::EINTR => continue,
            nix::Error::EAGAIN => return ReadOutcome::Empty,
            _ => return ReadOutcome::Closed,
        }
    }
}

/// One send on a non-blocking socket, without SIGPIPE. Ok(0) means "would block".
pub fn send(fd: RawFd, data: &[u8]) -> std::io::Result<usize> {
    loop {
        match nix_send(fd, data, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => return Ok(n),
            Err(nix::Error::EINTR) => continue,
            Err(nix::Error::EAGAIN) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sends SIGKILL to `pid`; a process already gone is fine.
pub fn kill_hard(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// Kills our child `pid` and reaps it (its status is dropped).
pub fn kill_and_reap(pid: i32) {
    kill_hard(pid);
    let _ = waitpid(Pid::from_raw(pid), None);
}

/// Waits for our child `pid`; its raw wait status.
pub fn wait_raw(pid: i32) -> Option<i32> {
    let mut status = 0;
    // SAFETY: waitpid with a status pointer we own.
    (unsafe { libc::waitpid(pid, &mut status, 0) } == pid).then_some(status)
}

/// Reaps any exited child without blocking: (pid, raw wait status).
pub fn reap_any() -> Option<(i32, i32)> {
    let mut status = 0;
    // SAFETY: waitpid with a status pointer we own.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    (pid > 0).then_some((pid, status))
}

/// `/dev/null`, read-write.
pub fn dev_null() -> Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| MonitorError::io("open", "/dev/null", e))
}

/// A wait status as (exit code, signal): 128 + signal when killed.
pub fn decode_status(status: i32) -> (i32, Option<i32>) {
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        (128 + sig, Some(sig))
    } else {
        (libc::WEXITSTATUS(status), None)
    }
}
