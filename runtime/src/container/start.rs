//! `start`: releases a created container's init from the exec fifo, then runs
//! the poststart hooks.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::{
    error::{Error, Result},
    hooks,
    state::{StateRoot, Status, EXEC_FIFO},
};

/// Starts container `id`.
pub fn start(root: &StateRoot, id: &str) -> Result<()> {
    super::verb(start_inner(root, id))
}

fn start_inner(root: &StateRoot, id: &str) -> Result<()> {
    let st = root.load(id)?;
    let status = st.status(root);
    if status != Status::Created {
        return Err(Error::WrongState {
            id: id.into(),
            status: status.to_string(),
            op: "start",
        });
    }
    let fifo_path = root.container_dir(id).join(EXEC_FIFO);
    let fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo_path)
        .map_err(|e| Error::io("open", &fifo_path, e))?;
    let pidfd = pidfd_open(st.pid)?;
    loop {
        let mut fds = [
            libc::pollfd {
                fd: fifo.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll on two pollfds we own.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::Sys {
                op: "poll exec fifo".into(),
                source: e,
            });
        }
        if fds[0].revents & libc::POLLIN != 0 {
            let mut b = [0u8; 1];
            // SAFETY: read into a one-byte buffer we own.
            if unsafe { libc::read(fifo.as_raw_fd(), b.as_mut_ptr().cast(), 1) } == 1 {
                break;
            }
        }
        if fds[1].revents != 0 {
            return Err(Error::Init(format!(
                "container {id:?} init exited before start"
            )));
        }
    }
    let _ = std::fs::remove_file(&fifo_path);
    if let Some(h) = st.spec.hooks().as_ref().and_then(|h| h.poststart().clone()) {
        let json = serde_json::to_vec(&st.oci(Status::Running)).unwrap_or_default();
        if let Err(e) = hooks::run("poststart", &h, &json) {
            tracing::warn!("{e}");
        }
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

/// A pidfd for `pid`: readable once the process has exited.
pub(crate) fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Error::last_os(format!("pidfd_open {pid}")));
    }
    // SAFETY: the syscall returned a new fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
