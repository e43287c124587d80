//! The error type of CRI-to-OCI translation: every variant names the CRI
//! field at fault (`config.mounts[2].host_path`) or the file it concerns.

use std::io;
use std::path::PathBuf;

use berth_runtime::seccomp::SeccompError;

/// A CRI request that cannot become an OCI spec, or a pod file that cannot be
/// written.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A field whose value is not acceptable.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A host file or device named by a field could not be inspected or read.
    #[error("{field}: {}: {source}", path.display())]
    HostPath {
        field: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file inside the container image could not be read.
    #[error("{field}: reading {} in the image: {source}", path.display())]
    ImageFile {
        field: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A seccomp profile that does not parse.
    #[error("{field}: {source}")]
    Seccomp {
        field: String,
        #[source]
        source: SeccompError,
    },
    /// A pod file (hostname, hosts, resolv.conf) could not be written or its
    /// host source could not be read.
    #[error("pod file {}: {source}", path.display())]
    PodFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl SpecError {
    /// A field with an unacceptable value.
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The field path named by this error, when it names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. }
            | Self::HostPath { field, .. }
            | Self::ImageFile { field, .. }
            | Self::Seccomp { field, .. } => Some(field),
            Self::PodFile { .. } => None,
        }
    }
}
