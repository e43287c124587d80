//! The error type of every fixture builder.

use std::path::PathBuf;

/// Why a fixture could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// A filesystem operation failed on a path.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// No usable busybox binary was found.
    #[error("busybox not found at {path} (install Debian's busybox-static): {source}")]
    BusyboxMissing {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The busybox binary is dynamically linked, so it cannot run in a bare rootfs.
    #[error("busybox at {path} is dynamically linked; install Debian's busybox-static")]
    BusyboxNotStatic { path: PathBuf },
    /// `busybox --list-full` failed or printed something unexpected.
    #[error("listing applets of {path}: {reason}")]
    AppletList { path: PathBuf, reason: String },
    /// The OCI runtime spec could not be built, read or written.
    #[error("oci spec {path}: {source}")]
    Spec {
        path: PathBuf,
        #[source]
        source: oci_spec::OciSpecError,
    },
}

impl FixtureError {
    /// Wraps an I/O error with the operation and path it concerns.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| FixtureError::Io { op, path, source }
    }
}
