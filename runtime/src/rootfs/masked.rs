//! After pivot: `linux.readonlyPaths` (bound onto themselves, read-only with
//! all their submounts), `linux.maskedPaths` (/dev/null over files, an empty
//! read-only tmpfs over directories) and a read-only root. Paths are
//! resolved inside the new root; missing ones are skipped.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::fstat;

use super::error::RootfsError;
use super::options::attr;
use super::resolve::{open_in_root, proc_fd_path};
use super::syscalls;

/// Opens `path` inside `root`; `None` when it does not exist.
fn open_existing(root: BorrowedFd<'_>, path: &Path) -> Result<Option<OwnedFd>, RootfsError> {
    match open_in_root(root, path) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(RootfsError::mount(path, "resolve path", "openat2", e)),
    }
}

/// Makes `path` and every mount under it read-only.
pub(crate) fn make_readonly(root: BorrowedFd<'_>, path: &Path) -> Result<(), RootfsError> {
    let Some(fd) = open_existing(root, path)? else {
        return Ok(());
    };
    let target = proc_fd_path(&fd);
    syscalls::mount(
        Some(&target),
        &target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
        path,
        "bind onto itself",
    )?;
    let mounted = open_in_root(root, path)
        .map_err(|e| RootfsError::mount(path, "reopen path", "openat2", e))?;
    syscalls::set_attrs_recursive(mounted.as_fd(), attr::RDONLY, 0, path)
}

/// Hides `path`: /dev/null over a file, an empty read-only tmpfs over a directory.
pub(crate) fn mask(root: BorrowedFd<'_>, path: &Path) -> Result<(), RootfsError> {
    let Some(fd) = open_existing(root, path)? else {
        return Ok(());
    };
    let st =
        fstat(fd.as_fd()).map_err(|e| RootfsError::mount(path, "stat masked path", "fstat", e))?;
    let target = proc_fd_path(&fd);
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        syscalls::mount(
            Some(Path::new("tmpfs")),
            &target,
            Some("tmpfs"),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("size=0,mode=555"),
            path,
            "mask directory",
        )
    } else {
        syscalls::mount(
            Some(Path::new("/dev/null")),
            &target,
            None,
            MsFlags::MS_BIND,
            None,
            path,
            "mask file",
        )
    }
}

/// `root.readonly`: remounts `/` read-only, keeping its other flags.
pub(crate) fn remount_root_readonly() -> Result<(), RootfsError> {
    let root = syscalls::open_dir(Path::new("/"))?;
    syscalls::remount_bind(root.as_fd(), MsFlags::MS_RDONLY, true, Path::new("/"))
}
