//! The pod-level summary of its containers, as pure logic: the phase
//! (kubelet's `getPhase`), the Initialized / ContainersReady / Ready
//! conditions, and the STATUS column `kubectl get pods` prints.

use crate::manifest::{ContainerKind, RestartPolicy};

use super::status::{ContainerView, State};

/// The pod's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
        }
    }
}

/// An init container's view with its kind.
#[derive(Debug, Clone, Copy)]
pub struct InitView<'a> {
    pub view: &'a ContainerView,
    pub kind: ContainerKind,
}

/// Whether the init containers are done: each plain one completed, each
/// sidecar started.
pub fn initialized(init: &[InitView<'_>]) -> bool {
    init.iter().all(|c| match c.kind {
        ContainerKind::Sidecar => c.view.started,
        _ => matches!(&c.view.state, State::Terminated(t) if t.exit_code == 0),
    })
}

/// Whether every app container is ready.
pub fn containers_ready(apps: &[ContainerView]) -> bool {
    apps.iter().all(|c| c.ready)
}

/// kubelet's pod phase; `init_failed` is an init container that failed and
/// will not be restarted (policy Never).
pub fn phase(
    init: &[InitView<'_>],
    apps: &[ContainerView],
    policy: RestartPolicy,
    init_failed: bool,
) -> Phase {
    if init_failed {
        return Phase::Failed;
    }
    if !initialized(init) {
        return Phase::Pending;
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in apps {
        match &c.state {
            State::Running { .. } => running += 1,
            State::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            State::Waiting { .. } if c.last_state.is_some() => stopped += 1,
            State::Waiting { .. } => waiting += 1,
        }
    }
    if waiting > 0 {
        return Phase::Pending;
    }
    if running > 0 {
        return Phase::Running;
    }
    if stopped == 0 {
        return Phase::Pending;
    }
    match policy {
        RestartPolicy::Always => Phase::Running,
        RestartPolicy::OnFailure if stopped == succeeded => Phase::Succeeded,
        RestartPolicy::OnFailure => Phase::Running,
        RestartPolicy::Never if stopped == succeeded => Phase::Succeeded,
        RestartPolicy::Never => Phase::Failed,
    }
}

/// The STATUS column of `kubectl get pods`.
pub fn display_status(
    init: &[InitView<'_>],
    apps: &[ContainerView],
    phase: Phase,
    terminating: bool,
) -> String {
    if terminating {
        return "Terminating".into();
    }
    let mut reason = phase.as_str().to_string();
    let mut initializing = false;
    for (i, c) in init.iter().enumerate() {
        let v = c.view;
        match &v.state {
            State::Terminated(t) if t.exit_code == 0 => continue,
            State::Running { .. } if c.kind == ContainerKind::Sidecar && v.started => continue,
            State::Terminated(t) => {
                reason = if t.reason.is_empty() {
                    format!("Init:ExitCode:{}", t.exit_code)
                } else {
                    format!("Init:{}", t.reason)
                };
            }
            State::Waiting { reason: r, .. } if !r.is_empty() && r != "PodInitializing" => {
                reason = format!("Init:{r}");
            }
            _ => reason = format!("Init:{i}/{}", init.len()),
        }
        initializing = true;
        break;
    }
    if initializing {
        return reason;
    }
    let mut has_running = false;
    for c in apps.iter().rev() {
        match &c.state {
            State::Waiting { reason: r, .. } if !r.is_empty() => reason = r.clone(),
            State::Terminated(t) if !t.reason.is_empty() => reason = t.reason.clone(),
            State::Terminated(t) => reason = format!("ExitCode:{}", t.exit_code),
            State::Running { .. } if c.ready => has_running = true,
            State::Running { .. } => has_running = true,
            State::Waiting { .. } => {}
        }
    }
    if reason == "Completed" && has_running {
        reason = if containers_ready(apps) {
            "Running".into()
        } else {
            "NotReady".into()
        };
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::status::Terminated;

    fn view(state: State, ready: bool) -> ContainerView {
        ContainerView {
            name: "c".into(),
            started: matches!(state, State::Running { .. }),
            state,
            ready,
            ..Default::default()
        }
    }

    fn running() -> State {
        State::Running { started_at: 1 }
    }

    fn exited(code: i32) -> State {
        State::Terminated(Terminated {
            exit_code: code,
            reason: crate::manifest::restart::termination_reason(code, false).into(),
            ..Default::default()
        })
    }

    fn waiting(r: &str) -> State {
        State::Waiting {
            reason: r.into(),
            message: String::new(),
        }
    }

    #[test]
    fn phases_by_policy() {
        use RestartPolicy::*;
        let ok = [view(exited(0), false)];
        let bad = [view(exited(1), false)];
        assert_eq!(phase(&[], &ok, Never, false), Phase::Succeeded);
        assert_eq!(phase(&[], &ok, OnFailure, false), Phase::Succeeded);
        assert_eq!(phase(&[], &ok, Always, false), Phase::Running);
        assert_eq!(phase(&[], &bad, Never, false), Phase::Failed);
        assert_eq!(phase(&[], &bad, OnFailure, false), Phase::Running);
        assert_eq!(
            phase(&[], &[view(running(), true)], Never, false),
            Phase::Running
        );
        assert_eq!(
            phase(
                &[],
                &[view(waiting("ContainerCreating"), false)],
                Never,
                false
            ),
            Phase::Pending
        );
        let mut crash = view(waiting("CrashLoopBackOff"), false);
        crash.last_state = Some(Terminated::default());
        assert_eq!(phase(&[], &[crash], Always, false), Phase::Running);
        assert_eq!(phase(&[], &ok, Never, true), Phase::Failed);
    }

    #[test]
    fn init_gates_the_pod() {
        let i0 = view(exited(0), false);
        let i1 = view(running(), false);
        let init = [
            InitView {
                view: &i0,
                kind: ContainerKind::Init,
            },
            InitView {
                view: &i1,
                kind: ContainerKind::Init,
            },
        ];
        let apps = [view(waiting("PodInitializing"), false)];
        assert!(!initialized(&init));
        assert_eq!(
            phase(&init, &apps, RestartPolicy::Always, false),
            Phase::Pending
        );
        assert_eq!(
            display_status(&init, &apps, Phase::Pending, false),
            "Init:1/2"
        );
        let crash = view(waiting("CrashLoopBackOff"), false);
        let init = [InitView {
            view: &crash,
            kind: ContainerKind::Init,
        }];
        assert_eq!(
            display_status(&init, &apps, Phase::Pending, false),
            "Init:CrashLoopBackOff"
        );
        let side = view(running(), false);
        let init = [InitView {
            view: &side,
            kind: ContainerKind::Sidecar,
        }];
        assert!(initialized(&init));
    }

    #[test]
    fn kubectl_status_column() {
        let apps = [view(running(), true)];
        assert_eq!(display_status(&[], &apps, Phase::Running, false), "Running");
        assert_eq!(
            display_status(&[], &apps, Phase::Running, true),
            "Terminating"
        );
        let apps = [view(exited(0), false)];
        assert_eq!(
            display_status(&[], &apps, Phase::Succeeded, false),
            "Completed"
        );
        let apps = [view(waiting("CrashLoopBackOff"), false)];
        assert_eq!(
            display_status(&[], &apps, Phase::Running, false),
            "CrashLoopBackOff"
        );
        // A completed container is not ready: the pod is not either.
        let apps = [view(exited(0), false), view(running(), true)];
        assert_eq!(
            display_status(&[], &apps, Phase::Running, false),
            "NotReady"
        );
        assert!(!containers_ready(&[view(running(), false)]));
    }
}
