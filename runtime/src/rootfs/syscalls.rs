//! Thin wrappers over the mount syscalls that attach context to errors:
//! mount(2), bind remounts that keep locked flags, mount_setattr(2).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use nix::sys::statvfs::{fstatvfs, FsFlags};

use super::error::RootfsError;
use super::options::MS_NOSYMFOLLOW;
use super::resolve::proc_fd_path;

/// The per-mount flags a bind remount can change.
pub(crate) const BIND_REMOUNT_FLAGS: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NOATIME)
    .union(MsFlags::MS_NODIRATIME)
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME)
    .union(MS_NOSYMFOLLOW);

/// mount(2); errors name `destination` (the container path) and `step`.
pub(crate) fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    destination: &Path,
    step: &'static str,
) -> Result<(), RootfsError> {
    nix::mount::mount(source, target, fstype, flags, data)
        .map_err(|e| RootfsError::mount(destination, step, "mount", e))
}

/// Opens a directory (O_PATH is not enough for fchdir on every kernel, so O_RDONLY).
pub(crate) fn open_dir(path: &Path) -> Result<OwnedFd, RootfsError> {
    open(
        path,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| RootfsError::sys("open", path, e))
}

/// The mount flags a mount currently has, as mount(2) flags.
pub(crate) fn current_flags(fd: BorrowedFd<'_>) -> Result<MsFlags, Errno> {
    let st = fstatvfs(fd)?;
    let map = [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    Ok(map
        .iter()
        .filter(|(st_flag, _)| st.flags().contains(*st_flag))
        .fold(MsFlags::empty(), |acc, (_, ms)| acc | *ms))
}

/// Remounts the bind mount whose root `fd` is with `flags` (only the
/// per-mount ones are used). With `keep_current`, the mount's present flags
/// are kept; without, they are added only when the kernel refuses to drop
/// them (flags locked by a user namespace).
pub(crate) fn remount_bind(
    fd: BorrowedFd<'_>,
    flags: MsFlags,
    keep_current: bool,
    destination: &Path,
) -> Result<(), RootfsError> {
    let target = proc_fd_path(&fd);
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    let current =
        || current_flags(fd).map_err(|e| RootfsError::mount(destination, "remount", "fstatvfs", e));
    let mut wanted = flags & BIND_REMOUNT_FLAGS;
    if keep_current {
        wanted |= current()?;
    }
    let attempt = |f: MsFlags| {
        nix::mount::mount(None::<&Path>, &target, None::<&str>, base | f, None::<&str>)
    };
    match attempt(wanted) {
        Err(Errno::EPERM) if !keep_current => attempt(wanted | current()?),
        other => other,
    }
    .map_err(|e| RootfsError::mount(destination, "bind remount", "mount", e))
}

/// `AT_RECURSIVE` (linux/fcntl.h); libc has no Linux name for it.
const AT_RECURSIVE: libc::c_int = 0x8000;

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount tree whose root `fd` is (`AT_RECURSIVE`).
pub(crate) fn set_attrs_recursive(
    fd: BorrowedFd<'_>,
    set: u64,
    clear: u64,
    destination: &Path,
) -> Result<(), RootfsError> {
    let mut attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = libc::AT_EMPTY_PATH | AT_RECURSIVE;
    // SAFETY: the path is a valid NUL-terminated empty string, `attr` is a live
    // `struct mount_attr` whose size is passed along; the kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            flags,
            &mut attr as *mut MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop).map_err(|e| {
        RootfsError::mount(destination, "set recursive attributes", "mount_setattr", e)
    })
}
