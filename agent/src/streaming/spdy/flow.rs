//! SPDY/3.1 flow-control accounting, as pure state: a send window that DATA
//! spends and WINDOW_UPDATE refills (and that SETTINGS_INITIAL_WINDOW_SIZE
//! shifts, possibly below zero), and a receive window that checks the peer
//! stays within what it was granted and says when to grant more.
//!
//! Both exist per stream and once for the session (stream id 0). Windows start
//! at 64 KiB; a receiver grants more once half of its window has been used.

/// The initial window of every stream and of the session (64 KiB).
pub const DEFAULT_INITIAL_WINDOW: u32 = 64 * 1024;
/// The largest window the protocol allows.
pub const MAX_WINDOW: i64 = 0x7fff_ffff;

/// A flow-control violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// a WINDOW_UPDATE would push the window past 2^31 - 1
    #[error("window update of {delta} overflows a window of {window}")]
    Overflow { window: i64, delta: u32 },
    /// the peer sent more than its window allowed
    #[error("peer sent {len} bytes with {available} left in the window")]
    Exceeded { len: usize, available: i64 },
}

/// What this side may still send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWindow {
    available: i64,
}

impl SendWindow {
    /// A window of `initial` bytes.
    pub fn new(initial: u32) -> Self {
        Self {
            available: i64::from(initial),
        }
    }

    /// The bytes that may be sent now (may be negative after a SETTINGS
    /// change shrank the window).
    pub fn available(&self) -> i64 {
        self.available
    }

    /// Spends up to `want` bytes and returns how many may be sent.
    pub fn take(&mut self, want: usize) -> usize {
        let n = usize::try_from(self.available.max(0))
            .unwrap_or(usize::MAX)
            .min(want);
        self.available -= n as i64;
        n
    }

    /// Applies a WINDOW_UPDATE.
    pub fn grant(&mut self, delta: u32) -> Result<(), FlowError> {
        let next = self.available + i64::from(delta);
        if next > MAX_WINDOW {
            return Err(FlowError::Overflow {
                window: self.available,
                delta,
            });
        }
        self.available = next;
        Ok(())
    }

    /// Applies a change of SETTINGS_INITIAL_WINDOW_SIZE from `old` to `new`.
    pub fn rebase(&mut self, old: u32, new: u32) {
        self.available += i64::from(new) - i64::from(old);
    }
}

/// What the peer may still send, and the grants owed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvWindow {
    size: u32,
    available: i64,
    unacked: u32,
}

impl RecvWindow {
    /// A window of `size` bytes.
    pub fn new(size: u32) -> Self {
        Self {
            size,
            available: i64::from(size),
            unacked: 0,
        }
    }

    /// The bytes the peer may still send.
    pub fn available(&self) -> i64 {
        self.available
    }

    /// Accounts for `len` bytes of DATA received.
    pub fn receive(&mut self, len: usize) -> Result<(), FlowError> {
        let len64 = i64::try_from(len).unwrap_or(i64::MAX);
        if len64 > self.available {
            return Err(FlowError::Exceeded {
                len,
                available: self.available,
            });
        }
        self.available -= len64;
        Ok(())
    }

    /// Accounts for `len` received bytes being consumed; returns the delta of
    /// a WINDOW_UPDATE to send once half of the window is owed.
    pub fn consume(&mut self, len: usize) -> Option<u32> {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.unacked = self.unacked.saturating_add(len);
        if self.unacked >= self.size / 2 && self.unacked > 0 {
            let delta = self.unacked;
            self.unacked = 0;
            self.available += i64::from(delta);
            Some(delta)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_window_spends_and_refills() {
        let mut w = SendWindow::new(DEFAULT_INITIAL_WINDOW);
        assert_eq!(w.take(40_000), 40_000);
        assert_eq!(w.take(40_000), 25_536);
        assert_eq!(w.take(1), 0);
        w.grant(100).unwrap();
        assert_eq!(w.take(1000), 100);
        assert_eq!(w.available(), 0);
    }

    #[test]
    fn send_window_overflow_is_an_error() {
        let mut w = SendWindow::new(DEFAULT_INITIAL_WINDOW);
        w.grant(0x7ffe_0000).unwrap();
        w.grant(0xffff).unwrap();
        assert_eq!(w.available(), MAX_WINDOW);
        assert_eq!(
            w.grant(1),
            Err(FlowError::Overflow {
                window: MAX_WINDOW,
                delta: 1
            })
        );
    }

    #[test]
    fn initial_window_change_can_go_negative() {
        let mut w = SendWindow::new(DEFAULT_INITIAL_WINDOW);
        assert_eq!(w.take(60_000), 60_000);
        w.rebase(DEFAULT_INITIAL_WINDOW, 1000);
        assert_eq!(w.available(), 1000 - 60_000);
        assert_eq!(w.take(10), 0);
        w.grant(60_000).unwrap();
        assert_eq!(w.take(5000), 1000);
        w.rebase(1000, 1 << 20);
        assert_eq!(w.available(), (1 << 20) - 1000);
    }

    #[test]
    fn recv_window_enforces_and_grants_at_half() {
        let mut w = RecvWindow::new(DEFAULT_INITIAL_WINDOW);
        w.receive(65_536).unwrap();
        assert_eq!(
            w.receive(1),
            Err(FlowError::Exceeded {
                len: 1,
                available: 0
            })
        );
        assert_eq!(w.consume(30_000), None);
        assert_eq!(w.consume(2_768), Some(32_768));
        assert_eq!(w.available(), 32_768);
        w.receive(32_768).unwrap();
        assert!(w.receive(1).is_err());
        assert_eq!(w.consume(65_536), Some(65_536));
        assert_eq!(w.available(), 65_536);
    }
}
