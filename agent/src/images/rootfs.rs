//! A container's root filesystem: one overlay mount of the image's snapshots
//! (read-only lower dirs) under a per-container upper and work dir.
//!
//! The mount data is limited to one page, so lower dirs are named by short
//! relative symlinks (`lower/0`, `lower/1`, ...) and the mount is made from a
//! helper thread whose working directory (unshared from the process) is the
//! container dir: this fits hundreds of layers.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::error::ImageError;

/// The mount data limit (one page).
const MOUNT_DATA_MAX: usize = 4095;

/// A mounted container rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsMount {
    /// The merged view: the container's root (`<container_dir>/rootfs`).
    pub target: PathBuf,
    /// The container's writable layer (`<container_dir>/upper`).
    pub upper: PathBuf,
    /// Overlay's scratch dir (`<container_dir>/work`).
    pub work: PathBuf,
    /// Whether the mount is read-only.
    pub readonly: bool,
}

/// Mounts an overlay of `lowers` (top layer first) at
/// `<container_dir>/rootfs`, with upper and work dirs in `container_dir`.
/// An image without layers gets an empty lower dir.
pub fn mount_rootfs(
    lowers: &[PathBuf],
    container_dir: &Path,
    readonly: bool,
) -> Result<RootfsMount, ImageError> {
    let m = RootfsMount {
        target: container_dir.join("rootfs"),
        upper: container_dir.join("upper"),
        work: container_dir.join("work"),
        readonly,
    };
    let links = container_dir.join("lower");
    for dir in [&m.target, &m.upper, &m.work, &links] {
        fs::create_dir_all(dir).map_err(ImageError::io("create", dir))?;
    }
    let mut names = Vec::with_capacity(lowers.len().max(1));
    let empty = container_dir.join("empty");
    let lowers: Vec<PathBuf> = if lowers.is_empty() {
        fs::create_dir_all(&empty).map_err(ImageError::io("create", &empty))?;
        vec![empty]
    } else {
        lowers.to_vec()
    };
    for (i, lower) in lowers.iter().enumerate() {
        let link = links.join(i.to_string());
        match fs::remove_file(&link) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(ImageError::io("replace", &link)(e))
            }
            _ => {}
        }
        symlink(lower, &link).map_err(ImageError::io("symlink", &link))?;
        names.push(format!("lower/{i}"));
    }
    let data = format!("lowerdir={},upperdir=upper,workdir=work", names.join(":"));
    if data.len() > MOUNT_DATA_MAX {
        return Err(ImageError::malformed(
            format!("rootfs of {}", container_dir.display()),
            format!(
                "{} layers do not fit in one page of mount options",
                lowers.len()
            ),
        ));
    }
    let flags = if readonly {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    let dir = container_dir.to_path_buf();
    let mount_err = |source| ImageError::Mount {
        op: "mount overlay",
        path: m.target.clone(),
        source,
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            // The cwd change must not leak into the rest of the process.
            unshare(CloneFlags::CLONE_FS)?;
            nix::unistd::chdir(&dir)?;
            mount(
                Some("overlay"),
                "rootfs",
                Some("overlay"),
                flags,
                Some(data.as_str()),
            )
        })
        .join()
        .unwrap_or(Err(nix::errno::Errno::EINTR))
    })
    .map_err(mount_err)?;
    Ok(m)
}

/// Unmounts a rootfs mounted by [`mount_rootfs`]; not mounted is fine.
pub fn unmount_rootfs(target: &Path) -> Result<(), ImageError> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(source) => Err(ImageError::Mount {
            op: "unmount",
            path: target.to_path_buf(),
            source,
        }),
    }
}
