//! Terminals: a pty opened inside the container's devpts, made the controlling
//! terminal of the container process, and its master handed to the caller over
//! a unix socket (`--console-socket`) with `SCM_RIGHTS`, as runc does.

use std::{
    io::IoSlice,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::net::UnixStream,
    },
    path::Path,
};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Error, Result};

/// Opens a new pty from `ptmx`; returns (master, slave).
pub fn open_pty(ptmx: &Path) -> Result<(OwnedFd, OwnedFd)> {
    let master = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(ptmx)
        .map_err(|e| Error::io("open", ptmx, e))?;
    let master: OwnedFd = master.into();
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from the pointer we pass.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err(Error::io(
            "unlock pty",
            ptmx,
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: TIOCGPTPEER returns a new fd for the slave side, or -1.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(Error::io(
            "open pty peer",
            ptmx,
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: the ioctl just returned this fd; we own it.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}

use std::os::unix::fs::OpenOptionsExt;

/// Makes `slave` the controlling terminal and stdio of a new session.
pub fn make_controlling(slave: &OwnedFd) -> Result<()> {
    // SAFETY: setsid and the ioctl/dup2 calls take integer fds we own.
    unsafe {
        if libc::setsid() < 0 {
            return Err(Error::last_os("setsid"));
        }
        if libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) != 0 {
            return Err(Error::last_os("ioctl(TIOCSCTTY)"));
        }
        for fd in 0..3 {
            if libc::dup2(slave.as_raw_fd(), fd) < 0 {
                return Err(Error::last_os("dup2 pty onto stdio"));
            }
        }
    }
    Ok(())
}

/// Sets the window size of a pty.
pub fn set_size(fd: RawFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads the winsize we pass.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(Error::last_os("ioctl(TIOCSWINSZ)"));
    }
    Ok(())
}

/// Sends the pty master to the console socket at `path`.
pub fn send_to_socket(path: &Path, master: &OwnedFd) -> Result<()> {
    let sock =
        UnixStream::connect(path).map_err(|e| Error::io("connect console socket", path, e))?;
    let name = b"/dev/ptmx";
    let iov = [IoSlice::new(name)];
    let fds = [master.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| Error::io("send pty to console socket", path, e.into()))?;
    Ok(())
}

/// Sends a container's pty master to `console_socket` when one was given;
/// otherwise hands it back for the caller to keep (or proxy).
pub fn route_master(master: OwnedFd, console_socket: Option<&Path>) -> Result<Option<OwnedFd>> {
    match console_socket {
        Some(sock) => send_to_socket(sock, &master).map(|()| None),
        None => Ok(Some(master)),
    }
}
