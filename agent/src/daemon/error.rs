//! berthd's error type and its mapping onto gRPC status codes, as containerd
//! returns them: unknown ids are NotFound, bad requests InvalidArgument
//! (naming the field), taken names AlreadyExists, calls in the wrong state
//! FailedPrecondition, everything the node failed at Internal.

use tonic::{Code, Status};

use crate::images::ImageError;
use crate::monitor::MonitorError;
use crate::spec::SpecError;

/// A failed CRI call.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A field of the request is missing or not acceptable.
    #[error("{field}: {reason}")]
    Invalid {
        /// The request field, dotted (`config.metadata.name`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The pod, container or image named does not exist.
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// `pod sandbox`, `container` or `image`.
        kind: &'static str,
        /// The id or reference asked for.
        id: String,
    },
    /// A name is already reserved by another pod or container.
    #[error("name {name:?} is reserved for {kind} {owner}")]
    NameTaken {
        /// `pod sandbox` or `container`.
        kind: &'static str,
        /// The name key.
        name: String,
        /// The id that holds it.
        owner: String,
    },
    /// The object is not in a state that allows the call.
    #[error("{what}")]
    WrongState {
        /// What is wrong, in words.
        what: String,
    },
    /// The CRI request cannot become an OCI spec.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The image store failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The pod's monitor failed or is gone.
    #[error("pod monitor: {0}")]
    Monitor(#[from] MonitorError),
    /// Pod networking failed.
    #[error("pod network: {0}")]
    Network(#[from] berth_cni::NetError),
    /// A file operation of berthd's own failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The call ran out of time (ExecSync's timeout).
    #[error("{0}")]
    Timeout(String),
    /// Something else the node failed at.
    #[error("{0}")]
    Internal(String),
}

/// berthd's result type.
pub type Result<T, E = DaemonError> = std::result::Result<T, E>;

impl DaemonError {
    /// A request field with a bad value.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A missing pod sandbox.
    pub fn no_pod(id: &str) -> Self {
        Self::NotFound {
            kind: "pod sandbox",
            id: id.to_string(),
        }
    }

    /// A missing container.
    pub fn no_container(id: &str) -> Self {
        Self::NotFound {
            kind: "container",
            id: id.to_string(),
        }
    }

    /// A call in the wrong state.
    pub fn state(what: impl Into<String>) -> Self {
        Self::WrongState { what: what.into() }
    }

    /// A failed file operation on `path`.
    pub fn io(
        op: &'static str,
        path: impl Into<std::path::PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }

    /// The gRPC code kubelet and crictl expect for this error.
    pub fn code(&self) -> Code {
        match self {
            Self::Invalid { .. } => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::NameTaken { .. } => Code::AlreadyExists,
            Self::WrongState { .. } => Code::FailedPrecondition,
            Self::Timeout(_) => Code::DeadlineExceeded,
            Self::Spec(e) => match e {
                SpecError::Invalid { .. }
                | SpecError::HostPath { .. }
                | SpecError::Seccomp { .. } => Code::InvalidArgument,
                SpecError::ImageFile { .. } | SpecError::PodFile { .. } => Code::Internal,
            },
            Self::Image(e) => match e {
                ImageError::NotFound(_) => Code::NotFound,
                ImageError::InvalidReference { .. } | ImageError::InvalidDigest { .. } => {
                    Code::InvalidArgument
                }
                _ => Code::Internal,
            },
            Self::Monitor(_) | Self::Network(_) | Self::Io { .. } | Self::Internal(_) => {
                Code::Internal
            }
        }
    }
}

impl From<DaemonError> for Status {
    fn from(e: DaemonError) -> Self {
        Status::new(e.code(), e.to_string())
    }
}
