//! The device allow/deny list: the spec's `linux.resources.devices` rules
//! followed by the defaults every container needs (null, zero, full, tty,
//! random, urandom, ptmx, pts/*, and mknod of any char or block device), so
//! a spec that only says "deny all" still gives a working container.
//! v1 writes `devices.allow`/`devices.deny`; v2 attaches an eBPF program.

use cgroups_rs::fs::devices::{DevicePermissions, DeviceType, DevicesController};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::{bpf, device_filter, CgroupError, CgroupManager};

/// What a rule matches on the device type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceKind {
    All,
    Char,
    Block,
}

/// Access bits, with the kernel's values (`BPF_DEVCG_ACC_*`).
pub(crate) const ACCESS_MKNOD: u32 = 1;
pub(crate) const ACCESS_READ: u32 = 2;
pub(crate) const ACCESS_WRITE: u32 = 4;
pub(crate) const ACCESS_ALL: u32 = ACCESS_MKNOD | ACCESS_READ | ACCESS_WRITE;

/// One rule in the kernel's terms; `None` numbers match any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// `ACCESS_*` bits.
    pub access: u32,
}

const fn allow_char(major: u32, minor: Option<u32>) -> DeviceRule {
    DeviceRule {
        allow: true,
        kind: DeviceKind::Char,
        major: Some(major),
        minor,
        access: ACCESS_ALL,
    }
}

const fn allow_mknod(kind: DeviceKind) -> DeviceRule {
    DeviceRule {
        allow: true,
        kind,
        major: None,
        minor: None,
        access: ACCESS_MKNOD,
    }
}

/// The devices every container gets, after the spec's rules.
pub(crate) const DEFAULT_RULES: [DeviceRule; 10] = [
    allow_mknod(DeviceKind::Char),
    allow_mknod(DeviceKind::Block),
    allow_char(1, Some(3)), // /dev/null
    allow_char(1, Some(5)), // /dev/zero
    allow_char(1, Some(7)), // /dev/full
    allow_char(5, Some(0)), // /dev/tty
    allow_char(1, Some(8)), // /dev/random
    allow_char(1, Some(9)), // /dev/urandom
    allow_char(5, Some(2)), // /dev/ptmx
    allow_char(136, None),  // /dev/pts/*
];

/// The spec's rules in kernel terms, then [`DEFAULT_RULES`]. Rules for
/// FIFOs (`p`) have no meaning to the device controller and are dropped.
pub(crate) fn rules_with_defaults(spec: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, String> {
    let mut rules = Vec::with_capacity(spec.len() + DEFAULT_RULES.len());
    for rule in spec {
        let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DeviceKind::All,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::P => continue,
        };
        rules.push(DeviceRule {
            allow: rule.allow(),
            kind,
            major: device_number(rule.major())?,
            minor: device_number(rule.minor())?,
            access: parse_access(rule.access().as_deref().unwrap_or("rwm"))?,
        });
    }
    rules.extend(DEFAULT_RULES);
    Ok(rules)
}

/// `None` or `-1` match any number.
fn device_number(n: Option<i64>) -> Result<Option<u32>, String> {
    match n {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| format!("device number {n} is out of range")),
    }
}

/// `rwm` letters to `ACCESS_*` bits; empty means all.
fn parse_access(access: &str) -> Result<u32, String> {
    let mut bits = 0;
    for c in access.chars() {
        bits |= match c {
            'r' => ACCESS_READ,
            'w' => ACCESS_WRITE,
            'm' => ACCESS_MKNOD,
            _ => return Err(format!("device access {access:?} has {c:?}; only r, w, m")),
        };
    }
    Ok(if bits == 0 { ACCESS_ALL } else { bits })
}

impl CgroupManager {
    pub(super) fn apply_devices(&self, spec: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
        let rules = rules_with_defaults(spec).map_err(|reason| CgroupError::InvalidValue {
            cgroup: self.path.clone(),
            resource: "devices",
            reason,
        })?;
        if self.is_v2() {
            let program = device_filter::program(&rules);
            return bpf::attach_device_filter(&self.path, &self.v2_dir(), &program);
        }
        let ctl = self.require::<DevicesController>("devices", "devices")?;
        for rule in &rules {
            let kind = match rule.kind {
                DeviceKind::All => DeviceType::All,
                DeviceKind::Char => DeviceType::Char,
                DeviceKind::Block => DeviceType::Block,
            };
            let number = |n: Option<u32>| n.map_or(-1, i64::from);
            let perms = permissions(rule.access);
            let (major, minor) = (number(rule.major), number(rule.minor));
            let written = if rule.allow {
                ctl.allow_device(kind, major, minor, &perms)
            } else {
                ctl.deny_device(kind, major, minor, &perms)
            };
            written.map_err(self.crate_err("devices"))?;
        }
        Ok(())
    }
}

/// `ACCESS_*` bits as the crate's permission list.
fn permissions(access: u32) -> Vec<DevicePermissions> {
    [
        (ACCESS_READ, DevicePermissions::Read),
        (ACCESS_WRITE, DevicePermissions::Write),
        (ACCESS_MKNOD, DevicePermissions::MkNod),
    ]
    .into_iter()
    .filter(|(bit, _)| access & bit != 0)
    .map(|(_, perm)| perm)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_rules_come_first_then_defaults() {
        let deny_all: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap();
        let loop0: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":true,"type":"b","major":7,"minor":0,"access":"rw"}"#)
                .unwrap();
        let rules = rules_with_defaults(&[deny_all, loop0]).unwrap();
        assert_eq!(rules.len(), 2 + DEFAULT_RULES.len());
        assert_eq!(
            rules[0],
            DeviceRule {
                allow: false,
                kind: DeviceKind::All,
                major: None,
                minor: None,
                access: ACCESS_ALL
            }
        );
        assert_eq!(rules[1].major, Some(7));
        assert_eq!(rules[1].access, ACCESS_READ | ACCESS_WRITE);
        assert_eq!(rules[2..], DEFAULT_RULES);
    }

    #[test]
    fn bad_access_is_refused() {
        let bad: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":true,"access":"rx"}"#).unwrap();
        assert!(rules_with_defaults(&[bad]).is_err());
    }
}
