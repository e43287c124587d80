//! Pod and container restart policy (`spec.restartPolicy`, an init
//! container's `restartPolicy: Always`), and the reason kubelet gives a
//! terminated container.

/// `spec.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// The API's spelling.
    pub const NAMES: [&'static str; 3] = ["Always", "OnFailure", "Never"];

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "" | "Always" => Some(Self::Always),
            "OnFailure" => Some(Self::OnFailure),
            "Never" => Some(Self::Never),
            _ => None,
        }
    }

    /// Whether an app container that exited with `exit_code` is restarted.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            Self::Always => true,
            Self::OnFailure => exit_code != 0,
            Self::Never => false,
        }
    }

    /// The policy a (non-sidecar) init container follows: kubelet restarts a
    /// failed init container unless the pod's policy is Never, and never
    /// restarts one that succeeded.
    pub fn for_init_container(self) -> Self {
        match self {
            Self::Never => Self::Never,
            _ => Self::OnFailure,
        }
    }
}

/// What a container is to the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    /// An init container: runs to completion, in order, before the others.
    Init,
    /// An init container with `restartPolicy: Always` (a sidecar): started in
    /// init order, not waited for, restarted whenever it exits, stopped after
    /// the app containers.
    Sidecar,
    /// A regular container.
    App,
}

impl ContainerKind {
    /// The restart policy this container follows in a pod with `pod`.
    pub fn restart_policy(self, pod: RestartPolicy) -> RestartPolicy {
        match self {
            Self::Init => pod.for_init_container(),
            Self::Sidecar => RestartPolicy::Always,
            Self::App => pod,
        }
    }
}

/// kubelet's `reason` for a terminated container.
pub fn termination_reason(exit_code: i32, oom_killed: bool) -> &'static str {
    if oom_killed {
        "OOMKilled"
    } else if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        assert_eq!(RestartPolicy::parse(""), Some(RestartPolicy::Always));
        assert_eq!(RestartPolicy::parse("always"), None);
        assert!(RestartPolicy::Always.restarts(0));
        assert!(RestartPolicy::OnFailure.restarts(1));
        assert!(!RestartPolicy::OnFailure.restarts(0));
        assert!(!RestartPolicy::Never.restarts(137));
    }

    #[test]
    fn init_and_sidecar_policies() {
        use ContainerKind::*;
        assert_eq!(
            Init.restart_policy(RestartPolicy::Always),
            RestartPolicy::OnFailure
        );
        assert_eq!(
            Init.restart_policy(RestartPolicy::Never),
            RestartPolicy::Never
        );
        assert_eq!(
            Sidecar.restart_policy(RestartPolicy::Never),
            RestartPolicy::Always
        );
        assert_eq!(
            App.restart_policy(RestartPolicy::OnFailure),
            RestartPolicy::OnFailure
        );
    }

    #[test]
    fn reasons() {
        assert_eq!(termination_reason(0, false), "Completed");
        assert_eq!(termination_reason(2, false), "Error");
        assert_eq!(termination_reason(137, true), "OOMKilled");
    }
}
