//! The process's capability sets: the default set (what Kubernetes runtimes
//! give an unprivileged container) changed by the request's add/drop lists
//! ("ALL" allowed, names with or without `CAP_`, any case), or every
//! capability for a privileged container. Order: add ALL, drop ALL, then the
//! named adds, then the named drops; ambient adds go to every set.

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

/// The capability sets for a container. Inheritable stays empty unless
/// ambient capabilities need it.
pub(crate) fn capabilities(
    requested: Option<&CriCapabilities>,
    privileged: bool,
) -> Result<LinuxCapabilities, SpecError> {
    let mut set: Capabilities = if privileged { ALL } else { DEFAULT }
        .iter()
        .copied()
        .collect();
    let mut ambient = Capabilities::new();
    if let (Some(req), false) = (requested, privileged) {
        let add = parse_list(&req.add_capabilities, "add_capabilities")?;
        let drop = parse_list(&req.drop_capabilities, "drop_capabilities")?;
        let add_ambient = parse_list(&req.add_ambient_capabilities, "add_ambient_capabilities")?;
        if add.all {
            set.extend(ALL.iter().copied());
        }
        if drop.all {
            set.clear();
        }
        set.extend(add.named.iter().copied());
        if add_ambient.all {
            ambient.extend(ALL.iter().copied());
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
        capabilities(r, privileged)
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
