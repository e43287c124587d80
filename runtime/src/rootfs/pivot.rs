//! Switching the root: `pivot_root(".", ".")` then a lazy unmount of the
//! old root stacked underneath; or, with `no_pivot` or on an initramfs root
//! (ramfs/rootfs, where pivot_root answers EINVAL), MS_MOVE + chroot.

use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{umount2, MntFlags, MsFlags};
use nix::sys::statfs::{statfs, FsType, TMPFS_MAGIC};
use nix::unistd::{chdir, chroot, fchdir, pivot_root};

use super::error::RootfsError;
use super::syscalls;

/// pivot_root, falling back to move + chroot when the current root cannot be
/// pivoted away from (initramfs).
pub(crate) fn pivot_or_move(rootfs: &Path) -> Result<(), RootfsError> {
    match pivot(rootfs) {
        Err(e) if e.errno() == Some(Errno::EINVAL) && root_is_initramfs() => {
            move_and_chroot(rootfs)
        }
        other => other,
    }
}

/// `RAMFS_MAGIC` (linux/magic.h); nix has no name for it.
const RAMFS_MAGIC: FsType = FsType(0x8584_58f6);

/// Whether `/` is the kernel's initial rootfs (ramfs or tmpfs), which cannot be unmounted.
fn root_is_initramfs() -> bool {
    statfs("/").is_ok_and(|s| {
        let t = s.filesystem_type();
        t == RAMFS_MAGIC || t == TMPFS_MAGIC
    })
}

fn pivot(rootfs: &Path) -> Result<(), RootfsError> {
    let old_root = syscalls::open_dir(Path::new("/"))?;
    let new_root = syscalls::open_dir(rootfs)?;
    fchdir(new_root.as_fd()).map_err(|e| RootfsError::sys("fchdir", rootfs, e))?;
    // With both arguments ".", the old root ends up stacked under the new one
    // at "/", which needs no put_old directory in the image.
    pivot_root(".", ".").map_err(|e| RootfsError::sys("pivot_root", rootfs, e))?;
    fchdir(old_root.as_fd()).map_err(|e| RootfsError::sys("fchdir", "old root", e))?;
    // The old root's mounts may still be shared with the host: stop the
    // unmount below from propagating there.
    syscalls::mount(
        None,
        Path::new("."),
        None,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None,
        Path::new("old root"),
        "make old root a slave",
    )?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| RootfsError::sys("umount2", "old root", e))?;
    chdir("/").map_err(|e| RootfsError::sys("chdir", "/", e))
}

/// Moves the rootfs mount onto `/` and chroots into it.
pub(crate) fn move_and_chroot(rootfs: &Path) -> Result<(), RootfsError> {
    chdir(rootfs).map_err(|e| RootfsError::sys("chdir", rootfs, e))?;
    syscalls::mount(
        Some(rootfs),
        Path::new("/"),
        None,
        MsFlags::MS_MOVE,
        None,
        rootfs,
        "move rootfs onto /",
    )?;
    chroot(".").map_err(|e| RootfsError::sys("chroot", rootfs, e))?;
    chdir("/").map_err(|e| RootfsError::sys("chdir", "/", e))
}
