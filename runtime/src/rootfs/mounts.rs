//! The spec's `mounts[]`, in order: each destination resolved inside the
//! rootfs, then proc/sysfs/tmpfs/devpts/mqueue/cgroup or a bind, with its
//! flags, the remount a bind needs for them, its propagation and its
//! recursive attributes.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use super::cgroup_mount;
use super::error::RootfsError;
use super::options::{mount_flags, recursive_attrs};
use super::resolve::{ensure_in_root, open_in_root, proc_fd_path, Leaf};
use super::syscalls::{self, BIND_REMOUNT_FLAGS};
use super::RootfsOptions;

/// What every mount step needs to know.
pub(crate) struct MountContext<'a> {
    /// The rootfs directory (on the rootfs bind mount).
    pub root: BorrowedFd<'a>,
    /// The caller's options.
    pub opts: &'a RootfsOptions,
    /// The container has its own cgroup namespace.
    pub cgroup_ns: bool,
}

/// One spec mount, parsed.
pub(crate) struct MountRequest<'a> {
    /// Destination inside the container.
    pub destination: &'a Path,
    /// Filesystem type (`bind` for binds).
    pub fstype: &'a str,
    /// Source: a host path for binds, a name otherwise.
    pub source: PathBuf,
    /// mount(2) flags from the options.
    pub flags: MsFlags,
    /// Filesystem data from the options.
    pub data: String,
}

impl MountRequest<'_> {
    fn data(&self) -> Option<&str> {
        Some(self.data.as_str()).filter(|d| !d.is_empty())
    }

    fn is_bind(&self) -> bool {
        self.fstype == "bind" || self.flags.contains(MsFlags::MS_BIND)
    }
}

impl MountContext<'_> {
    /// Resolves (creating it if needed) `destination` inside the rootfs.
    pub fn target(&self, destination: &Path, leaf: Leaf) -> Result<OwnedFd, RootfsError> {
        ensure_in_root(self.root, destination, leaf)
            .map_err(|e| RootfsError::mount(destination, "resolve destination", "openat2", e))
    }

    /// Re-opens `destination` after something was mounted on it, so that the
    /// fd is the new mount's root.
    pub fn reopen(&self, destination: &Path) -> Result<OwnedFd, RootfsError> {
        open_in_root(self.root, destination)
            .map_err(|e| RootfsError::mount(destination, "reopen destination", "openat2", e))
    }
}

/// Mounts every spec mount, in order.
pub(crate) fn mount_all(ctx: &MountContext<'_>, mounts: &[Mount]) -> Result<(), RootfsError> {
    mounts.iter().try_for_each(|m| mount_one(ctx, m))
}

fn mount_one(ctx: &MountContext<'_>, m: &Mount) -> Result<(), RootfsError> {
    let options = m.options().as_deref().unwrap_or_default();
    let (flags, propagation, data) = mount_flags(options);
    let fstype = m.typ().as_deref().unwrap_or("");
    let req = MountRequest {
        destination: m.destination(),
        fstype,
        source: m.source().clone().unwrap_or_else(|| PathBuf::from(fstype)),
        flags,
        data,
    };
    if req.is_bind() {
        bind(ctx, &req)?;
    } else {
        match fstype {
            "cgroup" | "cgroup2" => cgroup_mount::mount_cgroup(ctx, &req)?,
            "sysfs" => with_user_ns_fallback(ctx, &req, "/sys")?,
            "mqueue" => with_user_ns_fallback(ctx, &req, "/dev/mqueue")?,
            "devpts" => devpts(ctx, &req)?,
            "" => {
                return Err(RootfsError::InvalidSpec {
                    field: format!("mounts[{}].type", req.destination.display()),
                    reason: "no type and no bind option".into(),
                })
            }
            _ => fresh(ctx, &req)?,
        }
    }
    finish(ctx, req.destination, &propagation, options)
}

/// A new filesystem instance at the destination (a directory).
pub(crate) fn fresh(ctx: &MountContext<'_>, req: &MountRequest<'_>) -> Result<(), RootfsError> {
    let target = ctx.target(req.destination, Leaf::Dir)?;
    fresh_at(&target, req, req.data())
}

fn fresh_at(
    target: &OwnedFd,
    req: &MountRequest<'_>,
    data: Option<&str>,
) -> Result<(), RootfsError> {
    syscalls::mount(
        Some(&req.source),
        &proc_fd_path(target),
        Some(req.fstype),
        req.flags,
        data,
        req.destination,
        "new filesystem",
    )
}

/// A bind (or rbind) of a host path; a file source gets a file destination.
/// Flags other than bind/rec need a bind remount to take effect.
pub(crate) fn bind(ctx: &MountContext<'_>, req: &MountRequest<'_>) -> Result<(), RootfsError> {
    let source_meta = std::fs::metadata(&req.source).map_err(|e| {
        let errno = e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO);
        RootfsError::mount(req.destination, "stat bind source", "stat", errno)
    })?;
    let leaf = if source_meta.is_dir() {
        Leaf::Dir
    } else {
        Leaf::File
    };
    let target = ctx.target(req.destination, leaf)?;
    syscalls::mount(
        Some(&req.source),
        &proc_fd_path(&target),
        None,
        MsFlags::MS_BIND | (req.flags & MsFlags::MS_REC),
        None,
        req.destination,
        "bind",
    )?;
    let wanted = req.flags & BIND_REMOUNT_FLAGS;
    if !wanted.is_empty() {
        let mounted = ctx.reopen(req.destination)?;
        syscalls::remount_bind(mounted.as_fd(), wanted, false, req.destination)?;
    }
    Ok(())
}

/// sysfs and mqueue: without the namespace that owns them (a user namespace
/// without its own netns or ipcns) the kernel refuses a new instance; the
/// host's is rbound instead, with the same flags.
fn with_user_ns_fallback(
    ctx: &MountContext<'_>,
    req: &MountRequest<'_>,
    host_path: &str,
) -> Result<(), RootfsError> {
    match fresh(ctx, req) {
        Err(e) if ctx.opts.in_user_ns && e.errno() == Some(Errno::EPERM) => {
            let rbind = MountRequest {
                destination: req.destination,
                fstype: "bind",
                source: PathBuf::from(host_path),
                flags: req.flags | MsFlags::MS_BIND | MsFlags::MS_REC,
                data: String::new(),
            };
            bind(ctx, &rbind)
        }
        other => other,
    }
}

/// devpts: in a user namespace `gid=5` may name an unmapped group, which the
/// kernel refuses with EINVAL; retry without it.
fn devpts(ctx: &MountContext<'_>, req: &MountRequest<'_>) -> Result<(), RootfsError> {
    let target = ctx.target(req.destination, Leaf::Dir)?;
    match fresh_at(&target, req, req.data()) {
        Err(e) if ctx.opts.in_user_ns && e.errno() == Some(Errno::EINVAL) => {
            let without_gid: Vec<&str> = req
                .data
                .split(',')
                .filter(|o| !o.starts_with("gid="))
                .collect();
            let data = without_gid.join(",");
            fresh_at(&target, req, Some(data.as_str()).filter(|d| !d.is_empty()))
        }
        other => other,
    }
}

/// After the mount: propagation changes, then recursive attributes.
fn finish(
    ctx: &MountContext<'_>,
    destination: &Path,
    propagation: &[MsFlags],
    options: &[String],
) -> Result<(), RootfsError> {
    let attrs = recursive_attrs(options);
    if propagation.is_empty() && attrs.is_empty() {
        return Ok(());
    }
    let mounted = ctx.reopen(destination)?;
    for flags in propagation {
        syscalls::mount(
            None,
            &proc_fd_path(&mounted),
            None,
            *flags,
            None,
            destination,
            "set propagation",
        )?;
    }
    if !attrs.is_empty() {
        syscalls::set_attrs_recursive(mounted.as_fd(), attrs.set, attrs.clear, destination)?;
    }
    Ok(())
}
