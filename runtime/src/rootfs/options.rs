//! Parsing of fstab-style mount options (`mounts[].options`) into mount(2)
//! flags, propagation changes, recursive mount attributes and filesystem
//! data. Pure: no syscalls here.

use nix::mount::MsFlags;

use super::propagation::propagation_flag;

/// What a flag option does to the flag set.
#[derive(Clone, Copy)]
enum Effect {
    /// Adds the flags.
    Set(MsFlags),
    /// Removes the flags.
    Clear(MsFlags),
    /// Adds the first flag, removing the others (atime modes exclude each other).
    Exclusive(MsFlags, MsFlags),
    /// Recognised, changes nothing.
    Nothing,
}

const ATIME_MODES: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);

/// `MS_NOSYMFOLLOW` (Linux 5.10); nix has no name for it.
pub(crate) const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

fn flag_effect(option: &str) -> Option<Effect> {
    use Effect::{Clear, Exclusive, Nothing, Set};
    let effect = match option {
        "defaults" => Nothing,
        "ro" => Set(MsFlags::MS_RDONLY),
        "rw" => Clear(MsFlags::MS_RDONLY),
        "nosuid" => Set(MsFlags::MS_NOSUID),
        "suid" => Clear(MsFlags::MS_NOSUID),
        "nodev" => Set(MsFlags::MS_NODEV),
        "dev" => Clear(MsFlags::MS_NODEV),
        "noexec" => Set(MsFlags::MS_NOEXEC),
        "exec" => Clear(MsFlags::MS_NOEXEC),
        "sync" => Set(MsFlags::MS_SYNCHRONOUS),
        "async" => Clear(MsFlags::MS_SYNCHRONOUS),
        "dirsync" => Set(MsFlags::MS_DIRSYNC),
        "mand" => Set(MsFlags::MS_MANDLOCK),
        "nomand" => Clear(MsFlags::MS_MANDLOCK),
        "noatime" => Exclusive(MsFlags::MS_NOATIME, ATIME_MODES),
        "atime" => Clear(MsFlags::MS_NOATIME),
        "relatime" => Exclusive(MsFlags::MS_RELATIME, ATIME_MODES),
        "norelatime" => Clear(MsFlags::MS_RELATIME),
        "strictatime" => Exclusive(MsFlags::MS_STRICTATIME, ATIME_MODES),
        "nostrictatime" => Clear(MsFlags::MS_STRICTATIME),
        "nodiratime" => Set(MsFlags::MS_NODIRATIME),
        "diratime" => Clear(MsFlags::MS_NODIRATIME),
        "lazytime" => Set(MsFlags::MS_LAZYTIME),
        "nolazytime" => Clear(MsFlags::MS_LAZYTIME),
        "silent" => Set(MsFlags::MS_SILENT),
        "loud" => Clear(MsFlags::MS_SILENT),
        "nosymfollow" => Set(MS_NOSYMFOLLOW),
        "symfollow" => Clear(MS_NOSYMFOLLOW),
        "bind" => Set(MsFlags::MS_BIND),
        "rbind" => Set(MsFlags::MS_BIND.union(MsFlags::MS_REC)),
        "remount" => Set(MsFlags::MS_REMOUNT),
        _ => return None,
    };
    Some(effect)
}

/// Parses mount options, in order (a later option wins), into
/// `(flags, propagation, data)`:
/// - `flags`: mount(2) flags (`ro`, `nosuid`, `bind`, `rbind`, atime modes, ...);
/// - `propagation`: propagation changes to apply after the mount, in order
///   (`shared`, `rslave`, `unbindable`, ...);
/// - `data`: every option not known as a flag, comma-joined, for the filesystem
///   (e.g. `mode=755,size=65536k`).
///
/// The recursive attributes (`rro`, `rnosuid`, ...) are recognised but left to
/// [`recursive_attrs`].
pub fn mount_flags(options: &[String]) -> (MsFlags, Vec<MsFlags>, String) {
    let mut flags = MsFlags::empty();
    let mut propagation = Vec::new();
    let mut data: Vec<&str> = Vec::new();
    for option in options {
        let option = option.as_str();
        if let Some(effect) = flag_effect(option) {
            match effect {
                Effect::Set(f) => flags.insert(f),
                Effect::Clear(f) => flags.remove(f),
                Effect::Exclusive(f, group) => {
                    flags.remove(group);
                    flags.insert(f);
                }
                Effect::Nothing => {}
            }
        } else if let Some(p) = propagation_flag(option) {
            propagation.push(p);
        } else if recursive_attr(option).is_none() && !option.is_empty() {
            data.push(option);
        }
    }
    (flags, propagation, data.join(","))
}

/// `MOUNT_ATTR_*` bits of mount_setattr(2) (linux/mount.h).
pub(crate) mod attr {
    pub const RDONLY: u64 = 0x0000_0001;
    pub const NOSUID: u64 = 0x0000_0002;
    pub const NODEV: u64 = 0x0000_0004;
    pub const NOEXEC: u64 = 0x0000_0008;
    pub const ATIME_MASK: u64 = 0x0000_0070;
    pub const RELATIME: u64 = 0x0000_0000;
    pub const NOATIME: u64 = 0x0000_0010;
    pub const STRICTATIME: u64 = 0x0000_0020;
    pub const NODIRATIME: u64 = 0x0000_0080;
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// Mount attributes to set and clear on a whole mount tree (mount_setattr(2)
/// with `AT_RECURSIVE`), from the `r`-prefixed options of config.md.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecursiveAttrs {
    /// `MOUNT_ATTR_*` bits to set.
    pub set: u64,
    /// `MOUNT_ATTR_*` bits to clear.
    pub clear: u64,
}

impl RecursiveAttrs {
    /// Whether nothing is to be changed.
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }
}

/// `(set, clear)` for one recursive option.
fn recursive_attr(option: &str) -> Option<(u64, u64)> {
    let pair = match option {
        "rro" => (attr::RDONLY, 0),
        "rrw" => (0, attr::RDONLY),
        "rnosuid" => (attr::NOSUID, 0),
        "rsuid" => (0, attr::NOSUID),
        "rnodev" => (attr::NODEV, 0),
        "rdev" => (0, attr::NODEV),
        "rnoexec" => (attr::NOEXEC, 0),
        "rexec" => (0, attr::NOEXEC),
        "rnodiratime" => (attr::NODIRATIME, 0),
        "rdiratime" => (0, attr::NODIRATIME),
        "rrelatime" => (attr::RELATIME, attr::ATIME_MASK),
        "rnoatime" => (attr::NOATIME, attr::ATIME_MASK),
        "rstrictatime" => (attr::STRICTATIME, attr::ATIME_MASK),
        "rnosymfollow" => (attr::NOSYMFOLLOW, 0),
        "rsymfollow" => (0, attr::NOSYMFOLLOW),
        _ => return None,
    };
    Some(pair)
}

/// Parses the recursive options (`rro`, `rnosuid`, `rnoatime`, ...), in
/// order: a later option wins over an earlier one about the same attribute.
pub fn recursive_attrs(options: &[String]) -> RecursiveAttrs {
    let mut out = RecursiveAttrs::default();
    for (set, clear) in options.iter().filter_map(|o| recursive_attr(o)) {
        out.set &= !clear;
        out.clear &= !set;
        out.set |= set;
        out.clear |= clear;
        // An atime mode both clears the mask and sets its own value.
        out.set &= !(clear & !set);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn empty_options_give_nothing() {
        let (flags, prop, data) = mount_flags(&[]);
        assert!(flags.is_empty());
        assert!(prop.is_empty());
        assert_eq!(data, "");
    }

    #[test]
    fn flags_and_data_are_split() {
        let (flags, prop, data) =
            mount_flags(&opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]));
        assert_eq!(flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert!(prop.is_empty());
        assert_eq!(data, "mode=755,size=65536k");
    }

    #[test]
    fn later_option_wins() {
        let (flags, _, _) = mount_flags(&opts(&["ro", "nodev", "rw", "dev", "exec"]));
        assert!(flags.is_empty());
        let (flags, _, _) = mount_flags(&opts(&["rw", "ro"]));
        assert_eq!(flags, MsFlags::MS_RDONLY);
    }

    #[test]
    fn atime_modes_exclude_each_other() {
        let (flags, _, _) = mount_flags(&opts(&["noatime", "relatime"]));
        assert_eq!(flags, MsFlags::MS_RELATIME);
        let (flags, _, _) = mount_flags(&opts(&["relatime", "strictatime"]));
        assert_eq!(flags, MsFlags::MS_STRICTATIME);
        let (flags, _, _) = mount_flags(&opts(&["strictatime", "noatime", "nodiratime"]));
        assert_eq!(flags, MsFlags::MS_NOATIME | MsFlags::MS_NODIRATIME);
    }

    #[test]
    fn bind_and_rbind() {
        let (flags, _, _) = mount_flags(&opts(&["bind"]));
        assert_eq!(flags, MsFlags::MS_BIND);
        let (flags, _, _) = mount_flags(&opts(&["rbind", "ro"]));
        assert_eq!(
            flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
    }

    #[test]
    fn propagation_options_keep_their_order() {
        let (flags, prop, data) = mount_flags(&opts(&["rbind", "rslave", "unbindable"]));
        assert_eq!(flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(
            prop,
            vec![MsFlags::MS_SLAVE | MsFlags::MS_REC, MsFlags::MS_UNBINDABLE]
        );
        assert_eq!(data, "");
        let (_, prop, _) = mount_flags(&opts(&["shared", "rprivate", "rshared", "slave"]));
        assert_eq!(
            prop,
            vec![
                MsFlags::MS_SHARED,
                MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                MsFlags::MS_SHARED | MsFlags::MS_REC,
                MsFlags::MS_SLAVE
            ]
        );
    }

    #[test]
    fn devpts_options_become_data() {
        let (flags, _, data) = mount_flags(&opts(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]));
        assert_eq!(flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
    }

    #[test]
    fn misc_flags() {
        let (flags, _, data) = mount_flags(&opts(&[
            "defaults",
            "sync",
            "dirsync",
            "nosymfollow",
            "lazytime",
            "remount",
            "",
        ]));
        assert_eq!(
            flags,
            MsFlags::MS_SYNCHRONOUS
                | MsFlags::MS_DIRSYNC
                | MS_NOSYMFOLLOW
                | MsFlags::MS_LAZYTIME
                | MsFlags::MS_REMOUNT
        );
        assert_eq!(data, "");
    }

    #[test]
    fn recursive_options_are_not_data() {
        let options = opts(&["rbind", "rro", "rnosuid", "rnoexec", "rnoatime"]);
        let (flags, _, data) = mount_flags(&options);
        assert_eq!(flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(data, "");
        let attrs = recursive_attrs(&options);
        assert_eq!(
            attrs.set,
            attr::RDONLY | attr::NOSUID | attr::NOEXEC | attr::NOATIME
        );
        assert_eq!(attrs.clear, attr::ATIME_MASK);
    }

    #[test]
    fn recursive_later_option_wins() {
        let attrs = recursive_attrs(&opts(&["rro", "rrw"]));
        assert_eq!(attrs.set, 0);
        assert_eq!(attrs.clear, attr::RDONLY);
        let attrs = recursive_attrs(&opts(&["rrw", "rro"]));
        assert_eq!(attrs.set, attr::RDONLY);
        assert_eq!(attrs.clear, 0);
        let attrs = recursive_attrs(&opts(&["rnoatime", "rstrictatime"]));
        assert_eq!(attrs.set, attr::STRICTATIME);
        assert_eq!(attrs.clear, attr::ATIME_MASK);
        assert!(recursive_attrs(&opts(&["ro", "nosuid"])).is_empty());
    }
}
