//! The image store's error type: every failure names the image, blob, path or
//! registry it concerns.

use std::path::PathBuf;

/// Everything that can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An image reference that does not parse.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A digest string that is not `sha256:<64 hex>`.
    #[error("invalid digest {digest:?}")]
    InvalidDigest {
        /// The digest as given.
        digest: String,
    },
    /// Content whose digest differs from the one it was asked for.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The blob, layer or manifest checked.
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest it has.
        actual: String,
    },
    /// A filesystem operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document (manifest, config, index, metadata) that does not parse.
    #[error("parse {what}: {source}")]
    Json {
        /// Which document.
        what: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A manifest, index or archive that is well-formed JSON but not usable.
    #[error("unsupported or malformed {what}: {reason}")]
    Malformed {
        /// Which document.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An image index that has no manifest for the wanted platform.
    #[error("no manifest for platform {platform} in index of {reference}")]
    NoMatchingPlatform {
        /// The reference pulled.
        reference: String,
        /// The platform looked for, `os/arch`.
        platform: String,
    },
    /// Every endpoint (mirrors, then the registry) failed.
    #[error("pull {reference}: {errors}")]
    Registry {
        /// The reference pulled.
        reference: String,
        /// One message per endpoint tried, in order.
        errors: String,
    },
    /// A layer entry that would escape its snapshot or is otherwise unsafe.
    #[error("unsafe layer {layer}: entry {entry:?}: {reason}")]
    UnsafeLayer {
        /// The layer's digest.
        layer: String,
        /// The tar entry's path.
        entry: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A layer tar that cannot be read or applied.
    #[error("unpack layer {layer}: entry {entry:?}: {source}")]
    Unpack {
        /// The layer's digest.
        layer: String,
        /// The tar entry's path (empty when reading the archive itself failed).
        entry: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No image with that reference or ID.
    #[error("image {0:?} not found")]
    NotFound(String),
    /// An ID prefix that matches more than one image.
    #[error("image id prefix {0:?} is ambiguous")]
    Ambiguous(String),
    /// A mount or unmount syscall failed.
    #[error("{op} {path}: {source}")]
    Mount {
        /// `mount overlay` or `unmount`.
        op: &'static str,
        /// The mount point.
        path: PathBuf,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// A blocking task panicked or was cancelled.
    #[error("background task for {what} failed: {reason}")]
    Task {
        /// What the task did.
        what: String,
        /// Why it failed.
        reason: String,
    },
}

impl ImageError {
    /// An [`ImageError::Io`] for `op` on `path`.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| ImageError::Io { op, path, source }
    }

    /// An [`ImageError::Json`] about `what`.
    pub(crate) fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Self {
        let what = what.into();
        move |source| ImageError::Json { what, source }
    }

    /// An [`ImageError::Malformed`] about `what`.
    pub(crate) fn malformed(what: impl Into<String>, reason: impl Into<String>) -> Self {
        ImageError::Malformed {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
