//! Device nodes in the container (`linux.devices`) and the device cgroup
//! rules (`linux.resources.devices`): the request's devices (each host node
//! stat'ed for its type and numbers) allowed with their permissions on top of
//! deny-all; a privileged container gets every host device and allow-all.
//! The runtime adds the standard nodes (null, zero, tty, ...) itself.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_proto::v1::Device;
use nix::sys::stat::{major, minor};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use super::{paths, SpecError};

/// Directories of the host's /dev that hold no device a container should get
/// (or that the runtime sets up itself).
const SKIPPED: &[&str] = &["pts", "shm", "fd", "mqueue", "console"];

/// The nodes to create and the cgroup rules.
#[derive(Debug, Default)]
pub(crate) struct Devices {
    pub nodes: Vec<LinuxDevice>,
    pub rules: Vec<LinuxDeviceCgroup>,
}

/// Devices for `requested` (`config.devices`); `host_dev` is the host's
/// `/dev`, walked only for privileged containers.
pub(crate) fn devices(
    requested: &[Device],
    privileged: bool,
    host_dev: &Path,
) -> Result<Devices, SpecError> {
    let mut out = Devices::default();
    if privileged {
        out.nodes = host_devices(host_dev).map_err(|source| SpecError::HostPath {
            field: "config.linux.security_context.privileged".into(),
            path: host_dev.to_path_buf(),
            source,
        })?;
        out.rules.push(rule(true, LinuxDeviceType::A, None, "rwm"));
    } else {
        out.rules.push(rule(false, LinuxDeviceType::A, None, "rwm"));
    }
    for (i, device) in requested.iter().enumerate() {
        let field = format!("config.devices[{i}]");
        let (node, access) = one(&field, device)?;
        out.nodes.retain(|n| n.path() != node.path());
        if !privileged {
            let numbers = Some((node.major(), node.minor()));
            out.rules.push(rule(true, node.typ(), numbers, &access));
        }
        out.nodes.push(node);
    }
    Ok(out)
}

/// One requested device: its node and cgroup access string.
fn one(field: &str, device: &Device) -> Result<(LinuxDevice, String), SpecError> {
    let host = paths::clean_absolute(&format!("{field}.host_path"), &device.host_path)?;
    let container_path = if device.container_path.is_empty() {
        host.clone()
    } else {
        paths::clean_absolute(&format!("{field}.container_path"), &device.container_path)?
    };
    let access = permissions(&format!("{field}.permissions"), &device.permissions)?;
    let meta = fs::metadata(&host).map_err(|source| SpecError::HostPath {
        field: format!("{field}.host_path"),
        path: host.clone(),
        source,
    })?;
    let node = node(container_path, &meta).ok_or_else(|| {
        SpecError::invalid(
            format!("{field}.host_path"),
            format!("{} is not a character or block device", host.display()),
        )
    })?;
    Ok((node, access))
}

/// The cgroup access string: some of `r`, `w`, `m`, each once; empty means
/// all three.
fn permissions(field: &str, value: &str) -> Result<String, SpecError> {
    if value.is_empty() {
        return Ok("rwm".into());
    }
    let mut seen = String::new();
    for c in value.chars() {
        if !"rwm".contains(c) || seen.contains(c) {
            return Err(SpecError::invalid(
                field,
                format!("invalid device permissions {value:?} (expected some of r, w, m)"),
            ));
        }
        seen.push(c);
    }
    Ok(seen)
}

/// A node for a host device's metadata, `None` if it is not a device.
fn node(path: PathBuf, meta: &fs::Metadata) -> Option<LinuxDevice> {
    let typ = if meta.file_type().is_char_device() {
        LinuxDeviceType::C
    } else if meta.file_type().is_block_device() {
        LinuxDeviceType::B
    } else {
        return None;
    };
    let mut node = LinuxDevice::default();
    node.set_path(path);
    node.set_typ(typ);
    node.set_major(major(meta.rdev()) as i64);
    node.set_minor(minor(meta.rdev()) as i64);
    node.set_file_mode(Some(meta.mode() & 0o7777));
    node.set_uid(Some(meta.uid()));
    node.set_gid(Some(meta.gid()));
    Some(node)
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    numbers: Option<(i64, i64)>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major(numbers.map(|n| n.0));
    r.set_minor(numbers.map(|n| n.1));
    r.set_access(Some(access.to_string()));
    r
}

/// Every device node under `dev` (not following symlinks), as the same path
/// under `/dev` in the container.
pub(crate) fn host_devices(dev: &Path) -> io::Result<Vec<LinuxDevice>> {
    let mut nodes = Vec::new();
    let mut pending = vec![dev.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(dev) else {
                continue;
            };
            if SKIPPED.iter().any(|s| rel == Path::new(s)) {
                continue;
            }
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) => m,
                // Device nodes come and go (hotplug): skip the vanished.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if meta.is_dir() {
                pending.push(path);
            } else if let Some(node) = node(Path::new("/dev").join(rel), &meta) {
                nodes.push(node);
            }
        }
    }
    nodes.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(host: &str, container: &str, perms: &str) -> Device {
        Device {
            host_path: host.into(),
            container_path: container.into(),
            permissions: perms.into(),
        }
    }

    fn empty_dev() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn requested_device_becomes_node_and_allow_rule() {
        let dev = empty_dev();
        let got = devices(
            &[device("/dev/null", "/dev/mynull", "rw")],
            false,
            dev.path(),
        )
        .unwrap();
        assert_eq!(got.nodes.len(), 1);
        let n = &got.nodes[0];
        assert_eq!(n.path(), Path::new("/dev/mynull"));
        assert_eq!(n.typ(), LinuxDeviceType::C);
        assert_eq!((n.major(), n.minor()), (1, 3));
        assert_eq!(got.rules.len(), 2);
        assert!(!got.rules[0].allow());
        assert_eq!(got.rules[0].access().as_deref(), Some("rwm"));
        let r = &got.rules[1];
        assert!(r.allow());
        assert_eq!(
            (r.typ(), r.major(), r.minor()),
            (Some(LinuxDeviceType::C), Some(1), Some(3))
        );
        assert_eq!(r.access().as_deref(), Some("rw"));
    }

    #[test]
    fn no_devices_means_deny_all() {
        let got = devices(&[], false, empty_dev().path()).unwrap();
        assert!(got.nodes.is_empty());
        assert_eq!(got.rules.len(), 1);
        assert!(!got.rules[0].allow());
    }

    #[test]
    fn empty_container_path_and_permissions_default() {
        let got = devices(&[device("/dev/zero", "", "")], false, empty_dev().path()).unwrap();
        assert_eq!(got.nodes[0].path(), Path::new("/dev/zero"));
        assert_eq!(got.rules[1].access().as_deref(), Some("rwm"));
    }

    #[test]
    fn bad_devices_name_the_field() {
        let dev = empty_dev();
        let cases = [
            (
                device("/dev/null", "/dev/x", "rx"),
                "config.devices[0].permissions",
            ),
            (
                device("/dev/null", "/dev/x", "rr"),
                "config.devices[0].permissions",
            ),
            (
                device("/dev/../etc/passwd", "/dev/x", "r"),
                "config.devices[0].host_path",
            ),
            (
                device("/dev/null", "dev/x", "r"),
                "config.devices[0].container_path",
            ),
            (
                device("/etc/hostname", "/dev/x", "r"),
                "config.devices[0].host_path",
            ),
            (
                device("/dev/berth-no-such-device", "/dev/x", "r"),
                "config.devices[0].host_path",
            ),
        ];
        for (d, field) in cases {
            let err = devices(&[d], false, dev.path()).unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
        }
    }

    #[test]
    fn privileged_gets_host_devices_and_allow_all() {
        // A fake /dev: a real device node (root can mknod), a symlink, and a
        // skipped directory.
        let dev = empty_dev();
        let null = dev.path().join("null");
        nix::sys::stat::mknod(
            &null,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap();
        fs::create_dir(dev.path().join("pts")).unwrap();
        nix::sys::stat::mknod(
            &dev.path().join("pts/0"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o620),
            nix::sys::stat::makedev(136, 0),
        )
        .unwrap();
        fs::create_dir(dev.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("../null", dev.path().join("sub/link")).unwrap();
        fs::write(dev.path().join("plain"), "").unwrap();

        let got = devices(&[device("/dev/zero", "/dev/z", "r")], true, dev.path()).unwrap();
        let paths: Vec<_> = got
            .nodes
            .iter()
            .map(|n| n.path().display().to_string())
            .collect();
        assert_eq!(paths, ["/dev/null", "/dev/z"]);
        let mode = fs::metadata(&null).unwrap().mode() & 0o7777;
        assert_eq!(got.nodes[0].file_mode(), Some(mode));
        assert_eq!(got.rules.len(), 1);
        assert!(got.rules[0].allow());
        assert_eq!(got.rules[0].typ(), Some(LinuxDeviceType::A));
    }
}
