//! The container's filesystem view. Owned here: root propagation, the rootfs
//! bind, the spec's mounts (resolved so that no symlink escapes the rootfs),
//! default devices and /dev symlinks, `linux.devices`, pivot_root (or move +
//! chroot on ramfs), masked and read-only paths, read-only root.
//!
//! Runs inside the container's init, after it has its new mount namespace.
//! The calling order is [`prepare`] → (hooks, console) → [`pivot`] → [`finalize`].

mod cgroup_mount;
mod devices;
mod error;
mod masked;
mod mountinfo;
mod mounts;
mod options;
mod pivot;
mod propagation;
mod resolve;
mod syscalls;

#[cfg(test)]
mod tests;

use std::os::fd::AsFd;
use std::path::Path;

use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

pub use error::RootfsError;
pub use options::{mount_flags, recursive_attrs, RecursiveAttrs};
pub use propagation::{propagation_flag, root_propagation, set_propagation};
pub use resolve::{ensure_in_root, open_in_root, proc_fd_path, Leaf};

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
pub fn prepare(spec: &Spec, rootfs: &Path, opts: &RootfsOptions) -> Result<(), RootfsError> {
    set_propagation(Path::new("/"), root_propagation(spec)?)?;
    propagation::make_parent_private(rootfs)?;
    syscalls::mount(
        Some(rootfs),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
        rootfs,
        "bind rootfs",
    )?;
    // Opened after the bind so that the fd sits on the new mount.
    let root = syscalls::open_dir(rootfs)?;
    let ctx = mounts::MountContext {
        root: root.as_fd(),
        opts,
        cgroup_ns: has_namespace(spec, LinuxNamespaceType::Cgroup),
    };
    let spec_mounts = spec.mounts().as_deref().unwrap_or_default();
    mounts::mount_all(&ctx, spec_mounts)?;
    devices::create_all(&ctx, spec, spec_mounts)
}

/// Makes `rootfs` the root of the calling process's mount namespace and chdirs to `/`.
pub fn pivot(rootfs: &Path, opts: &RootfsOptions) -> Result<(), RootfsError> {
    if opts.no_pivot {
        pivot::move_and_chroot(rootfs)
    } else {
        pivot::pivot_or_move(rootfs)
    }
}

/// After pivot: read-only paths, masked paths, read-only root, final
/// `rootfsPropagation`.
pub fn finalize(spec: &Spec) -> Result<(), RootfsError> {
    let root = syscalls::open_dir(Path::new("/"))?;
    if let Some(linux) = spec.linux() {
        for path in linux.readonly_paths().as_deref().unwrap_or_default() {
            masked::make_readonly(root.as_fd(), Path::new(path))?;
        }
        for path in linux.masked_paths().as_deref().unwrap_or_default() {
            masked::mask(root.as_fd(), Path::new(path))?;
        }
    }
    let root_readonly = spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    if root_readonly {
        masked::remount_root_readonly()?;
    }
    let requested = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_ref());
    if requested.is_some() {
        set_propagation(Path::new("/"), root_propagation(spec)?)?;
    }
    Ok(())
}

/// Whether the spec asks for a namespace of this type (new or joined).
fn has_namespace(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|nss| nss.iter().any(|ns| ns.typ() == typ))
}
