//! One probe's result as kubelet keeps it, as pure logic: the initial
//! result per kind (readiness Failure, liveness Success, startup Unknown),
//! runs skipped until `initialDelaySeconds` after the container started,
//! and a result that changes only after `successThreshold` or
//! `failureThreshold` runs in a row agree. A liveness or startup probe
//! that reaches Failure is put on hold (no more runs: the container is
//! killed and its successor gets fresh probes); a startup probe stops
//! after its first Success.

use std::time::{Duration, SystemTime};

use crate::manifest::probes::{Probe, ProbeKind};

use super::status::ProbeView;

/// A probe's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Unknown,
    Success,
    Failure,
}

impl ProbeResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "Unknown",
            Self::Success => "Success",
            Self::Failure => "Failure",
        }
    }
}

/// The name of a probe kind in status files.
pub fn kind_name(kind: ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Liveness => "liveness",
        ProbeKind::Readiness => "readiness",
        ProbeKind::Startup => "startup",
    }
}

/// One probe of one container instance.
#[derive(Debug, Clone)]
pub struct ProbeState {
    pub kind: ProbeKind,
    initial_delay: Duration,
    success_threshold: u32,
    failure_threshold: u32,
    result: ProbeResult,
    last_raw: Option<bool>,
    run: u32,
    on_hold: bool,
    done: bool,
    last_at: Option<SystemTime>,
    message: String,
    successes: u64,
    failures: u64,
}

impl ProbeState {
    pub fn new(kind: ProbeKind, probe: &Probe) -> Self {
        Self {
            kind,
            initial_delay: probe.initial_delay,
            success_threshold: probe.success_threshold.max(1),
            failure_threshold: probe.failure_threshold.max(1),
            result: match kind {
                ProbeKind::Readiness => ProbeResult::Failure,
                ProbeKind::Liveness => ProbeResult::Success,
                ProbeKind::Startup => ProbeResult::Unknown,
            },
            last_raw: None,
            run: 0,
            on_hold: false,
            done: false,
            last_at: None,
            message: String::new(),
            successes: 0,
            failures: 0,
        }
    }

    /// The result after thresholds.
    pub fn result(&self) -> ProbeResult {
        self.result
    }

    /// Whether a run is due at a tick at `now` for a container that started
    /// at `started_at` (`gated`: a startup probe has not succeeded yet, so
    /// liveness and readiness wait).
    pub fn should_run(&self, now: SystemTime, started_at: SystemTime, gated: bool) -> bool {
        if self.on_hold || self.done || (gated && self.kind != ProbeKind::Startup) {
            return false;
        }
        // kubelet compares whole seconds since the start.
        let ran = now.duration_since(started_at).unwrap_or_default().as_secs();
        ran >= self.initial_delay.as_secs()
    }

    /// Applies one run's outcome; returns the new result when it changed.
    pub fn observe(&mut self, ok: bool, message: String, at: SystemTime) -> Option<ProbeResult> {
        self.last_at = Some(at);
        self.message = message;
        if ok {
            self.successes += 1;
        } else {
            self.failures += 1;
        }
        if self.last_raw == Some(ok) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last_raw = Some(ok);
            self.run = 1;
        }
        if (!ok && self.run < self.failure_threshold) || (ok && self.run < self.success_threshold) {
            return None;
        }
        let new = if ok {
            ProbeResult::Success
        } else {
            ProbeResult::Failure
        };
        if !ok && self.kind != ProbeKind::Readiness {
            self.on_hold = true;
            self.run = 0;
        }
        if ok && self.kind == ProbeKind::Startup {
            self.done = true;
        }
        let changed = new != self.result;
        self.result = new;
        changed.then_some(new)
    }

    /// The status file's view.
    pub fn view(&self) -> ProbeView {
        ProbeView {
            kind: kind_name(self.kind).into(),
            result: self.result.as_str().into(),
            last_ok: self.last_raw,
            consecutive: self.run,
            last_probe_at: self.last_at.map(super::clock::nanos),
            message: self.message.clone(),
            successes: self.successes,
            failures: self.failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::probes::ProbeAction;
    use std::time::UNIX_EPOCH;

    fn probe(success: u32, failure: u32, delay: u64) -> Probe {
        Probe {
            action: ProbeAction::TcpSocket {
                host: None,
                port: 1,
            },
            initial_delay: Duration::from_secs(delay),
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
            termination_grace_period: None,
        }
    }

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn initial_results_by_kind() {
        let p = probe(1, 3, 0);
        assert_eq!(
            ProbeState::new(ProbeKind::Readiness, &p).result(),
            ProbeResult::Failure
        );
        assert_eq!(
            ProbeState::new(ProbeKind::Liveness, &p).result(),
            ProbeResult::Success
        );
        assert_eq!(
            ProbeState::new(ProbeKind::Startup, &p).result(),
            ProbeResult::Unknown
        );
    }

    #[test]
    fn readiness_flips_after_thresholds() {
        let mut s = ProbeState::new(ProbeKind::Readiness, &probe(2, 2, 0));
        assert_eq!(s.observe(true, String::new(), at(1)), None);
        assert_eq!(
            s.observe(true, String::new(), at(2)),
            Some(ProbeResult::Success)
        );
        assert_eq!(s.observe(true, String::new(), at(3)), None, "no change");
        assert_eq!(s.observe(false, "refused".into(), at(4)), None);
        assert_eq!(s.observe(true, String::new(), at(5)), None, "run broken");
        assert_eq!(s.observe(false, String::new(), at(6)), None);
        assert_eq!(
            s.observe(false, String::new(), at(7)),
            Some(ProbeResult::Failure)
        );
        // Readiness never goes on hold.
        assert!(s.should_run(at(8), at(0), false));
        let v = s.view();
        assert_eq!((v.successes, v.failures, v.consecutive), (4, 3, 2));
    }

    #[test]
    fn liveness_failure_holds_the_probe() {
        let mut s = ProbeState::new(ProbeKind::Liveness, &probe(1, 3, 0));
        assert_eq!(s.observe(false, String::new(), at(1)), None);
        assert_eq!(s.observe(false, String::new(), at(2)), None);
        assert_eq!(
            s.observe(false, String::new(), at(3)),
            Some(ProbeResult::Failure)
        );
        assert!(!s.should_run(at(4), at(0), false));
    }

    #[test]
    fn initial_delay_and_startup_gating() {
        let mut startup = ProbeState::new(ProbeKind::Startup, &probe(1, 3, 2));
        let live = ProbeState::new(ProbeKind::Liveness, &probe(1, 3, 0));
        assert!(!startup.should_run(at(11), at(10), false), "1 s < delay 2");
        assert!(startup.should_run(at(12), at(10), false));
        assert!(!live.should_run(at(12), at(10), true), "gated by startup");
        assert!(live.should_run(at(12), at(10), false));
        assert_eq!(
            startup.observe(true, String::new(), at(12)),
            Some(ProbeResult::Success)
        );
        assert!(
            !startup.should_run(at(13), at(10), false),
            "startup is done"
        );
    }
}
