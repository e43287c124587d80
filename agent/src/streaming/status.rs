//! The remote-command status message written on the error stream when a
//! command ends. From v4.channel.k8s.io on it is a JSON `metav1.Status`, as
//! kubelet marshals it: `{"metadata":{},"status":"Success"}`, or a Failure
//! with reason `NonZeroExitCode` and the code in
//! `details.causes[{reason: "ExitCode", message: "<code>"}]`, or a Failure
//! with reason `InternalError` for errors. Older versions carry only the
//! error text, and nothing on success.

use serde::{Deserialize, Serialize};

use super::protocol::RemoteCommandVersion;

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// The process exited with this code.
    Exited(i32),
    /// The command could not be run, or failed otherwise.
    Failed(String),
}

/// `metav1.Status`, with the fields kubelet fills (empty ones are omitted,
/// `metadata` is always present).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub metadata: Empty,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Details>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code: u16,
}

/// The empty `metadata` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `metav1.StatusDetails`, causes only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<Cause>,
}

/// `metav1.StatusCause` (its `type` is serialised as `reason`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

fn is_zero(v: &u16) -> bool {
    *v == 0
}

/// `Status.status` for success.
pub const STATUS_SUCCESS: &str = "Success";
/// `Status.status` for failure.
pub const STATUS_FAILURE: &str = "Failure";
/// The reason for a non-zero exit.
pub const REASON_NON_ZERO_EXIT: &str = "NonZeroExitCode";
/// The cause type carrying the exit code.
pub const CAUSE_EXIT_CODE: &str = "ExitCode";
/// The reason for other failures.
pub const REASON_INTERNAL_ERROR: &str = "InternalError";

impl Status {
    /// The status kubelet reports for `outcome`.
    pub fn for_outcome(outcome: &CommandOutcome) -> Self {
        match outcome {
            CommandOutcome::Exited(0) => Status {
                status: STATUS_SUCCESS.into(),
                ..Status::default()
            },
            CommandOutcome::Exited(code) => Status {
                status: STATUS_FAILURE.into(),
                message: format!("command terminated with non-zero exit code: exit status {code}"),
                reason: REASON_NON_ZERO_EXIT.into(),
                details: Some(Details {
                    causes: vec![Cause {
                        reason: CAUSE_EXIT_CODE.into(),
                        message: code.to_string(),
                    }],
                }),
                ..Status::default()
            },
            CommandOutcome::Failed(err) => Status {
                status: STATUS_FAILURE.into(),
                message: format!("Internal error occurred: {err}"),
                reason: REASON_INTERNAL_ERROR.into(),
                details: Some(Details {
                    causes: vec![Cause {
                        reason: String::new(),
                        message: err.clone(),
                    }],
                }),
                code: 500,
                ..Status::default()
            },
        }
    }

    /// The exit code a client reads from this status: 0 for success, the
    /// ExitCode cause for a non-zero exit, `None` for other failures.
    pub fn exit_code(&self) -> Option<i32> {
        if self.status == STATUS_SUCCESS {
            return Some(0);
        }
        if self.reason != REASON_NON_ZERO_EXIT {
            return None;
        }
        self.details
            .as_ref()?
            .causes
            .iter()
            .find(|c| c.reason == CAUSE_EXIT_CODE)
            .and_then(|c| c.message.parse().ok())
    }
}

/// The bytes to write on the error stream for `outcome` under `version`,
/// or `None` when nothing is written (success before v4).
pub fn error_stream_message(
    version: RemoteCommandVersion,
    outcome: &CommandOutcome,
) -> Option<Vec<u8>> {
    let status = Status::for_outcome(outcome);
    if version.json_status() {
        // A struct of strings and numbers always serialises.
        serde_json::to_vec(&status).ok()
    } else if status.status == STATUS_SUCCESS {
        None
    } else {
        Some(status.message.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(outcome: CommandOutcome) -> String {
        let bytes = error_stream_message(RemoteCommandVersion::V4, &outcome).unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn v4_success_is_kubelets_json() {
        assert_eq!(
            json(CommandOutcome::Exited(0)),
            r#"{"metadata":{},"status":"Success"}"#
        );
    }

    #[test]
    fn v4_non_zero_exit_carries_the_code() {
        assert_eq!(
            json(CommandOutcome::Exited(42)),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 42","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"42"}]}}"#
        );
        let parsed: Status = serde_json::from_str(&json(CommandOutcome::Exited(42))).unwrap();
        assert_eq!(parsed.exit_code(), Some(42));
        let ok: Status = serde_json::from_str(&json(CommandOutcome::Exited(0))).unwrap();
        assert_eq!(ok.exit_code(), Some(0));
    }

    #[test]
    fn v4_errors_are_internal_errors() {
        let s: Status =
            serde_json::from_str(&json(CommandOutcome::Failed("no such container".into())))
                .unwrap();
        assert_eq!(s.status, "Failure");
        assert_eq!(s.reason, "InternalError");
        assert_eq!(s.code, 500);
        assert_eq!(s.exit_code(), None);
    }

    #[test]
    fn older_versions_write_text_only_on_failure() {
        for v in [
            RemoteCommandVersion::V1,
            RemoteCommandVersion::V2,
            RemoteCommandVersion::V3,
        ] {
            assert_eq!(error_stream_message(v, &CommandOutcome::Exited(0)), None);
            let text = error_stream_message(v, &CommandOutcome::Exited(3)).unwrap();
            assert_eq!(
                text,
                b"command terminated with non-zero exit code: exit status 3"
            );
        }
        // v5 (WebSocket) uses the v4 status.
        assert!(
            error_stream_message(RemoteCommandVersion::V5, &CommandOutcome::Exited(0))
                .unwrap()
                .starts_with(b"{")
        );
    }
}
