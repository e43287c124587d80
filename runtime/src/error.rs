//! The runtime library's error type: every variant names the container, field
//! or path at fault, so the CLI can print it as is.

use std::path::PathBuf;

use crate::{cgroups::CgroupError, rootfs::RootfsError, seccomp::SeccompError};

/// Result alias for the runtime library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the runtime library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container id is empty or holds characters other than `[A-Za-z0-9_+.-]`.
    #[error("invalid container id {0:?}: use 1-1024 characters of [A-Za-z0-9_+.-], not starting with '.'")]
    InvalidId(String),
    /// A container with this id already exists under the state root.
    #[error("container {0:?} already exists")]
    AlreadyExists(String),
    /// No container with this id exists under the state root.
    #[error("container {0:?} does not exist")]
    NotFound(String),
    /// The container is not in a state that allows the operation.
    #[error("container {id:?} is {status}: cannot {op}")]
    WrongState {
        /// Container id.
        id: String,
        /// Its current status.
        status: String,
        /// The refused operation.
        op: &'static str,
    },
    /// The bundle's config.json is missing or invalid.
    #[error("bundle {path}: {reason}")]
    Bundle {
        /// The config.json path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A spec field has a value the runtime cannot honour.
    #[error("{field}: {reason}")]
    InvalidSpec {
        /// The JSON path of the field, e.g. `linux.namespaces[2].path`.
        field: String,
        /// Why it is refused.
        reason: String,
    },
    /// A filesystem or syscall error on a named path.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path it was done on.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A syscall failed outside of any path.
    #[error("{op}: {source}")]
    Sys {
        /// What was being done.
        op: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The container's init failed during setup; the message comes from it.
    #[error("container init: {0}")]
    Init(String),
    /// A hook failed.
    #[error("{kind} hook {path}: {reason}")]
    Hook {
        /// Which hook list (prestart, createRuntime, ...).
        kind: &'static str,
        /// The hook's path.
        path: PathBuf,
        /// Exit status, timeout or exec error.
        reason: String,
    },
    /// Cgroup management failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// Rootfs setup failed.
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// Seccomp compilation or installation failed.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
}

impl Error {
    /// An [`Error::Io`] from `op` on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Sys`] from the current `errno`.
    pub fn last_os(op: impl Into<String>) -> Self {
        Error::Sys {
            op: op.into(),
            source: std::io::Error::last_os_error(),
        }
    }

    /// An [`Error::InvalidSpec`].
    pub fn spec(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidSpec {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::Sys {
            op: "syscall".into(),
            source: e.into(),
        }
    }
}
