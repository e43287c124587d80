//! Security settings as kubelet hands them to the runtime: the sandbox's
//! namespace options (hostNetwork/hostPID/hostIPC, shareProcessNamespace),
//! user, groups (fsGroup, supplementalGroups) and sysctls; each container's
//! effective security context (the container's fields over the pod's) as
//! capabilities, privileged, read-only rootfs, no_new_privs, user/group,
//! seccomp profile and masked paths, plus `runAsNonRoot` for the runner to
//! check against the image's user.

use std::collections::{BTreeSet, HashMap};

use berth_proto::v1::{
    security_profile::ProfileType, Capability, Int64Value, LinuxContainerSecurityContext,
    LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption, SecurityProfile,
    SupplementalGroupsPolicy,
};
use k8s_openapi::api::core::v1::{Container, PodSecurityContext, PodSpec, SeccompProfile};

use super::field::{Errors, FieldPath};
use super::names;
use super::options::PlanOptions;

/// `/proc` and `/sys` paths a container with the default procMount does not
/// see (kubelet's `DefaultMaskedPaths`).
pub const DEFAULT_MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
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

/// Paths it sees read-only (kubelet's `DefaultReadonlyPaths`).
pub const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// kubelet's `NamespacesForPod`.
pub fn namespace_options(spec: &PodSpec) -> NamespaceOption {
    let mode = |host: Option<bool>, otherwise: NamespaceMode| {
        if host == Some(true) {
            NamespaceMode::Node as i32
        } else {
            otherwise as i32
        }
    };
    let pid_otherwise = if spec.share_process_namespace == Some(true) {
        NamespaceMode::Pod
    } else {
        NamespaceMode::Container
    };
    NamespaceOption {
        network: mode(spec.host_network, NamespaceMode::Pod),
        pid: mode(spec.host_pid, pid_otherwise),
        ipc: mode(spec.host_ipc, NamespaceMode::Pod),
        ..Default::default()
    }
}

/// Checks the pod-level fields that are about namespaces and users.
pub fn validate_pod(spec: &PodSpec, path: &FieldPath, errs: &mut Errors) {
    if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
        errs.add(
            &path.child("shareProcessNamespace"),
            "ShareProcessNamespace and HostPID cannot both be enabled",
        );
    }
    if spec.host_users == Some(false) {
        errs.add(
            &path.child("hostUsers"),
            "user namespaces for pods are not supported by berth yet",
        );
    }
    let Some(sc) = &spec.security_context else {
        return;
    };
    let sp = path.child("securityContext");
    for (field, v) in [
        ("runAsUser", sc.run_as_user),
        ("runAsGroup", sc.run_as_group),
        ("fsGroup", sc.fs_group),
    ] {
        id_range(&sp.child(field), v, errs);
    }
    for (i, g) in sc.supplemental_groups.iter().flatten().enumerate() {
        id_range(&sp.child("supplementalGroups").index(i), Some(*g), errs);
    }
    if let Some(p) = sc.supplemental_groups_policy.as_deref() {
        if supplemental_policy(p).is_none() {
            errs.unsupported(
                &sp.child("supplementalGroupsPolicy"),
                p,
                &["Merge", "Strict"],
            );
        }
    }
    if let Some(policy) = sc.fs_group_change_policy.as_deref() {
        if !["Always", "OnRootMismatch"].contains(&policy) {
            errs.unsupported(
                &sp.child("fsGroupChangePolicy"),
                policy,
                &["OnRootMismatch", "Always"],
            );
        }
    }
    if sc.run_as_non_root == Some(true) && sc.run_as_user == Some(0) {
        errs.add(
            &sp.child("runAsUser"),
            "runAsNonRoot is true but runAsUser is 0",
        );
    }
    if let Some(p) = &sc.seccomp_profile {
        seccomp_check(p, &sp.child("seccompProfile"), errs);
    }
    sysctls(spec, sc, &sp.child("sysctls"), errs);
}

fn id_range(path: &FieldPath, v: Option<i64>, errs: &mut Errors) {
    if let Some(v) = v {
        if !(0..=i64::from(i32::MAX)).contains(&v) {
            errs.add(path, "must be between 0 and 2147483647, inclusive");
        }
    }
}

fn supplemental_policy(p: &str) -> Option<SupplementalGroupsPolicy> {
    match p {
        "Merge" => Some(SupplementalGroupsPolicy::Merge),
        "Strict" => Some(SupplementalGroupsPolicy::Strict),
        _ => None,
    }
}

/// Which namespace a sysctl belongs to: "net" or "ipc"; `None` for a
/// node-wide one.
fn sysctl_namespace(name: &str) -> Option<&'static str> {
    let name = name.replace('/', ".");
    if name.starts_with("net.") {
        Some("net")
    } else if name.starts_with("kernel.shm")
        || name.starts_with("kernel.msg")
        || name == "kernel.sem"
        || name.starts_with("fs.mqueue.")
    {
        Some("ipc")
    } else {
        None
    }
}

fn sysctls(spec: &PodSpec, sc: &PodSecurityContext, path: &FieldPath, errs: &mut Errors) {
    let mut seen = BTreeSet::new();
    for (i, s) in sc.sysctls.iter().flatten().enumerate() {
        let p = path.index(i).child("name");
        let valid = !s.name.is_empty()
            && s.name.split(['.', '/']).all(|part| {
                !part.is_empty()
                    && part.bytes().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-'
                    })
            });
        if !valid {
            errs.add(&p, format!("{:?} is not a valid sysctl name", s.name));
            continue;
        }
        if !seen.insert(s.name.replace('/', ".")) {
            errs.duplicate(&p, &s.name);
            continue;
        }
        match sysctl_namespace(&s.name) {
            None => errs.add(
                &p,
                format!(
                    "sysctl {:?} is not namespaced: it would change the node",
                    s.name
                ),
            ),
            Some("net") if spec.host_network == Some(true) => errs.add(
                &p,
                format!("sysctl {:?} not allowed with host net enabled", s.name),
            ),
            Some("ipc") if spec.host_ipc == Some(true) => errs.add(
                &p,
                format!("sysctl {:?} not allowed with host ipc enabled", s.name),
            ),
            Some(_) => {}
        }
    }
}

fn seccomp_check(p: &SeccompProfile, path: &FieldPath, errs: &mut Errors) {
    let lp = path.child("localhostProfile");
    match p.type_.as_str() {
        "Localhost" => match p.localhost_profile.as_deref() {
            None | Some("") => errs.add(&lp, "must be set when seccomp type is Localhost"),
            Some(f) => {
                if let Err(e) = names::local_descending_path(f) {
                    errs.add(&lp, e);
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if p.localhost_profile.is_some() {
                errs.add(&lp, "can only be set when seccomp type is Localhost");
            }
        }
        t => errs.unsupported(
            &path.child("type"),
            t,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        ),
    }
}

fn seccomp_profile(p: &SeccompProfile, opts: &PlanOptions) -> SecurityProfile {
    let (t, r) = match p.type_.as_str() {
        "Localhost" => (
            ProfileType::Localhost,
            opts.seccomp_root
                .join(p.localhost_profile.as_deref().unwrap_or_default())
                .to_string_lossy()
                .into_owned(),
        ),
        "RuntimeDefault" => (ProfileType::RuntimeDefault, String::new()),
        _ => (ProfileType::Unconfined, String::new()),
    };
    SecurityProfile {
        profile_type: t as i32,
        localhost_ref: r,
    }
}

/// The pod's groups: fsGroup first, then supplementalGroups.
fn pod_groups(spec: &PodSpec) -> Vec<i64> {
    let sc = spec.security_context.as_ref();
    sc.and_then(|s| s.fs_group)
        .into_iter()
        .chain(
            sc.and_then(|s| s.supplemental_groups.clone())
                .into_iter()
                .flatten(),
        )
        .collect()
}

/// The sandbox's security context and sysctls.
pub fn sandbox_security(spec: &PodSpec) -> (LinuxSandboxSecurityContext, HashMap<String, String>) {
    let sc = spec.security_context.as_ref();
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    let privileged = all
        .filter_map(|c| c.security_context.as_ref())
        .any(|s| s.privileged == Some(true));
    let ctx = LinuxSandboxSecurityContext {
        namespace_options: Some(namespace_options(spec)),
        run_as_user: sc
            .and_then(|s| s.run_as_user)
            .map(|value| Int64Value { value }),
        run_as_group: sc
            .and_then(|s| s.run_as_group)
            .map(|value| Int64Value { value }),
        supplemental_groups: pod_groups(spec),
        supplemental_groups_policy: sc
            .and_then(|s| s.supplemental_groups_policy.as_deref())
            .and_then(supplemental_policy)
            .unwrap_or(SupplementalGroupsPolicy::Merge) as i32,
        privileged,
        // As kubelet: the sandbox always gets the runtime's default profile.
        seccomp: Some(SecurityProfile {
            profile_type: ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        }),
        ..Default::default()
    };
    let sysctls = sc
        .and_then(|s| s.sysctls.as_ref())
        .into_iter()
        .flatten()
        .map(|s| (s.name.clone(), s.value.clone()))
        .collect();
    (ctx, sysctls)
}

/// A container's security settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSecurity {
    pub context: LinuxContainerSecurityContext,
    /// The effective `runAsNonRoot`: the runner refuses to start the
    /// container if its user (from here or the image) is root.
    pub run_as_non_root: bool,
}

/// The container's effective security context (kubelet's
/// `determineEffectiveSecurityContext` + `convertToRuntimeSecurityContext`),
/// errors under `path` (the container).
pub fn container_security(
    spec: &PodSpec,
    container: &Container,
    opts: &PlanOptions,
    path: &FieldPath,
    errs: &mut Errors,
) -> ContainerSecurity {
    let pod = spec.security_context.clone().unwrap_or_default();
    let c = container.security_context.clone().unwrap_or_default();
    let sp = path.child("securityContext");
    let run_as_user = c.run_as_user.or(pod.run_as_user);
    let run_as_group = c.run_as_group.or(pod.run_as_group);
    let run_as_non_root = c.run_as_non_root.or(pod.run_as_non_root) == Some(true);
    id_range(&sp.child("runAsUser"), c.run_as_user, errs);
    id_range(&sp.child("runAsGroup"), c.run_as_group, errs);
    if run_as_non_root && run_as_user == Some(0) {
        errs.add(
            &sp.child("runAsUser"),
            "runAsNonRoot is true but runAsUser is 0",
        );
    }
    let privileged = c.privileged == Some(true);
    let caps = c.capabilities.clone().unwrap_or_default();
    let add = caps.add.unwrap_or_default();
    let drop = caps.drop.unwrap_or_default();
    if c.allow_privilege_escalation == Some(false) {
        if privileged {
            errs.add(
                &sp.child("allowPrivilegeEscalation"),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            );
        }
        if add.iter().any(|a| {
            a.trim_start_matches("CAP_")
                .eq_ignore_ascii_case("SYS_ADMIN")
        }) {
            errs.add(
                &sp.child("allowPrivilegeEscalation"),
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            );
        }
    }
    let unmasked = match c.proc_mount.as_deref() {
        None | Some("Default") => false,
        Some("Unmasked") => {
            if spec.host_users != Some(false) {
                errs.add(
                    &sp.child("procMount"),
                    "`hostUsers` must be false to use `Unmasked`",
                );
            }
            true
        }
        Some(other) => {
            errs.unsupported(&sp.child("procMount"), other, &["Default", "Unmasked"]);
            false
        }
    };
    if let Some(p) = &c.seccomp_profile {
        seccomp_check(p, &sp.child("seccompProfile"), errs);
    }
    let seccomp = match c.seccomp_profile.as_ref().or(pod.seccomp_profile.as_ref()) {
        Some(p) => seccomp_profile(p, opts),
        None => SecurityProfile {
            profile_type: if opts.seccomp_default {
                ProfileType::RuntimeDefault
            } else {
                ProfileType::Unconfined
            } as i32,
            localhost_ref: String::new(),
        },
    };
    let paths = |list: &[&str]| {
        if unmasked {
            Vec::new()
        } else {
            list.iter().map(|s| s.to_string()).collect()
        }
    };
    let context = LinuxContainerSecurityContext {
        capabilities: Some(Capability {
            add_capabilities: add,
            drop_capabilities: drop,
            add_ambient_capabilities: Vec::new(),
        }),
        privileged,
        namespace_options: Some(namespace_options(spec)),
        run_as_user: run_as_user.map(|value| Int64Value { value }),
        run_as_group: run_as_group.map(|value| Int64Value { value }),
        readonly_rootfs: c.read_only_root_filesystem == Some(true),
        supplemental_groups: pod_groups(spec),
        supplemental_groups_policy: pod
            .supplemental_groups_policy
            .as_deref()
            .and_then(supplemental_policy)
            .unwrap_or(SupplementalGroupsPolicy::Merge) as i32,
        no_new_privs: c.allow_privilege_escalation == Some(false),
        masked_paths: paths(&DEFAULT_MASKED_PATHS),
        readonly_paths: paths(&DEFAULT_READONLY_PATHS),
        seccomp: Some(seccomp),
        ..Default::default()
    };
    ContainerSecurity {
        context,
        run_as_non_root,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Capabilities, SecurityContext, Sysctl};

    fn spec() -> PodSpec {
        PodSpec {
            containers: vec![Container {
                name: "c".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn namespaces() {
        let mut s = spec();
        let n = namespace_options(&s);
        assert_eq!(
            (n.network, n.pid, n.ipc),
            (
                NamespaceMode::Pod as i32,
                NamespaceMode::Container as i32,
                NamespaceMode::Pod as i32
            )
        );
        s.share_process_namespace = Some(true);
        assert_eq!(namespace_options(&s).pid, NamespaceMode::Pod as i32);
        s.host_network = Some(true);
        s.host_pid = Some(true);
        s.host_ipc = Some(true);
        let n = namespace_options(&s);
        assert_eq!(
            (n.network, n.pid, n.ipc),
            (
                NamespaceMode::Node as i32,
                NamespaceMode::Node as i32,
                NamespaceMode::Node as i32
            )
        );
        let mut e = Errors::new();
        validate_pod(&s, &FieldPath::root("spec"), &mut e);
        assert_eq!(
            e.to_string(),
            "spec.shareProcessNamespace: ShareProcessNamespace and HostPID cannot both be enabled"
        );
    }

    #[test]
    fn sandbox_context_like_kubelet() {
        let mut s = spec();
        s.security_context = Some(PodSecurityContext {
            run_as_user: Some(1000),
            run_as_group: Some(3000),
            fs_group: Some(2000),
            supplemental_groups: Some(vec![4000, 5000]),
            sysctls: Some(vec![Sysctl {
                name: "net.ipv4.ip_unprivileged_port_start".into(),
                value: "0".into(),
            }]),
            ..Default::default()
        });
        s.containers[0].security_context = Some(SecurityContext {
            privileged: Some(true),
            ..Default::default()
        });
        let (sc, sysctls) = sandbox_security(&s);
        assert_eq!(sc.run_as_user, Some(Int64Value { value: 1000 }));
        assert_eq!(sc.run_as_group, Some(Int64Value { value: 3000 }));
        assert_eq!(sc.supplemental_groups, [2000, 4000, 5000]);
        assert!(sc.privileged);
        assert_eq!(
            sc.seccomp.unwrap().profile_type,
            ProfileType::RuntimeDefault as i32
        );
        assert_eq!(sysctls["net.ipv4.ip_unprivileged_port_start"], "0");
    }

    #[test]
    fn sysctl_checks() {
        let mut s = spec();
        s.host_network = Some(true);
        let sysctl = |n: &str| Sysctl {
            name: n.into(),
            value: "1".into(),
        };
        s.security_context = Some(PodSecurityContext {
            sysctls: Some(vec![
                sysctl("net.core.somaxconn"),
                sysctl("kernel.shm_rmid_forced"),
                sysctl("kernel.shm_rmid_forced"),
                sysctl("vm.swappiness"),
                sysctl("Bad Name"),
            ]),
            ..Default::default()
        });
        let mut e = Errors::new();
        validate_pod(&s, &FieldPath::root("spec"), &mut e);
        let v: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(v.len(), 4, "{v:?}");
        assert!(v[0].starts_with("spec.securityContext.sysctls[0].name: sysctl \"net.core.somaxconn\" not allowed with host net"));
        assert!(v[1].starts_with("spec.securityContext.sysctls[2].name: duplicate value"));
        assert!(v[2].contains("not namespaced"));
        assert!(v[3].contains("not a valid sysctl name"));
    }

    #[test]
    fn container_context_merges_over_pod() {
        let mut s = spec();
        s.security_context = Some(PodSecurityContext {
            run_as_user: Some(1000),
            run_as_non_root: Some(true),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            fs_group: Some(7),
            ..Default::default()
        });
        s.containers[0].security_context = Some(SecurityContext {
            run_as_group: Some(50),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_ADMIN".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            ..Default::default()
        });
        let mut e = Errors::new();
        let c = s.containers[0].clone();
        let sec = container_security(
            &s,
            &c,
            &PlanOptions::default(),
            &FieldPath::root("c"),
            &mut e,
        );
        assert!(e.is_empty(), "{e}");
        let x = sec.context;
        assert!(sec.run_as_non_root);
        assert_eq!(x.run_as_user.unwrap().value, 1000);
        assert_eq!(x.run_as_group.unwrap().value, 50);
        assert!(x.no_new_privs && x.readonly_rootfs && !x.privileged);
        let caps = x.capabilities.unwrap();
        assert_eq!(
            (caps.add_capabilities, caps.drop_capabilities),
            (vec!["NET_ADMIN".to_string()], vec!["ALL".to_string()])
        );
        assert_eq!(
            x.seccomp.unwrap().profile_type,
            ProfileType::RuntimeDefault as i32
        );
        assert_eq!(x.supplemental_groups, [7]);
        assert_eq!(x.masked_paths.len(), DEFAULT_MASKED_PATHS.len());
        assert_eq!(x.readonly_paths.len(), DEFAULT_READONLY_PATHS.len());
    }

    #[test]
    fn seccomp_choices() {
        let mut s = spec();
        let opts = PlanOptions::default();
        let get = |s: &PodSpec, o: &PlanOptions| {
            let mut e = Errors::new();
            let r = container_security(s, &s.containers[0], o, &FieldPath::root("c"), &mut e)
                .context
                .seccomp
                .unwrap();
            (r, e)
        };
        assert_eq!(
            get(&s, &opts).0.profile_type,
            ProfileType::Unconfined as i32
        );
        let o2 = PlanOptions {
            seccomp_default: true,
            ..PlanOptions::default()
        };
        assert_eq!(
            get(&s, &o2).0.profile_type,
            ProfileType::RuntimeDefault as i32
        );
        s.containers[0].security_context = Some(SecurityContext {
            seccomp_profile: Some(SeccompProfile {
                type_: "Localhost".into(),
                localhost_profile: Some("profiles/audit.json".into()),
            }),
            ..Default::default()
        });
        let (p, e) = get(&s, &opts);
        assert!(e.is_empty());
        assert_eq!(p.profile_type, ProfileType::Localhost as i32);
        assert_eq!(
            p.localhost_ref,
            "/var/lib/berth/seccomp/profiles/audit.json"
        );
        s.containers[0].security_context = Some(SecurityContext {
            seccomp_profile: Some(SeccompProfile {
                type_: "Localhost".into(),
                localhost_profile: Some("../x".into()),
            }),
            privileged: Some(true),
            allow_privilege_escalation: Some(false),
            proc_mount: Some("Unmasked".into()),
            ..Default::default()
        });
        let (_, e) = get(&s, &opts);
        let s = e.to_string();
        assert!(
            s.contains("c.securityContext.allowPrivilegeEscalation: cannot set"),
            "{s}"
        );
        assert!(
            s.contains("c.securityContext.procMount: `hostUsers` must be false"),
            "{s}"
        );
        assert!(
            s.contains("c.securityContext.seccompProfile.localhostProfile: must not contain '..'"),
            "{s}"
        );
    }
}
