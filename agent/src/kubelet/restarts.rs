//! What follows a container's exit, as pure logic over timestamps: an init
//! container that succeeded is done; otherwise the container's restart
//! policy decides, and a restart waits for the crash-loop back-off (whose
//! non-zero waits are kubelet's CrashLoopBackOff state).

use std::time::SystemTime;

use crate::manifest::backoff::{CrashLoopBackoff, RestartDecision};
use crate::manifest::{ContainerKind, RestartPolicy};

/// The outcome of an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterExit {
    /// Start it again at `decision.restart_at`.
    Restart(RestartDecision),
    /// An init container that completed: go on to the next.
    Done,
    /// Leave it terminated.
    Stay,
}

/// Decides after `kind` (following `policy`) exited with `exit_code` at
/// `finished_at`; a restart consumes a back-off step.
pub fn after_exit(
    kind: ContainerKind,
    policy: RestartPolicy,
    exit_code: i32,
    backoff: &mut CrashLoopBackoff,
    finished_at: SystemTime,
) -> AfterExit {
    if kind == ContainerKind::Init && exit_code == 0 {
        return AfterExit::Done;
    }
    if policy.restarts(exit_code) {
        AfterExit::Restart(backoff.on_exit(finished_at))
    } else {
        AfterExit::Stay
    }
}

/// The Waiting state of a container whose restart is planned by
/// `decision`, at `now`: CrashLoopBackOff while the back-off lasts.
pub fn crash_loop_message(
    decision: &RestartDecision,
    now: SystemTime,
    container: &str,
    pod: &str,
) -> Option<String> {
    (decision.delay > std::time::Duration::ZERO && CrashLoopBackoff::waiting(decision, now)).then(
        || {
            format!(
                "back-off {}s restarting failed container={container} pod={pod}",
                decision.delay.as_secs()
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn init_containers() {
        let mut b = CrashLoopBackoff::default();
        let p = ContainerKind::Init.restart_policy(RestartPolicy::Always);
        assert_eq!(
            after_exit(ContainerKind::Init, p, 0, &mut b, at(1)),
            AfterExit::Done
        );
        assert!(matches!(
            after_exit(ContainerKind::Init, p, 1, &mut b, at(1)),
            AfterExit::Restart(_)
        ));
        let never = ContainerKind::Init.restart_policy(RestartPolicy::Never);
        assert_eq!(
            after_exit(ContainerKind::Init, never, 1, &mut b, at(1)),
            AfterExit::Stay
        );
    }

    #[test]
    fn app_policies_and_back_off() {
        let mut b = CrashLoopBackoff::default();
        let first = after_exit(ContainerKind::App, RestartPolicy::Always, 0, &mut b, at(10));
        let AfterExit::Restart(d) = first else {
            panic!("{first:?}")
        };
        assert_eq!(d.delay, Duration::ZERO, "the first restart is at once");
        assert_eq!(crash_loop_message(&d, at(10), "c", "p"), None);
        let second = after_exit(ContainerKind::App, RestartPolicy::Always, 1, &mut b, at(12));
        let AfterExit::Restart(d) = second else {
            panic!("{second:?}")
        };
        assert_eq!(d.delay, Duration::from_secs(10));
        assert_eq!(
            crash_loop_message(&d, at(15), "c", "p").as_deref(),
            Some("back-off 10s restarting failed container=c pod=p")
        );
        assert_eq!(crash_loop_message(&d, at(22), "c", "p"), None);
        assert_eq!(
            after_exit(
                ContainerKind::App,
                RestartPolicy::OnFailure,
                0,
                &mut b,
                at(30)
            ),
            AfterExit::Stay
        );
        assert_eq!(
            after_exit(ContainerKind::App, RestartPolicy::Never, 2, &mut b, at(30)),
            AfterExit::Stay
        );
        assert!(matches!(
            after_exit(
                ContainerKind::Sidecar,
                RestartPolicy::Always,
                0,
                &mut b,
                at(30)
            ),
            AfterExit::Restart(_)
        ));
    }
}
