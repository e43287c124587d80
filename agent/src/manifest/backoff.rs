//! kubelet's crash-loop back-off for one container, as a pure state machine
//! over timestamps: the first restart is immediate; each later one waits
//! 10 s, doubling up to 5 min; a container that ran for longer than twice
//! the cap (10 min) since its last restart starts over as a first crash.

use std::time::{Duration, SystemTime};

/// The back-off's constants (kubelet's: 10 s, 300 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
        }
    }
}

impl BackoffPolicy {
    /// How long a container must have run since its last restart for its
    /// back-off to reset (twice the cap).
    pub fn reset_after(&self) -> Duration {
        self.max * 2
    }
}

/// One container's back-off state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashLoopBackoff {
    policy: BackoffPolicy,
    /// The wait before the next restart, once a first crash was seen.
    delay: Option<Duration>,
    /// When the container was last (re)started by this back-off.
    last_restart: Option<SystemTime>,
}

/// What to do after an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartDecision {
    /// Wait this long after the exit before the restart; non-zero is kubelet's
    /// CrashLoopBackOff state.
    pub delay: Duration,
    /// When to restart (`finished_at + delay`).
    pub restart_at: SystemTime,
}

impl CrashLoopBackoff {
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            delay: None,
            last_restart: None,
        }
    }

    /// Records that the container exited at `finished_at` and is to be
    /// restarted; returns when. Call once per restart.
    pub fn on_exit(&mut self, finished_at: SystemTime) -> RestartDecision {
        let expired = match self.last_restart {
            None => true,
            // A clock step backwards counts as no time having passed.
            Some(last) => finished_at
                .duration_since(last)
                .is_ok_and(|ran| ran > self.policy.reset_after()),
        };
        let delay = match (expired, self.delay) {
            (false, Some(d)) => d,
            _ => Duration::ZERO,
        };
        self.delay = Some(match (expired, self.delay) {
            (false, Some(d)) => (d * 2).min(self.policy.max),
            _ => self.policy.initial,
        });
        let restart_at = finished_at + delay;
        self.last_restart = Some(restart_at);
        RestartDecision { delay, restart_at }
    }

    /// Whether a restart at `now` must still wait for `decision` (the
    /// container is in CrashLoopBackOff).
    pub fn waiting(decision: &RestartDecision, now: SystemTime) -> bool {
        now < decision.restart_at
    }

    /// Forgets the history (the container's spec changed).
    pub fn reset(&mut self) {
        self.delay = None;
        self.last_restart = None;
    }
}

impl Default for CrashLoopBackoff {
    fn default() -> Self {
        Self::new(BackoffPolicy::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// A container that crashes `run` seconds after each start.
    fn delays(b: &mut CrashLoopBackoff, start: u64, run: u64, n: usize) -> (Vec<u64>, u64) {
        let mut t = start;
        let mut out = Vec::new();
        for _ in 0..n {
            t += run;
            let d = b.on_exit(at(t));
            out.push(d.delay.as_secs());
            t = d.restart_at.duration_since(UNIX_EPOCH).unwrap().as_secs();
        }
        (out, t)
    }

    #[test]
    fn doubles_from_ten_seconds_to_five_minutes() {
        let mut b = CrashLoopBackoff::default();
        let (d, _) = delays(&mut b, 1000, 1, 9);
        assert_eq!(d, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn resets_after_ten_minutes_of_running() {
        let mut b = CrashLoopBackoff::default();
        let (_, t) = delays(&mut b, 0, 1, 5);
        // Runs exactly 10 minutes: not yet stable, the back-off goes on.
        let d = b.on_exit(at(t + 600));
        assert_eq!(d.delay, Duration::from_secs(160));
        let t = d.restart_at.duration_since(UNIX_EPOCH).unwrap().as_secs();
        // Runs longer than 10 minutes: starts over.
        let (d, _) = delays(&mut b, t, 601, 3);
        assert_eq!(
            d,
            [0, 0, 0],
            "a container stable for 10 min always restarts at once"
        );
        let (d, _) = delays(&mut b, t + 10_000, 5, 3);
        assert_eq!(d, [0, 10, 20]);
    }

    #[test]
    fn waiting_and_reset() {
        let mut b = CrashLoopBackoff::default();
        b.on_exit(at(10));
        let d = b.on_exit(at(11));
        assert!(CrashLoopBackoff::waiting(&d, at(15)));
        assert!(!CrashLoopBackoff::waiting(&d, at(21)));
        b.reset();
        assert_eq!(b.on_exit(at(22)).delay, Duration::ZERO);
    }

    #[test]
    fn clock_going_backwards_does_not_reset() {
        let mut b = CrashLoopBackoff::default();
        b.on_exit(at(1000));
        assert_eq!(b.on_exit(at(500)).delay, Duration::from_secs(10));
    }

    #[test]
    fn custom_policy() {
        let mut b = CrashLoopBackoff::new(BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(3),
        });
        let (d, _) = delays(&mut b, 0, 1, 5);
        assert_eq!(d, [0, 1, 2, 3, 3]);
        assert_eq!(b.policy.reset_after(), Duration::from_secs(6));
    }
}
