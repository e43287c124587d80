//! Signals as readable bytes: SIGCHLD and SIGTERM handlers write the signal
//! number to a non-blocking self-pipe the event loop polls. Handlers (unlike a
//! blocked mask for signalfd) are reset by execve, so containers do not
//! inherit a blocked SIGTERM from the monitor.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::monitor::error::{MonitorError, Result};

/// The write end, for the handler.
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

/// The signals the monitor handles.
pub const HANDLED: [i32; 3] = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT];

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::Relaxed);
    let b = sig as u8;
    // SAFETY: write(2) is async-signal-safe; errno is saved and restored
    // around it so the interrupted code sees its own.
    unsafe {
        let errno = *libc::__errno_location();
        libc::write(fd, (&b as *const u8).cast(), 1);
        *libc::__errno_location() = errno;
    }
}

/// The read end of the self-pipe; dropping it does not uninstall handlers.
pub struct SignalPipe {
    read: OwnedFd,
    _write: OwnedFd,
}

impl SignalPipe {
    /// Creates the pipe and installs the handlers.
    pub fn install() -> Result<Self> {
        let (read, write) = super::sys::pipe_with(nix::fcntl::OFlag::O_NONBLOCK)?;
        PIPE_WRITE.store(write.as_raw_fd(), Ordering::Relaxed);
        for sig in HANDLED {
            // SAFETY: a zeroed sigaction with our handler; the handler only
            // does async-signal-safe work.
            let rc = unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                sa.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut())
            };
            if rc != 0 {
                return Err(MonitorError::last_os(format!("sigaction {sig}")));
            }
        }
        Ok(Self {
            read,
            _write: write,
        })
    }

    /// The fd to poll.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Drains the pipe; returns whether SIGTERM or SIGINT came.
    pub fn drain(&self) -> bool {
        let mut buf = [0u8; 64];
        let mut term = false;
        loop {
            // SAFETY: read into a buffer we own, of its length.
            let n = unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return term;
            }
            term |= buf[..n as usize]
                .iter()
                .any(|&s| i32::from(s) == libc::SIGTERM || i32::from(s) == libc::SIGINT);
        }
    }
}

/// In a forked child that does not exec: default dispositions back.
pub fn reset_in_child() {
    for sig in HANDLED {
        // SAFETY: signal(2) with SIG_DFL.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
}
