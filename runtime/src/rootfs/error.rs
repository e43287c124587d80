//! The rootfs module's error type: every variant names the path or mount
//! destination it was working on, and the syscall or step that failed.

use std::path::PathBuf;

use nix::errno::Errno;

/// Errors from setting up the rootfs; each names the mount destination or path.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A syscall on a path failed.
    #[error("{syscall} {}: {source}", path.display())]
    Syscall {
        /// The syscall (or libc call) that failed.
        syscall: &'static str,
        /// The path it was called on.
        path: PathBuf,
        /// The kernel's answer.
        #[source]
        source: Errno,
    },
    /// A mount step for a container destination failed.
    #[error("mount {} ({step}): {syscall}: {source}", destination.display())]
    Mount {
        /// The destination inside the container (or the host path for the rootfs itself).
        destination: PathBuf,
        /// What was being done (e.g. "bind", "remount read-only").
        step: &'static str,
        /// The syscall that failed.
        syscall: &'static str,
        /// The kernel's answer.
        #[source]
        source: Errno,
    },
    /// The spec asks for something this runtime cannot do.
    #[error("invalid {field}: {reason}")]
    InvalidSpec {
        /// The spec field, e.g. `linux.rootfsPropagation`.
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// Reading a host file the setup depends on failed.
    #[error("read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl RootfsError {
    /// A `Syscall` error for `path`.
    pub(crate) fn sys(syscall: &'static str, path: impl Into<PathBuf>, source: Errno) -> Self {
        Self::Syscall {
            syscall,
            path: path.into(),
            source,
        }
    }

    /// A `Mount` error for `destination`.
    pub(crate) fn mount(
        destination: impl Into<PathBuf>,
        step: &'static str,
        syscall: &'static str,
        source: Errno,
    ) -> Self {
        Self::Mount {
            destination: destination.into(),
            step,
            syscall,
            source,
        }
    }

    /// The errno behind this error, if a syscall failed.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::Syscall { source, .. } | Self::Mount { source, .. } => Some(*source),
            Self::InvalidSpec { .. } | Self::Read { .. } => None,
        }
    }
}
