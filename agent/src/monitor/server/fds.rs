//! Small fd helpers: pipes, non-blocking mode, reads that tell EOF from
//! "nothing yet", and socket sends that never raise SIGPIPE.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::monitor::error::{MonitorError, Result};

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(MonitorError::last_os("pipe2"));
    }
    // SAFETY: two new fds that we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sets O_NONBLOCK on `fd`.
pub fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl get/set flags on an fd we own.
    let ok = unsafe {
        let flags = libc::fcntl(raw, libc::F_GETFL);
        flags >= 0 && libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(MonitorError::last_os(format!("set fd {raw} non-blocking")))
    }
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
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return ReadOutcome::Empty,
            _ => return ReadOutcome::Closed,
        }
    }
}

/// One send on a non-blocking socket, without SIGPIPE. Ok(0) means "would block".
pub fn send(fd: RawFd, data: &[u8]) -> std::io::Result<usize> {
    loop {
        // SAFETY: send from a buffer we own, of its length.
        let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(0),
            _ => return Err(e),
        }
    }
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
