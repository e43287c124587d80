//! Waiting for a container process in the foreground (`run`, `exec` without
//! `-d`): signals are forwarded to it, its pty (when it has one and no console
//! socket took it) is wired to our stdio, and its exit status becomes ours.

use std::os::fd::{AsRawFd, OwnedFd};

use anyhow::{Context, Result};
use nix::sys::{
    signal::{SigSet, Signal},
    signalfd::{SfdFlags, SignalFd},
};

const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Waits for our child `pid`; returns its exit code (128+N for signal N).
pub fn wait(pid: i32, pty: Option<OwnedFd>) -> Result<i32> {
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(s);
    }
    mask.add(Signal::SIGCHLD);
    mask.thread_block().context("block signals")?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    let _raw = pty.as_ref().and_then(|_| RawMode::enter());
    if let Some(m) = &pty {
        copy_winsize(m.as_raw_fd());
    }
    let mut stdin_open = pty.is_some();
    let mut master_open = pty.is_some();
    loop {
        if let Some(code) = reap(pid)? {
            if let (Some(m), true) = (&pty, master_open) {
                drain(m.as_raw_fd());
            }
            return Ok(code);
        }
        let mut fds = vec![libc::pollfd {
            fd: sfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(m) = &pty {
            if master_open {
                fds.push(libc::pollfd {
                    fd: m.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            if stdin_open {
                fds.push(libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        // SAFETY: poll on pollfds we own.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue;
        }
        for p in &fds {
            if p.revents == 0 {
                continue;
            }
            if p.fd == sfd.as_raw_fd() {
                while let Ok(Some(info)) = sfd.read_signal() {
                    let sig = info.ssi_signo as i32;
                    if sig == libc::SIGWINCH {
                        if let Some(m) = &pty {
                            copy_winsize(m.as_raw_fd());
                        }
                    } else if sig != libc::SIGCHLD {
                        // SAFETY: kill(2) with a pid and a signal.
                        unsafe { libc::kill(pid, sig) };
                    }
                }
            } else if p.fd == 0 {
                if let Some(m) = &pty {
                    stdin_open = copy(0, m.as_raw_fd());
                }
            } else if let Some(m) = &pty {
                master_open = copy(m.as_raw_fd(), 1);
            }
        }
    }
}

fn reap(pid: i32) -> Result<Option<i32>> {
    let mut status = 0;
    // SAFETY: waitpid writes the status into our int.
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("waitpid");
    }
    if r == 0 {
        return Ok(None);
    }
    Ok(Some(if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }))
}

/// Copies one chunk; false at EOF or error.
fn copy(from: i32, to: i32) -> bool {
    let mut buf = [0u8; 8192];
    // SAFETY: read into a buffer we own.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return false;
    }
    let mut off = 0;
    while off < n as usize {
        // SAFETY: write from a buffer we own.
        let w = unsafe { libc::write(to, buf[off..].as_ptr().cast(), n as usize - off) };
        if w <= 0 {
            return false;
        }
        off += w as usize;
    }
    true
}

fn drain(master: i32) {
    // SAFETY: fcntl flag change on an fd we own.
    unsafe {
        let fl = libc::fcntl(master, libc::F_GETFL);
        libc::fcntl(master, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    while copy(master, 1) {}
}

fn copy_winsize(master: i32) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills the winsize we pass; TIOCSWINSZ reads it.
    unsafe {
        if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(master, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Our terminal in raw mode while a pty is proxied; restored on drop.
struct RawMode(libc::termios);

impl RawMode {
    fn enter() -> Option<Self> {
        // SAFETY: termios calls on fd 0 with structs we own.
        unsafe {
            if libc::isatty(0) != 1 {
                return None;
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return None;
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(0, libc::TCSANOW, &t);
            Some(Self(saved))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the termios we saved.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.0) };
    }
}
