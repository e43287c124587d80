//! Device nodes in the container's /dev: the defaults every container gets
//! (null, zero, full, random, urandom, tty), the spec's `linux.devices`, and
//! the /dev symlinks (fd, stdin, stdout, stderr, ptmx, core). Nodes are made
//! with mknod, or bind-mounted from the host inside a user namespace.
//! Whatever a spec mount already covers is left alone.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::mount::MsFlags;
use nix::sys::stat::{fchmodat, fstatat, makedev, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use super::error::RootfsError;
use super::mounts::MountContext;
use super::options::mount_flags;
use super::resolve::{proc_fd_path, Leaf};
use super::syscalls;

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceNode {
    /// Absolute path inside the container.
    pub path: PathBuf,
    /// S_IFCHR, S_IFBLK or S_IFIFO.
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    /// Permission bits.
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Mode of default devices and of spec devices without `fileMode`.
const DEFAULT_MODE: u32 = 0o666;

/// The devices every container gets: (name, major, minor).
const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The default devices as nodes.
pub(crate) fn default_devices() -> Vec<DeviceNode> {
    DEFAULT_DEVICES
        .iter()
        .map(|(name, major, minor)| DeviceNode {
            path: Path::new("/dev").join(name),
            kind: SFlag::S_IFCHR,
            major: *major,
            minor: *minor,
            mode: DEFAULT_MODE,
            uid: None,
            gid: None,
        })
        .collect()
}

/// Converts a spec device, refusing type `a` and negative numbers.
pub(crate) fn from_spec(dev: &LinuxDevice) -> Result<DeviceNode, RootfsError> {
    let invalid = |reason: String| RootfsError::InvalidSpec {
        field: format!("linux.devices[{}]", dev.path().display()),
        reason,
    };
    let kind = match dev.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => return Err(invalid("type \"a\" is not a device type".into())),
    };
    if !dev.path().is_absolute() {
        return Err(invalid("path is not absolute".into()));
    }
    let number =
        |n: i64, what: &str| u64::try_from(n).map_err(|_| invalid(format!("negative {what} {n}")));
    let (major, minor) = if kind == SFlag::S_IFIFO {
        (0, 0)
    } else {
        (number(dev.major(), "major")?, number(dev.minor(), "minor")?)
    };
    Ok(DeviceNode {
        path: dev.path().clone(),
        kind,
        major,
        minor,
        mode: dev.file_mode().unwrap_or(DEFAULT_MODE) & 0o7777,
        uid: dev.uid(),
        gid: dev.gid(),
    })
}

/// Normalised (no `.`, no trailing `/`) form of a container path, for comparisons.
fn clean(path: &Path) -> PathBuf {
    Path::new("/").join(
        path.components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect::<PathBuf>(),
    )
}

/// What the spec's mounts already provide under /dev.
#[derive(Debug, Default)]
pub(crate) struct Covered {
    /// /dev itself is a bind mount from the host: nothing is to be made.
    pub whole_dev: bool,
    /// Destinations of mounts (cleaned).
    pub paths: Vec<PathBuf>,
}

impl Covered {
    pub fn from_mounts(mounts: &[Mount]) -> Self {
        let mut covered = Covered::default();
        for m in mounts {
            let dest = clean(m.destination());
            let (flags, _, _) = mount_flags(m.options().as_deref().unwrap_or_default());
            let is_bind = m.typ().as_deref() == Some("bind") || flags.contains(MsFlags::MS_BIND);
            if dest == Path::new("/dev") && is_bind {
                covered.whole_dev = true;
            }
            covered.paths.push(dest);
        }
        covered
    }

    fn covers(&self, path: &Path) -> bool {
        let path = clean(path);
        self.paths.contains(&path)
    }
}

/// The nodes to make: spec devices, then the defaults that neither a spec
/// device nor a mount already provides.
pub(crate) fn plan(
    spec_devices: &[LinuxDevice],
    covered: &Covered,
) -> Result<Vec<DeviceNode>, RootfsError> {
    if covered.whole_dev {
        return Ok(Vec::new());
    }
    let mut nodes = spec_devices
        .iter()
        .map(from_spec)
        .collect::<Result<Vec<_>, _>>()?;
    let defaults: Vec<DeviceNode> = default_devices()
        .into_iter()
        .filter(|d| !nodes.iter().any(|n| clean(&n.path) == d.path))
        .collect();
    nodes.extend(defaults);
    nodes.retain(|n| !covered.covers(&n.path));
    Ok(nodes)
}

/// The /dev symlinks: (name under /dev, target).
pub(crate) fn symlinks(kcore_present: bool) -> Vec<(&'static str, &'static str)> {
    let mut links = vec![
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ];
    if kcore_present {
        links.push(("core", "/proc/kcore"));
    }
    links
}

/// Makes the devices and /dev symlinks of the spec.
pub(crate) fn create_all(
    ctx: &MountContext<'_>,
    spec: &Spec,
    mounts: &[Mount],
) -> Result<(), RootfsError> {
    let covered = Covered::from_mounts(mounts);
    if covered.whole_dev {
        return Ok(());
    }
    let spec_devices = spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    let nodes = plan(spec_devices, &covered)?;
    for node in &nodes {
        if ctx.opts.in_user_ns {
            bind_from_host(ctx, node)?;
        } else {
            make_node(ctx, node)?;
        }
    }
    let kcore = Path::new("/proc/kcore").exists();
    for (name, target) in symlinks(kcore) {
        let path = Path::new("/dev").join(name);
        if covered.covers(&path) || nodes.iter().any(|n| n.path == path) {
            continue;
        }
        make_symlink(ctx, name, target)?;
    }
    Ok(())
}

/// Inside a user namespace mknod is refused: bind the host's node instead.
fn bind_from_host(ctx: &MountContext<'_>, node: &DeviceNode) -> Result<(), RootfsError> {
    let target = ctx.target(&node.path, Leaf::File)?;
    syscalls::mount(
        Some(&node.path),
        &proc_fd_path(&target),
        None,
        MsFlags::MS_BIND,
        None,
        &node.path,
        "bind host device",
    )
}

/// Whether the existing entry `st` already is `node`.
fn is_same_node(st: &nix::sys::stat::FileStat, node: &DeviceNode) -> bool {
    let kind = st.st_mode & libc::S_IFMT;
    kind == node.kind.bits()
        && (node.kind == SFlag::S_IFIFO || st.st_rdev == makedev(node.major, node.minor))
}

fn make_node(ctx: &MountContext<'_>, node: &DeviceNode) -> Result<(), RootfsError> {
    let err = |syscall, e| RootfsError::sys(syscall, &node.path, e);
    let (parent_path, name) = match (node.path.parent(), node.path.file_name()) {
        (Some(p), Some(n)) => (p, n),
        _ => return Err(err("mknod", Errno::EINVAL)),
    };
    let parent = ctx.target(parent_path, Leaf::Dir)?;
    let dir = parent.as_fd();
    let perm = Mode::from_bits_truncate(node.mode);
    let dev = makedev(node.major, node.minor);
    match mknodat(dir, name, node.kind, perm, dev) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            let st =
                fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| err("fstatat", e))?;
            if !is_same_node(&st, node) {
                // A placeholder from the image (a file, a symlink): replace it.
                unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(|e| err("unlinkat", e))?;
                mknodat(dir, name, node.kind, perm, dev).map_err(|e| err("mknodat", e))?;
            }
        }
        Err(e) => return Err(err("mknodat", e)),
    }
    // mknod applied the umask; the spec's mode is exact.
    fchmodat(dir, name, perm, FchmodatFlags::FollowSymlink).map_err(|e| err("fchmodat", e))?;
    if node.uid.is_some() || node.gid.is_some() {
        fchownat(
            dir,
            name,
            node.uid.map(Uid::from_raw),
            node.gid.map(Gid::from_raw),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err("fchownat", e))?;
    }
    Ok(())
}

fn make_symlink(ctx: &MountContext<'_>, name: &str, target: &str) -> Result<(), RootfsError> {
    let dev = ctx.target(Path::new("/dev"), Leaf::Dir)?;
    let path = Path::new("/dev").join(name);
    let err = |syscall, e| RootfsError::sys(syscall, &path, e);
    match symlinkat(target, dev.as_fd(), name) {
        Ok(()) => Ok(()),
        Err(Errno::EEXIST) if name == "ptmx" => {
            // An image's /dev/ptmx node would bypass the container's devpts instance.
            let st = fstatat(dev.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| err("fstatat", e))?;
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                return Err(err("symlinkat", Errno::EISDIR));
            }
            unlinkat(dev.as_fd(), name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| err("unlinkat", e))?;
            symlinkat(target, dev.as_fd(), name).map_err(|e| err("symlinkat", e))
        }
        Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(err("symlinkat", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxDeviceBuilder, MountBuilder};

    fn device(path: &str, typ: LinuxDeviceType, major: i64, minor: i64) -> LinuxDevice {
        LinuxDeviceBuilder::default()
            .path(path)
            .typ(typ)
            .major(major)
            .minor(minor)
            .build()
            .unwrap()
    }

    fn mount(dest: &str, typ: &str, options: &[&str]) -> Mount {
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(typ)
            .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap()
    }

    #[test]
    fn spec_device_types_convert() {
        let c = from_spec(&device("/dev/fuse", LinuxDeviceType::C, 10, 229)).unwrap();
        assert_eq!(
            (c.kind, c.major, c.minor, c.mode),
            (SFlag::S_IFCHR, 10, 229, 0o666)
        );
        let u = from_spec(&device("/dev/u", LinuxDeviceType::U, 1, 2)).unwrap();
        assert_eq!(u.kind, SFlag::S_IFCHR);
        let b = from_spec(&device("/dev/loop0", LinuxDeviceType::B, 7, 0)).unwrap();
        assert_eq!(b.kind, SFlag::S_IFBLK);
        let p = from_spec(&device("/dev/fifo", LinuxDeviceType::P, 9, 9)).unwrap();
        assert_eq!((p.kind, p.major, p.minor), (SFlag::S_IFIFO, 0, 0));
    }

    #[test]
    fn invalid_spec_devices_are_refused() {
        let err = from_spec(&device("/dev/all", LinuxDeviceType::A, 1, 1)).unwrap_err();
        assert!(err.to_string().contains("linux.devices[/dev/all]"), "{err}");
        assert!(from_spec(&device("/dev/neg", LinuxDeviceType::C, -1, 1)).is_err());
        assert!(from_spec(&device("dev/rel", LinuxDeviceType::C, 1, 1)).is_err());
    }

    #[test]
    fn file_mode_and_owner_are_kept() {
        let mut d = device("/dev/x", LinuxDeviceType::C, 1, 3);
        d.set_file_mode(Some(0o100600));
        d.set_uid(Some(1000));
        d.set_gid(Some(1001));
        let n = from_spec(&d).unwrap();
        assert_eq!((n.mode, n.uid, n.gid), (0o600, Some(1000), Some(1001)));
    }

    #[test]
    fn plan_prefers_spec_devices_and_skips_covered_paths() {
        let spec = vec![
            device("/dev/null", LinuxDeviceType::C, 1, 3),
            device("/dev/fuse", LinuxDeviceType::C, 10, 229),
        ];
        let covered = Covered::from_mounts(&[
            mount("/dev", "tmpfs", &[]),
            mount("/dev/./zero", "bind", &["bind"]),
        ]);
        assert!(!covered.whole_dev);
        let nodes = plan(&spec, &covered).unwrap();
        let paths: Vec<&str> = nodes.iter().map(|n| n.path.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            vec![
                "/dev/null",
                "/dev/fuse",
                "/dev/full",
                "/dev/random",
                "/dev/urandom",
                "/dev/tty"
            ]
        );
    }

    #[test]
    fn a_bound_dev_means_no_devices() {
        let covered = Covered::from_mounts(&[mount("/dev/", "none", &["rbind"])]);
        assert!(covered.whole_dev);
        assert!(plan(&[], &covered).unwrap().is_empty());
    }

    #[test]
    fn core_link_only_with_kcore() {
        assert!(symlinks(true).contains(&("core", "/proc/kcore")));
        assert!(!symlinks(false).iter().any(|(n, _)| *n == "core"));
        assert!(symlinks(false).contains(&("ptmx", "pts/ptmx")));
    }
}
