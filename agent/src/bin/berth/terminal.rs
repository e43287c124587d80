//! The local terminal of `berth exec -t` and `berth attach`: raw mode held
//! by a guard that puts the saved settings back when it drops, on a panic
//! (a hook, since release builds abort) and so on every way out; the window
//! size, and a channel of sizes (the current one, then one per SIGWINCH).

use std::io::IsTerminal;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::{Mutex, Once};

use anyhow::Context;
use berth_agent::streaming::client::TerminalSize;
use nix::sys::termios::{self, SetArg, Termios};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// The settings to put back on the terminal, while raw mode is on.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

fn saved() -> std::sync::MutexGuard<'static, Option<Termios>> {
    SAVED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Puts the saved settings back on stdin's terminal, once.
fn restore() {
    if let Some(t) = saved().take() {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &t);
    }
}

/// Raw mode on stdin's terminal until dropped.
pub struct RawMode(());

impl RawMode {
    /// Switches stdin's terminal to raw mode.
    pub fn enter() -> anyhow::Result<RawMode> {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
            }));
        });
        let stdin = std::io::stdin();
        let original = termios::tcgetattr(stdin.as_fd()).context("read the terminal's settings")?;
        let mut raw = original.clone();
        termios::cfmakeraw(&mut raw);
        *saved() = Some(original);
        let guard = RawMode(());
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSADRAIN, &raw)
            .context("put the terminal in raw mode")?;
        Ok(guard)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, libc::winsize);

/// The window size of the terminal on `fd`.
pub fn size(fd: BorrowedFd<'_>) -> Option<TerminalSize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`, which outlives the
    // call; `fd` is a live descriptor borrowed for it.
    unsafe { get_winsize(fd.as_raw_fd(), &mut ws) }.ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then_some(TerminalSize {
        width: ws.ws_col,
        height: ws.ws_row,
    })
}

/// Whether stdin is a terminal.
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The sizes of the local terminal (stdin's, else stdout's): the current
/// one, then the new one after each SIGWINCH, until the receiver is dropped.
pub fn sizes() -> anyhow::Result<mpsc::Receiver<TerminalSize>> {
    let mut winch =
        signal(SignalKind::window_change()).context("listen for terminal resizes (SIGWINCH)")?;
    let (tx, rx) = mpsc::channel(4);
    let current = || {
        let stdin = std::io::stdin();
        let stdout = std::io::stdout();
        size(stdin.as_fd()).or_else(|| size(stdout.as_fd()))
    };
    tokio::spawn(async move {
        let mut last = None;
        loop {
            if let Some(s) = current().filter(|s| last != Some(*s)) {
                last = Some(s);
                if tx.send(s).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                got = winch.recv() => if got.is_none() { return },
                () = tx.closed() => return,
            }
        }
    });
    Ok(rx)
}
