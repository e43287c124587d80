//! Reading `/proc/self/mountinfo`: the parsed entries, and the lookups the
//! rootfs setup needs (the mount holding a path, the cgroup hierarchies).

use std::path::{Path, PathBuf};

use super::error::RootfsError;

/// One line of mountinfo (proc(5)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    /// The root of the mount within its filesystem (field 4).
    pub root: PathBuf,
    /// Where it is mounted (field 5).
    pub mount_point: PathBuf,
    /// Per-mount options (field 6).
    pub mount_options: String,
    /// Optional fields, e.g. `shared:12`, `master:3`.
    pub optional: Vec<String>,
    /// Filesystem type, e.g. `cgroup`.
    pub fstype: String,
    /// Mount source.
    pub source: String,
    /// Per-superblock options, e.g. `rw,cpu,cpuacct`.
    pub super_options: String,
}

impl MountEntry {
    /// Whether the mount is in a shared peer group.
    pub fn is_shared(&self) -> bool {
        self.optional.iter().any(|o| o.starts_with("shared:"))
    }

    /// Whether the per-mount options include `name` (e.g. `ro`, `nosuid`).
    #[cfg(test)]
    pub fn has_mount_option(&self, name: &str) -> bool {
        self.mount_options.split(',').any(|o| o == name)
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one mountinfo line; `None` for a malformed one.
fn parse_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mut left = left.split(' ');
    let _id = left.next()?;
    let _parent = left.next()?;
    let _dev = left.next()?;
    let root = unescape(left.next()?);
    let mount_point = unescape(left.next()?);
    let mount_options = left.next()?.to_string();
    let optional = left.filter(|s| !s.is_empty()).map(str::to_string).collect();
    let mut right = right.split(' ');
    let fstype = right.next()?.to_string();
    let source = unescape(right.next()?);
    let super_options = right.next().unwrap_or_default().to_string();
    Some(MountEntry {
        root: root.into(),
        mount_point: mount_point.into(),
        mount_options,
        optional,
        fstype,
        source,
        super_options,
    })
}

/// Parses mountinfo text, skipping malformed lines.
pub(crate) fn parse(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

/// The calling process's mounts, in mount order.
pub(crate) fn read_self() -> Result<Vec<MountEntry>, RootfsError> {
    let path = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(path).map_err(|source| RootfsError::Read {
        path: path.into(),
        source,
    })?;
    Ok(parse(&text))
}

/// The mount that holds `path` (the last-mounted one with the longest mount
/// point that is a prefix of `path`). `path` must be absolute and clean.
pub(crate) fn containing_mount<'a>(
    mounts: &'a [MountEntry],
    path: &Path,
) -> Option<&'a MountEntry> {
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| path.starts_with(&m.mount_point))
        .max_by_key(|(i, m)| (m.mount_point.components().count(), *i))
        .map(|(_, m)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 22 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
32 30 0:28 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:11 - cgroup2 cgroup2 rw,nsdelegate
40 22 0:40 /sub /mnt/with\\040space rw master:5 propagate_from:2 - tmpfs none rw
41 22 0:41 / /mnt rw - tmpfs none rw
garbage line
";

    #[test]
    fn parses_fields() {
        let mounts = parse(SAMPLE);
        assert_eq!(mounts.len(), 7);
        let cpu = &mounts[3];
        assert_eq!(cpu.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(cpu.fstype, "cgroup");
        assert_eq!(cpu.super_options, "rw,cpu,cpuacct");
        assert!(cpu.is_shared());
        assert!(cpu.has_mount_option("nosuid"));
        assert!(!cpu.has_mount_option("ro"));
    }

    #[test]
    fn unescapes_and_reads_optional_fields() {
        let mounts = parse(SAMPLE);
        let spaced = &mounts[5];
        assert_eq!(spaced.mount_point, Path::new("/mnt/with space"));
        assert_eq!(spaced.root, Path::new("/sub"));
        assert_eq!(spaced.optional, vec!["master:5", "propagate_from:2"]);
        assert!(!spaced.is_shared());
        assert_eq!(unescape(r"a\134b\011c"), "a\\b\tc");
        assert_eq!(unescape(r"trailing\04"), r"trailing\04");
    }

    #[test]
    fn containing_mount_takes_longest_then_latest() {
        let mounts = parse(SAMPLE);
        let m = containing_mount(&mounts, Path::new("/var/lib/x")).unwrap();
        assert_eq!(m.mount_point, Path::new("/"));
        let m = containing_mount(&mounts, Path::new("/sys/fs/cgroup/cpu,cpuacct/a")).unwrap();
        assert_eq!(m.fstype, "cgroup");
        let m = containing_mount(&mounts, Path::new("/mnt/rootfs")).unwrap();
        assert_eq!(m.mount_point, Path::new("/mnt"));
        // Path prefix, not string prefix.
        let m = containing_mount(&mounts, Path::new("/procfoo")).unwrap();
        assert_eq!(m.mount_point, Path::new("/"));
    }
}
