//! `linux.maskedPaths` and `linux.readonlyPaths`: the request's lists, the
//! defaults when the request gives none, nothing for privileged containers.

use berth_proto::v1::LinuxContainerSecurityContext;

/// Paths hidden from unprivileged containers by default.
pub const DEFAULT_MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths read-only in unprivileged containers by default.
pub const DEFAULT_READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `(masked, readonly)` paths.
pub(crate) fn masked_and_readonly(
    sc: Option<&LinuxContainerSecurityContext>,
    privileged: bool,
) -> (Vec<String>, Vec<String>) {
    if privileged {
        return (Vec::new(), Vec::new());
    }
    let pick = |requested: Option<&Vec<String>>, default: &[&str]| match requested {
        Some(list) if !list.is_empty() => list.clone(),
        _ => default.iter().map(|p| p.to_string()).collect(),
    };
    (
        pick(sc.map(|sc| &sc.masked_paths), DEFAULT_MASKED),
        pick(sc.map(|sc| &sc.readonly_paths), DEFAULT_READONLY),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_request_lists_and_privileged() {
        let (m, r) = masked_and_readonly(None, false);
        assert_eq!(m.len(), DEFAULT_MASKED.len());
        assert_eq!(r.len(), DEFAULT_READONLY.len());
        let sc = LinuxContainerSecurityContext {
            masked_paths: vec!["/proc/x".into()],
            ..Default::default()
        };
        let (m, r) = masked_and_readonly(Some(&sc), false);
        assert_eq!(m, ["/proc/x"]);
        assert_eq!(r.len(), DEFAULT_READONLY.len());
        let (m, r) = masked_and_readonly(Some(&sc), true);
        assert!(m.is_empty() && r.is_empty());
    }
}
