//! The process's capability sets: the default set (what Kubernetes runtimes
//! give an unprivileged container) changed by the request's add/drop lists
//! ("ALL" allowed, names with or without `CAP_`, any case), or every
//! capability for a privileged container. Order: add ALL, drop ALL, then the
//! named adds, then the named drops; ambient adds go to every set.
//!
//! "Every capability" (privileged, or an ALL in an add list) means every one
//! the node can grant: those of [`ALL`] in berth's own bounding set. A node
//! whose root lacks one (a restricted host, a nested container) could not
//! give it, and asking for it would fail the container's `capset`.

use std::collections::HashSet;

use berth_proto::v1::Capability as CriCapabilities;
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use super::SpecError;

const FIELD: &str = "config.linux.security_context.capabilities";

/// The capabilities of an unprivileged container with no add/drop.
pub const DEFAULT: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability the OCI types know.
pub const ALL: &[Capability] = &[
    Capability::AuditControl,
    Capability::AuditRead,
    Capability::AuditWrite,
    Capability::BlockSuspend,
    Capability::Bpf,
    Capability::CheckpointRestore,
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::Kill,
    Capability::Lease,
    Capability::LinuxImmutable,
    Capability::MacAdmin,
    Capability::MacOverride,
    Capability::Mknod,
    Capability::NetAdmin,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetRaw,
    Capability::Perfmon,
    Capability::Setgid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysChroot,
    Capability::SysModule,
    Capability::SysNice,
    Capability::SysPacct,
    Capability::SysPtrace,
    Capability::SysRawio,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Syslog,
    Capability::WakeAlarm,
];

/// Capabilities by their kernel number (`linux/capability.h`).
const BY_NUMBER: [Capability; 41] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::LinuxImmutable,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetAdmin,
    Capability::NetRaw,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::SysModule,
    Capability::SysRawio,
    Capability::SysChroot,
    Capability::SysPtrace,
    Capability::SysPacct,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysNice,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Mknod,
    Capability::Lease,
    Capability::AuditWrite,
    Capability::AuditControl,
    Capability::Setfcap,
    Capability::MacOverride,
    Capability::MacAdmin,
    Capability::Syslog,
    Capability::WakeAlarm,
    Capability::BlockSuspend,
    Capability::AuditRead,
    Capability::Perfmon,
    Capability::Bpf,
    Capability::CheckpointRestore,
];

/// The capabilities of [`ALL`] set in a `CapBnd:`-style hex mask.
fn from_mask(mask: u64) -> Capabilities {
    BY_NUMBER
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// The bounding set in the text of a `/proc/<pid>/status` file.
fn bounding_in_status(status: &str) -> Option<Capabilities> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok().map(from_mask)
}

/// Every capability the node can grant: [`ALL`] within this process's
/// bounding set (all of [`ALL`] when the set cannot be read).
pub fn node_all() -> Capabilities {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| bounding_in_status(&s))
        .unwrap_or_else(|| ALL.iter().copied().collect())
}

/// The capability sets for a container. Inheritable stays empty unless
/// ambient capabilities need it.
pub(crate) fn capabilities(
    requested: Option<&CriCapabilities>,
    privileged: bool,
) -> Result<LinuxCapabilities, SpecError> {
    capabilities_within(requested, privileged, &node_all())
}

/// [`capabilities`] on a node that can grant `all`.
fn capabilities_within(
    requested: Option<&CriCapabilities>,
    privileged: bool,
    all: &Capabilities,
) -> Result<LinuxCapabilities, SpecError> {
    let mut set: Capabilities = if privileged {
        all.clone()
    } else {
        DEFAULT.iter().copied().collect()
    };
    let mut ambient = Capabilities::new();
    if let (Some(req), false) = (requested, privileged) {
        let add = parse_list(&req.add_capabilities, "add_capabilities")?;
        let drop = parse_list(&req.drop_capabilities, "drop_capabilities")?;
        let add_ambient = parse_list(&req.add_ambient_capabilities, "add_ambient_capabilities")?;
        if add.all {
            set.extend(all.iter().copied());
        }
        if drop.all {
            set.clear();
        }
        set.extend(add.named.iter().copied());
        if add_ambient.all {
            ambient.extend(all.iter().copied());
        }
        ambient.extend(add_ambient.named.iter().copied());
        set.extend(ambient.iter().copied());
        for c in &drop.named {
            set.remove(c);
            ambient.remove(c);
        }
    }
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps.set_inheritable(Some(ambient.clone()));
    caps.set_ambient(Some(ambient));
    Ok(caps)
}

/// A parsed add or drop list.
struct List {
    all: bool,
    named: HashSet<Capability>,
}

fn parse_list(names: &[String], list: &str) -> Result<List, SpecError> {
    let mut parsed = List {
        all: false,
        named: HashSet::new(),
    };
    for (i, name) in names.iter().enumerate() {
        if name.eq_ignore_ascii_case("ALL") {
            parsed.all = true;
            continue;
        }
        parsed.named.insert(parse(name).ok_or_else(|| {
            SpecError::invalid(
                format!("{FIELD}.{list}[{i}]"),
                format!("unknown capability {name:?}"),
            )
        })?);
    }
    Ok(parsed)
}

/// A capability from `NET_ADMIN`, `CAP_NET_ADMIN` or `net_admin`.
pub(crate) fn parse(name: &str) -> Option<Capability> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    bare.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(add: &[&str], drop: &[&str], ambient: &[&str]) -> CriCapabilities {
        let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        CriCapabilities {
            add_capabilities: v(add),
            drop_capabilities: v(drop),
            add_ambient_capabilities: v(ambient),
        }
    }

    fn set(caps: &[Capability]) -> Capabilities {
        caps.iter().copied().collect()
    }

    fn effective(r: Option<&CriCapabilities>, privileged: bool) -> Capabilities {
        capabilities_within(r, privileged, &set(ALL))
            .unwrap()
            .effective()
            .clone()
            .unwrap()
    }

    #[test]
    fn default_set_when_nothing_requested() {
        let caps = capabilities(None, false).unwrap();
        assert_eq!(caps.bounding().clone().unwrap(), set(DEFAULT));
        assert_eq!(caps.permitted().clone().unwrap(), set(DEFAULT));
        assert_eq!(caps.inheritable().clone().unwrap(), set(&[]));
        assert_eq!(caps.ambient().clone().unwrap(), set(&[]));
        assert_eq!(DEFAULT.len(), 14);
    }

    #[test]
    fn add_and_drop_with_or_without_prefix_any_case() {
        let r = req(&["NET_ADMIN", "cap_sys_time"], &["CAP_KILL", "mknod"], &[]);
        let got = effective(Some(&r), false);
        assert!(got.contains(&Capability::NetAdmin));
        assert!(got.contains(&Capability::SysTime));
        assert!(!got.contains(&Capability::Kill));
        assert!(!got.contains(&Capability::Mknod));
        assert_eq!(got.len(), DEFAULT.len());
    }

    #[test]
    fn all_keywords() {
        let got = effective(Some(&req(&["ALL"], &["CHOWN"], &[])), false);
        assert_eq!(got.len(), ALL.len() - 1);
        assert!(!got.contains(&Capability::Chown));
        let got = effective(Some(&req(&["NET_BIND_SERVICE"], &["all"], &[])), false);
        assert_eq!(got, set(&[Capability::NetBindService]));
        let got = effective(Some(&req(&[], &["ALL"], &[])), false);
        assert!(got.is_empty());
    }

    #[test]
    fn ambient_goes_to_every_set_and_drop_wins() {
        let caps = capabilities(
            Some(&req(&[], &["NET_RAW"], &["NET_BIND_SERVICE", "NET_RAW"])),
            false,
        )
        .unwrap();
        let only = set(&[Capability::NetBindService]);
        assert_eq!(caps.ambient().clone().unwrap(), only);
        assert_eq!(caps.inheritable().clone().unwrap(), only);
        assert!(caps
            .bounding()
            .clone()
            .unwrap()
            .contains(&Capability::NetBindService));
        assert!(!caps
            .effective()
            .clone()
            .unwrap()
            .contains(&Capability::NetRaw));
    }

    #[test]
    fn privileged_gets_everything_ignoring_drops() {
        let got = effective(Some(&req(&[], &["ALL"], &[])), true);
        assert_eq!(got, set(ALL));
    }

    #[test]
    fn every_capability_is_bounded_by_the_node() {
        // A host whose root lacks CAP_SYS_RESOURCE (bit 24).
        let status = "Name:\tberthd\nCapInh:\t0000000000000000\nCapBnd:\t000001fffeffffff\n";
        let node = bounding_in_status(status).unwrap();
        assert_eq!(node.len(), ALL.len() - 1);
        assert!(!node.contains(&Capability::SysResource));
        let got = capabilities_within(None, true, &node).unwrap();
        assert_eq!(got.bounding().clone().unwrap(), node);
        let r = req(&["ALL"], &[], &["ALL"]);
        let got = capabilities_within(Some(&r), false, &node).unwrap();
        assert_eq!(got.effective().clone().unwrap(), node);
        assert_eq!(got.ambient().clone().unwrap(), node);
        // Named adds are the request's own: kept, for the runtime to refuse.
        let r = req(&["SYS_RESOURCE"], &[], &[]);
        let got = capabilities_within(Some(&r), false, &node).unwrap();
        assert!(got
            .effective()
            .clone()
            .unwrap()
            .contains(&Capability::SysResource));
    }

    #[test]
    fn numbers_cover_every_capability_once() {
        assert_eq!(from_mask(u64::MAX), set(ALL));
        assert_eq!(BY_NUMBER.len(), ALL.len());
        assert_eq!(from_mask(1 << 21), set(&[Capability::SysAdmin]));
        assert_eq!(from_mask(1 << 40), set(&[Capability::CheckpointRestore]));
        assert!(bounding_in_status("Name:\tx\n").is_none());
    }

    #[test]
    fn unknown_capability_names_its_index() {
        let err = capabilities(Some(&req(&["NET_ADMIN", "CAP_FOO"], &[], &[])), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config.linux.security_context.capabilities.add_capabilities[1]: unknown capability \"CAP_FOO\""
        );
        let err = capabilities(Some(&req(&[], &[], &["BOGUS"])), false).unwrap_err();
        assert_eq!(
            err.field(),
            Some("config.linux.security_context.capabilities.add_ambient_capabilities[0]")
        );
    }
}
