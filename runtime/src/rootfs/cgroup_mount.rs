//! The `cgroup` mount type. cgroup v2 hosts: a fresh cgroup2 mount when the
//! container has its own cgroup namespace, else a bind of its own cgroup.
//! cgroup v1 (and hybrid) hosts: a tmpfs at the destination holding one
//! mount per hierarchy (a bind of the container's cgroup in it, or a fresh
//! mount in a cgroup namespace), plus symlinks for co-mounted controllers;
//! read-only when asked.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
use nix::unistd::symlinkat;

use super::error::RootfsError;
use super::mountinfo::{self, MountEntry};
use super::mounts::{bind, MountContext, MountRequest};
use super::resolve::{proc_fd_path, Leaf};
use super::syscalls;

/// Where the host mounts its cgroup filesystems.
const HOST_CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// One line of `/proc/self/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMembership {
    /// Controllers (e.g. `["cpu", "cpuacct"]`, `["name=systemd"]`); empty for v2.
    pub controllers: Vec<String>,
    /// The cgroup path, as seen from our cgroup namespace.
    pub path: PathBuf,
}

/// Parses `/proc/self/cgroup`.
pub(crate) fn parse_memberships(text: &str) -> Vec<CgroupMembership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(CgroupMembership {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: PathBuf::from(path),
            })
        })
        .collect()
}

/// Whether `entry` is the mount of the hierarchy `membership` is in.
fn is_hierarchy_of(entry: &MountEntry, membership: &CgroupMembership) -> bool {
    match entry.fstype.as_str() {
        "cgroup2" => membership.controllers.is_empty(),
        "cgroup" => {
            !membership.controllers.is_empty()
                && membership
                    .controllers
                    .iter()
                    .all(|c| entry.super_options.split(',').any(|o| o == c))
        }
        _ => false,
    }
}

/// The host path of the container's cgroup in the hierarchy mounted by `entry`.
fn host_cgroup_dir(entry: &MountEntry, membership: &CgroupMembership) -> PathBuf {
    match membership.path.strip_prefix(&entry.root) {
        Ok(rel) => entry.mount_point.join(rel),
        // Our cgroup is outside what this mount shows: the mount itself is the best we can see.
        Err(_) => entry.mount_point.clone(),
    }
}

/// A host hierarchy to expose: its mount entry and the container's cgroup in it.
#[derive(Debug)]
pub(crate) struct Hierarchy {
    /// The directory name under the destination (e.g. `cpu,cpuacct`, `unified`).
    pub name: String,
    /// The host mount.
    pub entry: MountEntry,
    /// The host directory of the container's cgroup.
    pub source: PathBuf,
}

/// The cgroup hierarchies mounted under the host's `/sys/fs/cgroup`, each
/// with the container's cgroup in it.
pub(crate) fn hierarchies(
    mounts: &[MountEntry],
    memberships: &[CgroupMembership],
) -> Vec<Hierarchy> {
    mounts
        .iter()
        .filter(|m| m.mount_point.parent() == Some(Path::new(HOST_CGROUP_ROOT)))
        .filter_map(|entry| {
            let membership = memberships.iter().find(|c| is_hierarchy_of(entry, c))?;
            let name = entry
                .mount_point
                .file_name()?
                .to_string_lossy()
                .into_owned();
            Some(Hierarchy {
                name,
                source: host_cgroup_dir(entry, membership),
                entry: entry.clone(),
            })
        })
        .collect()
}

fn read_memberships() -> Result<Vec<CgroupMembership>, RootfsError> {
    let path = Path::new("/proc/self/cgroup");
    let text = std::fs::read_to_string(path).map_err(|source| RootfsError::Read {
        path: path.into(),
        source,
    })?;
    Ok(parse_memberships(&text))
}

/// Mounts the spec's `cgroup` entry.
pub(crate) fn mount_cgroup(
    ctx: &MountContext<'_>,
    req: &MountRequest<'_>,
) -> Result<(), RootfsError> {
    let host_v2 =
        statfs(HOST_CGROUP_ROOT).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC);
    let memberships = read_memberships()?;
    if host_v2 {
        mount_v2(ctx, req, &memberships)
    } else {
        mount_v1(ctx, req, &memberships)
    }
}

fn mount_v2(
    ctx: &MountContext<'_>,
    req: &MountRequest<'_>,
    memberships: &[CgroupMembership],
) -> Result<(), RootfsError> {
    if ctx.cgroup_ns {
        let target = ctx.target(req.destination, Leaf::Dir)?;
        return mount_fresh_cgroup(&target, req.destination, "cgroup2", req.flags, None);
    }
    let own = memberships
        .iter()
        .find(|m| m.controllers.is_empty())
        .map(|m| m.path.clone())
        .unwrap_or_else(|| PathBuf::from("/"));
    let source = Path::new(HOST_CGROUP_ROOT).join(own.strip_prefix("/").unwrap_or(&own));
    bind(ctx, &bind_request(req.destination, source, req.flags))
}

fn bind_request(destination: &Path, source: PathBuf, flags: MsFlags) -> MountRequest<'_> {
    MountRequest {
        destination,
        fstype: "bind",
        source,
        flags: flags | MsFlags::MS_BIND | MsFlags::MS_REC,
        data: String::new(),
    }
}

fn mount_fresh_cgroup(
    target: &OwnedFd,
    destination: &Path,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), RootfsError> {
    syscalls::mount(
        Some(Path::new(fstype)),
        &proc_fd_path(target),
        Some(fstype),
        flags & !MsFlags::MS_BIND,
        data,
        destination,
        "new cgroup filesystem",
    )
}

fn mount_v1(
    ctx: &MountContext<'_>,
    req: &MountRequest<'_>,
    memberships: &[CgroupMembership],
) -> Result<(), RootfsError> {
    let dest = req.destination;
    let target = ctx.target(dest, Leaf::Dir)?;
    let tmpfs_flags = req.flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    syscalls::mount(
        Some(Path::new("tmpfs")),
        &proc_fd_path(&target),
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
        dest,
        "cgroup tmpfs",
    )?;
    let tmpfs = ctx.reopen(dest)?;
    let mounts = mountinfo::read_self()?;
    for h in hierarchies(&mounts, memberships) {
        let sub_dest = dest.join(&h.name);
        if ctx.cgroup_ns {
            let sub = ctx.target(&sub_dest, Leaf::Dir)?;
            let (fstype, data) = fresh_mount_args(&h.entry);
            mount_fresh_cgroup(&sub, &sub_dest, fstype, req.flags, data.as_deref())?;
        } else {
            bind(ctx, &bind_request(&sub_dest, h.source.clone(), req.flags))?;
        }
        link_comounted(&tmpfs, &h.name, dest)?;
    }
    if req.flags.contains(MsFlags::MS_RDONLY) {
        syscalls::mount(
            None,
            &proc_fd_path(&tmpfs),
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | tmpfs_flags,
            Some("mode=755"),
            dest,
            "remount cgroup tmpfs read-only",
        )?;
    }
    Ok(())
}

/// fstype and data for a fresh mount of the hierarchy `entry` shows.
fn fresh_mount_args(entry: &MountEntry) -> (&'static str, Option<String>) {
    if entry.fstype == "cgroup2" {
        return ("cgroup2", None);
    }
    let data: Vec<&str> = entry
        .super_options
        .split(',')
        .filter(|o| !matches!(*o, "rw" | "ro"))
        .collect();
    ("cgroup", Some(data.join(",")))
}

/// `cpu,cpuacct` also answers as `cpu` and `cpuacct`: symlinks in the tmpfs.
fn link_comounted(tmpfs: &OwnedFd, name: &str, dest: &Path) -> Result<(), RootfsError> {
    if !name.contains(',') {
        return Ok(());
    }
    for part in name.split(',') {
        match symlinkat(name, tmpfs.as_fd(), part) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                return Err(RootfsError::mount(
                    dest.join(part),
                    "co-mounted link",
                    "symlinkat",
                    e,
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CGROUP: &str = "\
12:cpu,cpuacct:/kubepods/pod1
11:memory:/kubepods/pod1
1:name=systemd:/init.scope
0::/kubepods/pod1
";

    const MOUNTS: &str = "\
30 22 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:10 - cgroup cgroup rw,cpu,cpuacct
32 30 0:28 /kubepods /sys/fs/cgroup/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
33 30 0:29 / /sys/fs/cgroup/systemd rw,nosuid shared:12 - cgroup cgroup rw,xattr,name=systemd
34 30 0:30 / /sys/fs/cgroup/unified rw,nosuid shared:13 - cgroup2 cgroup2 rw,nsdelegate
35 30 0:31 / /sys/fs/cgroup/pids rw,nosuid shared:14 - cgroup cgroup rw,pids
36 22 0:32 / /mnt/elsewhere rw - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn memberships_parse() {
        let m = parse_memberships(CGROUP);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(m[0].path, Path::new("/kubepods/pod1"));
        assert!(m[3].controllers.is_empty());
    }

    #[test]
    fn hierarchies_pair_mounts_with_our_cgroup() {
        let mounts = mountinfo::parse(MOUNTS);
        let hs = hierarchies(&mounts, &parse_memberships(CGROUP));
        let names: Vec<&str> = hs.iter().map(|h| h.name.as_str()).collect();
        // pids: no membership line; /mnt/elsewhere: not under /sys/fs/cgroup.
        assert_eq!(names, vec!["cpu,cpuacct", "memory", "systemd", "unified"]);
        assert_eq!(
            hs[0].source,
            Path::new("/sys/fs/cgroup/cpu,cpuacct/kubepods/pod1")
        );
        // The memory mount's root is /kubepods: only the rest is appended.
        assert_eq!(hs[1].source, Path::new("/sys/fs/cgroup/memory/pod1"));
        assert_eq!(hs[2].source, Path::new("/sys/fs/cgroup/systemd/init.scope"));
        assert_eq!(
            hs[3].source,
            Path::new("/sys/fs/cgroup/unified/kubepods/pod1")
        );
    }

    #[test]
    fn cgroup_outside_the_mount_root_falls_back_to_the_mount() {
        let mounts = mountinfo::parse(MOUNTS);
        let memberships = parse_memberships("11:memory:/other\n");
        let hs = hierarchies(&mounts, &memberships);
        assert_eq!(hs.len(), 1);
        assert_eq!(hs[0].source, Path::new("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn fresh_mount_args_keep_controllers() {
        let mounts = mountinfo::parse(MOUNTS);
        assert_eq!(
            fresh_mount_args(&mounts[3]),
            ("cgroup", Some("xattr,name=systemd".to_string()))
        );
        assert_eq!(fresh_mount_args(&mounts[4]), ("cgroup2", None));
    }
}
