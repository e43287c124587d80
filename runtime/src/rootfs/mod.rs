//! The container's filesystem view. Owned here: root propagation, the rootfs
//! bind, the spec's mounts (resolved so that no symlink escapes the rootfs),
//! default devices and /dev symlinks, `linux.devices`, pivot_root (or move +
//! chroot on ramfs), masked and read-only paths, read-only root.
//!
//! Runs inside the container's init, after it has its new mount namespace.

use std::path::Path;

use oci_spec::runtime::Spec;

/// Errors from setting up the rootfs; each names the mount destination or path.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// Placeholder until the rootfs code lands.
    #[error("rootfs setup is not implemented yet")]
    Unimplemented,
}

/// How the container's rootfs is to be set up.
#[derive(Debug, Clone, Default)]
pub struct RootfsOptions {
    /// The process is in a new user namespace: devices are bind-mounted, not made.
    pub in_user_ns: bool,
    /// Use MS_MOVE + chroot instead of pivot_root (runc's `--no-pivot`).
    pub no_pivot: bool,
}

/// Before pivot: propagation of `/`, bind of the rootfs, every spec mount,
/// devices and /dev symlinks. `rootfs` is an absolute host path.
pub fn prepare(_spec: &Spec, _rootfs: &Path, _opts: &RootfsOptions) -> Result<(), RootfsError> {
    Err(RootfsError::Unimplemented)
}

/// Makes `rootfs` the root of the calling process's mount namespace and chdirs to `/`.
pub fn pivot(_rootfs: &Path, _opts: &RootfsOptions) -> Result<(), RootfsError> {
    Err(RootfsError::Unimplemented)
}

/// After pivot: read-only paths, masked paths, read-only root, final
/// `rootfsPropagation`.
pub fn finalize(_spec: &Spec) -> Result<(), RootfsError> {
    Err(RootfsError::Unimplemented)
}
