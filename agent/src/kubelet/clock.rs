//! The kubelet's clock: wall-clock time for timestamps and back-off
//! decisions, behind a trait so the pure logic and its tests never sleep.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug)]
pub struct FakeClock(Mutex<SystemTime>);

impl FakeClock {
    pub fn at(t: SystemTime) -> Self {
        Self(Mutex::new(t))
    }

    pub fn advance(&self, d: Duration) {
        if let Ok(mut t) = self.0.lock() {
            *t += d;
        }
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        self.0.lock().map(|t| *t).unwrap_or(UNIX_EPOCH)
    }
}

/// Nanoseconds since the epoch (CRI's timestamps), 0 before it.
pub fn nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The time of a CRI timestamp (nanoseconds since the epoch).
pub fn from_nanos(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_when_told() {
        let c = FakeClock::at(UNIX_EPOCH + Duration::from_secs(5));
        assert_eq!(nanos(c.now()), 5_000_000_000);
        c.advance(Duration::from_secs(2));
        assert_eq!(c.now(), from_nanos(7_000_000_000));
        assert_eq!(from_nanos(-1), UNIX_EPOCH);
    }
}
