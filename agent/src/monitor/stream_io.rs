//! Async (tokio) ends of the fds a streaming session passes: pipe readers and
//! writers and a pty master, non-blocking over [`AsyncFd`]. Each owns its fd:
//! dropping it closes the fd.

use std::{
    fs::File,
    io::{self, Read, Write},
    os::fd::{AsFd, AsRawFd, OwnedFd, RawFd},
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tokio::io::{unix::AsyncFd, AsyncRead, AsyncWrite, ReadBuf};

use super::error::{MonitorError, Result};

/// Registers `fd` with tokio, non-blocking.
fn async_fd(fd: OwnedFd) -> io::Result<AsyncFd<File>> {
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    // SAFETY: the File owns the fd: it stays open, as the same file
    // description, until the AsyncFd (which owns the File) is dropped.
    Ok(unsafe { AsyncFd::register(File::from(fd)) }?)
}

/// One read when `fd` is readable. With `eio_is_eof`, EIO (a pty master
/// whose slave side is closed) reads as end of stream.
fn poll_read_fd(
    fd: &AsyncFd<File>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
    eio_is_eof: bool,
) -> Poll<io::Result<()>> {
    loop {
        let mut guard = ready!(fd.poll_read_ready(cx))?;
        let unfilled = buf.initialize_unfilled();
        match guard.try_io(|f| f.get_ref().read(unfilled)) {
            Ok(Ok(n)) => {
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            Ok(Err(e)) if eio_is_eof && e.raw_os_error() == Some(libc::EIO) => {
                return Poll::Ready(Ok(()))
            }
            Ok(Err(e)) => return Poll::Ready(Err(e)),
            Err(_would_block) => continue,
        }
    }
}

/// One write when `fd` is writable.
fn poll_write_fd(fd: &AsyncFd<File>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
    loop {
        let mut guard = ready!(fd.poll_write_ready(cx))?;
        match guard.try_io(|f| f.get_ref().write(data)) {
            Ok(r) => return Poll::Ready(r),
            Err(_would_block) => continue,
        }
    }
}

/// The read end of a pipe: a process's stdout or stderr.
#[derive(Debug)]
pub struct PipeReader(AsyncFd<File>);

impl PipeReader {
    /// Wraps a pipe's read end (made non-blocking).
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        async_fd(fd).map(Self)
    }
}

impl AsyncRead for PipeReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_fd(&self.0, cx, buf, false)
    }
}

/// The write end of a pipe: a process's stdin. `shutdown` closes it (the
/// process reads EOF), as dropping it does.
#[derive(Debug)]
pub struct PipeWriter(Option<AsyncFd<File>>);

impl PipeWriter {
    /// Wraps a pipe's write end (made non-blocking).
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        async_fd(fd).map(|f| Self(Some(f)))
    }
}

impl AsyncWrite for PipeWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &self.0 {
            Some(fd) => poll_write_fd(fd, cx, data),
            None => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "stdin pipe already shut down",
            ))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0 = None;
        Poll::Ready(Ok(()))
    }
}

/// Sets the window size of the pty whose master (or a dup of it) is `fd`.
fn set_window(fd: RawFd, cols: u16, rows: u16) -> Result<()> {
    berth_runtime::console::set_size(fd, rows, cols).map_err(MonitorError::from)
}

/// An exec's pty master: the process's terminal input and output, and its
/// window size. `tokio::io::split` it to read and write from two tasks; take
/// a [`PtyResizer`] first to resize from a third. A pty has no half-close:
/// `shutdown` is a no-op (send the terminal's EOF character, `^D`, instead);
/// reads end (EOF) once the process and every other holder of the terminal
/// have closed it.
#[derive(Debug)]
pub struct Pty(Arc<AsyncFd<File>>);

impl Pty {
    /// Wraps a pty master (made non-blocking).
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        async_fd(fd).map(|f| Self(Arc::new(f)))
    }

    /// Sets the terminal's size.
    pub fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        set_window(self.0.as_raw_fd(), cols, rows)
    }

    /// A handle that resizes this terminal, usable after a split.
    pub fn resizer(&self) -> PtyResizer {
        PtyResizer(self.0.clone())
    }
}

impl AsyncRead for Pty {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_fd(&self.0, cx, buf, true)
    }
}

impl AsyncWrite for Pty {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write_fd(&self.0, cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Resizes a [`Pty`] (shares its fd).
#[derive(Debug, Clone)]
pub struct PtyResizer(Arc<AsyncFd<File>>);

impl PtyResizer {
    /// Sets the terminal's size.
    pub fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        set_window(self.0.as_raw_fd(), cols, rows)
    }
}

/// A tty container's pty master dup held only to resize it (never read or
/// written: the monitor reads it for the log and writes attach input).
#[derive(Debug)]
pub(crate) struct ResizeFd(pub(crate) OwnedFd);

impl ResizeFd {
    /// Sets the terminal's size.
    pub(crate) fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        set_window(self.0.as_raw_fd(), cols, rows)
    }
}
