//! The monitor's error type, shared by the process and its client.

use std::path::PathBuf;

/// Result with [`MonitorError`].
pub type Result<T, E = MonitorError> = std::result::Result<T, E>;

/// What can go wrong in the monitor or when talking to it.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The file it was on.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{op}: {source}")]
    Sys {
        /// The call and its object.
        op: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The OCI runtime refused.
    #[error("runtime: {0}")]
    Runtime(#[from] berth_runtime::Error),
    /// A cgroup operation failed.
    #[error("cgroup: {0}")]
    Cgroup(#[from] berth_runtime::cgroups::CgroupError),
    /// A message or record did not (de)serialize.
    #[error("json {what}: {source}")]
    Json {
        /// What was being (de)serialized.
        what: &'static str,
        /// The cause.
        source: serde_json::Error,
    },
    /// No container with this id in the pod.
    #[error("unknown container {0:?}")]
    UnknownContainer(String),
    /// A container with this id already exists in the pod.
    #[error("container {0:?} already exists")]
    ContainerExists(String),
    /// The container is in the wrong state for the operation.
    #[error("container {id:?} is {state}: cannot {op}")]
    WrongState {
        /// Container id.
        id: String,
        /// Its state.
        state: &'static str,
        /// The refused operation.
        op: &'static str,
    },
    /// The container's spec has no process to use as the exec template.
    #[error("container {0:?} has no process in its spec")]
    NoProcess(String),
    /// The pod's pause process could not be started.
    #[error("pause process: {0}")]
    Pause(String),
    /// The pod already has a pause process.
    #[error("the pod already has a pause process (pid {0})")]
    PauseExists(i32),
    /// A command line argument is missing or wrong.
    #[error("argument {name}: {reason}")]
    Arg {
        /// The argument.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The monitor refused a request.
    #[error("monitor: {0}")]
    Remote(String),
    /// The monitor did not start.
    #[error("monitor did not start: {0}")]
    Spawn(String),
    /// The connection to the monitor closed.
    #[error("connection to the monitor at {0} closed")]
    Closed(PathBuf),
}

impl MonitorError {
    /// An [`MonitorError::Io`] for `op` on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// A [`MonitorError::Sys`] from `errno`.
    pub fn last_os(op: impl Into<String>) -> Self {
        Self::Sys {
            op: op.into(),
            source: std::io::Error::last_os_error(),
        }
    }

    /// A [`MonitorError::Json`].
    pub fn json(what: &'static str, source: serde_json::Error) -> Self {
        Self::Json { what, source }
    }
}
