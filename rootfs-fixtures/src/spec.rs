//! The default OCI runtime config of a fixture bundle: the same as a low-level
//! runtime's stock `spec` command writes (read-only root, the seven default
//! mounts, masked and read-only paths, three capabilities, NOFILE 1024, the
//! pid/network/ipc/uts/mount namespaces, devices denied), but without a terminal.

use oci_spec::runtime::{LinuxCapabilities, LinuxDeviceCgroup, LinuxNamespaceType, Spec};

/// The hostname set in fixture bundles.
pub const FIXTURE_HOSTNAME: &str = "berth";

/// A runtime spec that runs `args` (no terminal) in the bundle's `rootfs`.
pub fn default_spec(args: &[&str]) -> Spec {
    let mut spec = Spec::default();
    spec.set_hostname(Some(FIXTURE_HOSTNAME.to_string()));
    spec.set_annotations(None);
    if let Some(process) = spec.process_mut() {
        process.set_terminal(Some(false));
        process.set_args(Some(args.iter().map(|arg| arg.to_string()).collect()));
        if let Some(caps) = process.capabilities().clone() {
            process.set_capabilities(Some(without_inheritable(caps)));
        }
    }
    if let Some(linux) = spec.linux_mut() {
        if let Some(namespaces) = linux.namespaces_mut() {
            namespaces.retain(|namespace| namespace.typ() != LinuxNamespaceType::Cgroup);
        }
        if let Some(resources) = linux.resources_mut() {
            resources.set_devices(Some(vec![deny_all_devices()]));
        }
    }
    spec
}

/// The capability sets with the inheritable set dropped, as runtimes default to.
fn without_inheritable(mut caps: LinuxCapabilities) -> LinuxCapabilities {
    caps.set_inheritable(None);
    caps
}

/// The device cgroup rule `deny all, rwm`.
fn deny_all_devices() -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(false);
    rule.set_access(Some("rwm".to_string()));
    rule
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_and_no_terminal() {
        let spec = default_spec(&["/bin/echo", "hi"]);
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.args().as_ref().unwrap(), &["/bin/echo", "hi"]);
        assert_eq!(process.terminal(), Some(false));
        assert_eq!(spec.hostname().as_deref(), Some(FIXTURE_HOSTNAME));
    }

    #[test]
    fn namespaces_match_the_stock_spec() {
        let spec = default_spec(&["true"]);
        let kinds: Vec<LinuxNamespaceType> = spec
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|namespace| namespace.typ())
            .collect();
        assert_eq!(
            kinds,
            [
                LinuxNamespaceType::Pid,
                LinuxNamespaceType::Network,
                LinuxNamespaceType::Ipc,
                LinuxNamespaceType::Uts,
                LinuxNamespaceType::Mount,
            ]
        );
    }

    #[test]
    fn devices_denied_and_no_inheritable_caps() {
        let json = serde_json::to_value(default_spec(&["true"])).unwrap();
        assert_eq!(
            json["linux"]["resources"]["devices"],
            serde_json::json!([{"allow": false, "access": "rwm"}])
        );
        let caps = &json["process"]["capabilities"];
        assert!(caps.get("inheritable").is_none());
        assert_eq!(caps["bounding"].as_array().unwrap().len(), 3);
        assert_eq!(json["mounts"].as_array().unwrap().len(), 7);
        assert_eq!(json["linux"]["maskedPaths"].as_array().unwrap().len(), 10);
        assert_eq!(json["linux"]["readonlyPaths"].as_array().unwrap().len(), 5);
        assert_eq!(json["root"]["readonly"], true);
    }
}
