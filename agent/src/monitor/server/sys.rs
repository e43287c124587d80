//! Small system helpers: pipes, non-blocking mode, reads that tell EOF from
//! "nothing yet", writes that tell "full" from "closed", socket sends (with
//! fds, `SCM_RIGHTS`) that never raise SIGPIPE, killing and reaping a child,
//! wait statuses.

use std::{
    io::IoSlice,
    os::fd::{AsFd, OwnedFd, RawFd},
};

use nix::{
    fcntl::{fcntl, FcntlArg, OFlag},
    sys::{
        signal::{kill, Signal},
        socket::{send as nix_send, sendmsg, ControlMessage, MsgFlags, UnixAddr},
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

/// What a non-blocking write gave.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// This many bytes were taken (maybe fewer than offered).
    Wrote(usize),
    /// Nothing fits now.
    Full,
    /// The reader is gone (EPIPE) or another error.
    Closed,
}

/// One write to a non-blocking fd (SIGPIPE is ignored in the monitor: a
/// closed reader is EPIPE).
pub fn write(fd: RawFd, data: &[u8]) -> WriteOutcome {
    loop {
        // SAFETY: write from a buffer we own, of its length.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n >= 0 {
            return WriteOutcome::Wrote(n as usize);
        }
        match nix::Error::last() {
            nix::Error::EINTR => continue,
            nix::Error::EAGAIN => return WriteOutcome::Full,
            _ => return WriteOutcome::Closed,
        }
    }
}

/// Writes all of `data` or reports why not: `Full` when the pipe could not
/// take it all now (a part may have been written), `Closed` when the reader
/// is gone.
pub fn write_all(fd: RawFd, mut data: &[u8]) -> WriteOutcome {
    let total = data.len();
    while !data.is_empty() {
        match write(fd, data) {
            WriteOutcome::Wrote(0) | WriteOutcome::Full => return WriteOutcome::Full,
            WriteOutcome::Wrote(n) => data = &data[n..],
            WriteOutcome::Closed => return WriteOutcome::Closed,
        }
    }
    WriteOutcome::Wrote(total)
}

/// One non-blocking `sendmsg` of `data` with `fds` attached (`SCM_RIGHTS`),
/// without SIGPIPE. The fds travel with the first byte; Ok(n) is the bytes
/// taken, and a `WouldBlock` error means nothing (no fd either) was sent.
pub fn send_with_fds(fd: RawFd, data: &[u8], fds: &[RawFd]) -> std::io::Result<usize> {
    let iov = [IoSlice::new(data)];
    let cmsgs = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsgs };
    loop {
        match sendmsg::<UnixAddr>(
            fd,
            &iov,
            cmsgs,
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            None,
        ) {
            Ok(n) => return Ok(n),
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Grows a pipe's buffer to `bytes` (best effort: the default stays on failure).
pub fn set_pipe_size(fd: &OwnedFd, bytes: i32) {
    let _ = fcntl(fd.as_fd(), FcntlArg::F_SETPIPE_SZ(bytes));
}

/// A close-on-exec duplicate of `fd`.
pub fn dup(fd: &OwnedFd, what: &str) -> Result<OwnedFd> {
    fd.try_clone().map_err(|e| MonitorError::Sys {
        op: format!("dup {what}"),
        source: e,
    })
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
