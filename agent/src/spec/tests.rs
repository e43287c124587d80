//! Whole-spec tests: a realistic CreateContainer request becomes a spec that
//! serializes, parses back, loads as a bundle in berth-runtime and carries
//! the expected fields; bad requests fail naming the field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use berth_proto::v1::security_profile::ProfileType;
use berth_proto::v1::{
    Capability as CriCapabilities, ContainerConfig, ContainerMetadata, Device, DnsConfig,
    ImageSpec, Int64Value, KeyValue, LinuxContainerConfig, LinuxContainerResources,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    Mount as CriMount, MountPropagation, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, SecurityProfile,
};
use oci_spec::image::{ConfigBuilder, ImageConfiguration, ImageConfigurationBuilder};
use oci_spec::runtime::{Capability, LinuxNamespaceType, Spec};

use super::*;

struct Fixture {
    rootfs: tempfile::TempDir,
    volume: tempfile::TempDir,
    pod_dir: tempfile::TempDir,
    dev: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let rootfs = tempfile::tempdir().unwrap();
    std::fs::create_dir(rootfs.path().join("etc")).unwrap();
    std::fs::write(
        rootfs.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        rootfs.path().join("etc/group"),
        "root:x:0:\nwww:x:33:\nlogs:x:4:www\n",
    )
    .unwrap();
    Fixture {
        rootfs,
        volume: tempfile::tempdir().unwrap(),
        pod_dir: tempfile::tempdir().unwrap(),
        dev: tempfile::tempdir().unwrap(),
    }
}

fn sandbox(network: NamespaceMode) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "web-0".into(),
            uid: "0b5c-uid".into(),
            namespace: "prod".into(),
            attempt: 0,
        }),
        hostname: "web-0".into(),
        dns_config: Some(DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec!["prod.svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: "/kubepods/burstable/pod0b5c".into(),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: network as i32,
                    pid: NamespaceMode::Container as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            sysctls: [(
                "net.ipv4.ip_unprivileged_port_start".to_string(),
                "0".to_string(),
            )]
            .into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn info(f: &Fixture) -> SandboxInfo {
    SandboxInfo {
        pod_id: "pod0b5c".into(),
        pause_pid: 4242,
        netns_path: Some("/run/netns/berth-pod0b5c".into()),
        pod_dir: f.pod_dir.path().to_path_buf(),
        cgroup_parent: "/kubepods/burstable/pod0b5c".into(),
        target_pid: None,
    }
}

fn image() -> ImageConfiguration {
    let config = ConfigBuilder::default()
        .entrypoint(vec!["/docker-entrypoint.sh".to_string()])
        .cmd(vec![
            "nginx".to_string(),
            "-g".to_string(),
            "daemon off;".to_string(),
        ])
        .env(vec![
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            "NGINX_VERSION=1.27".to_string(),
        ])
        .working_dir("/srv".to_string())
        .user("www".to_string())
        .build()
        .unwrap();
    ImageConfigurationBuilder::default()
        .config(config)
        .build()
        .unwrap()
}

fn request(f: &Fixture) -> ContainerConfig {
    let sc = LinuxContainerSecurityContext {
        capabilities: Some(CriCapabilities {
            add_capabilities: vec!["NET_ADMIN".into()],
            drop_capabilities: vec!["MKNOD".into()],
            add_ambient_capabilities: vec![],
        }),
        namespace_options: sandbox(NamespaceMode::Pod)
            .linux
            .and_then(|l| l.security_context)
            .and_then(|s| s.namespace_options),
        run_as_group: None,
        supplemental_groups: vec![2000],
        no_new_privs: true,
        readonly_rootfs: true,
        seccomp: Some(SecurityProfile {
            profile_type: ProfileType::RuntimeDefault as i32,
            localhost_ref: String::new(),
        }),
        ..Default::default()
    };
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "nginx".into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: "sha256:feed".into(),
            user_specified_image: "nginx:1.27".into(),
            ..Default::default()
        }),
        args: vec!["nginx".into(), "-T".into()],
        envs: vec![KeyValue {
            key: "NGINX_VERSION".into(),
            value: "override".into(),
        }],
        mounts: vec![
            CriMount {
                container_path: "/usr/share/nginx/html".into(),
                host_path: f.volume.path().to_str().unwrap().into(),
                readonly: true,
                ..Default::default()
            },
            CriMount {
                container_path: "/var/log/nginx".into(),
                host_path: f.volume.path().to_str().unwrap().into(),
                propagation: MountPropagation::PropagationHostToContainer as i32,
                ..Default::default()
            },
        ],
        devices: vec![Device {
            container_path: "/dev/fuse-like".into(),
            host_path: "/dev/null".into(),
            permissions: "rw".into(),
        }],
        annotations: [(
            "io.kubernetes.container.hash".to_string(),
            "abc".to_string(),
        )]
        .into(),
        tty: true,
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                cpu_shares: 256,
                cpu_quota: 20_000,
                cpu_period: 100_000,
                memory_limit_in_bytes: 128 << 20,
                oom_score_adj: 969,
                ..Default::default()
            }),
            security_context: Some(sc),
        }),
        ..Default::default()
    }
}

fn spec_for(
    f: &Fixture,
    sandbox: &PodSandboxConfig,
    config: &ContainerConfig,
) -> Result<Spec, SpecError> {
    build(
        sandbox,
        &info(f),
        "ctr1",
        config,
        &image(),
        f.rootfs.path(),
        f.dev.path(),
    )
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn realistic_request_serializes_parses_and_loads_as_a_bundle() {
    let f = fixture();
    let spec = spec_for(&f, &sandbox(NamespaceMode::Pod), &request(&f)).unwrap();

    let json = serde_json::to_string_pretty(&spec).unwrap();
    let parsed: Spec = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed, spec);

    let bundle = tempfile::tempdir().unwrap();
    spec.save(bundle.path().join("config.json")).unwrap();
    let loaded = berth_runtime::bundle::load(bundle.path()).unwrap();
    assert_eq!(loaded.spec, spec);
}

#[test]
fn realistic_request_has_the_expected_process() {
    let f = fixture();
    let spec = spec_for(&f, &sandbox(NamespaceMode::Pod), &request(&f)).unwrap();
    let p = spec.process().clone().unwrap();
    assert_eq!(
        p.args().clone().unwrap(),
        strings(&["/docker-entrypoint.sh", "nginx", "-T"])
    );
    assert_eq!(
        p.env().clone().unwrap(),
        strings(&[
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            "HOSTNAME=web-0",
            "NGINX_VERSION=override",
            "HOME=/var/www",
        ])
    );
    assert_eq!(p.cwd(), Path::new("/srv"));
    assert_eq!(p.terminal(), Some(true));
    assert_eq!((p.user().uid(), p.user().gid()), (33, 33));
    assert_eq!(p.user().additional_gids().clone().unwrap(), [33, 4, 2000]);
    assert_eq!(p.no_new_privileges(), Some(true));
    assert_eq!(p.oom_score_adj(), Some(969));
    let caps = p.capabilities().clone().unwrap();
    let eff = caps.effective().clone().unwrap();
    assert!(eff.contains(&Capability::NetAdmin) && !eff.contains(&Capability::Mknod));
    assert_eq!(caps.bounding().clone().unwrap(), eff);
}

#[test]
fn realistic_request_has_the_expected_linux_section() {
    let f = fixture();
    let spec = spec_for(&f, &sandbox(NamespaceMode::Pod), &request(&f)).unwrap();
    assert_eq!(spec.hostname().as_deref(), Some("web-0"));
    let root = spec.root().clone().unwrap();
    assert_eq!(root.path(), f.rootfs.path());
    assert_eq!(root.readonly(), Some(true));

    let linux = spec.linux().clone().unwrap();
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new("/kubepods/burstable/pod0b5c/ctr1"))
    );
    let ns: HashMap<_, _> = linux
        .namespaces()
        .clone()
        .unwrap()
        .into_iter()
        .map(|n| (n.typ(), n.path().clone()))
        .collect();
    assert_eq!(
        ns[&LinuxNamespaceType::Network],
        Some(PathBuf::from("/run/netns/berth-pod0b5c"))
    );
    assert_eq!(
        ns[&LinuxNamespaceType::Ipc],
        Some(PathBuf::from("/proc/4242/ns/ipc"))
    );
    assert_eq!(
        ns[&LinuxNamespaceType::Uts],
        Some(PathBuf::from("/proc/4242/ns/uts"))
    );
    assert_eq!(ns[&LinuxNamespaceType::Pid], None);
    assert_eq!(
        linux.sysctl().clone().unwrap()["net.ipv4.ip_unprivileged_port_start"],
        "0"
    );
    assert!(linux.seccomp().is_some());
    assert_eq!(
        linux.masked_paths().clone().unwrap().len(),
        masked_paths::DEFAULT_MASKED.len()
    );
    assert_eq!(linux.rootfs_propagation().as_deref(), Some("rslave"));

    let res = linux.resources().clone().unwrap();
    assert_eq!(res.memory().unwrap().limit(), Some(128 << 20));
    assert_eq!(res.cpu().clone().unwrap().shares(), Some(256));
    let rules = res.devices().clone().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(
        linux.devices().clone().unwrap()[0].path(),
        Path::new("/dev/fuse-like")
    );

    let mounts = spec.mounts().clone().unwrap();
    let dests: Vec<_> = mounts
        .iter()
        .map(|m| m.destination().display().to_string())
        .collect();
    // Request mounts come last, shallower first.
    assert!(dests.ends_with(&[
        "/var/log/nginx".to_string(),
        "/usr/share/nginx/html".to_string()
    ]));
    assert!(dests.contains(&"/etc/resolv.conf".to_string()));

    let ann = spec.annotations().clone().unwrap();
    assert_eq!(ann[annotations::CONTAINER_NAME], "nginx");
    assert_eq!(ann[annotations::IMAGE_NAME], "nginx:1.27");
    assert_eq!(ann[annotations::SANDBOX_ID], "pod0b5c");
    assert_eq!(ann["io.kubernetes.container.hash"], "abc");
}

#[test]
fn host_network_pod_has_no_net_or_uts_namespace_nor_hostname() {
    let f = fixture();
    let mut config = request(&f);
    if let Some(ns) = config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|sc| sc.namespace_options.as_mut())
    {
        ns.network = NamespaceMode::Node as i32;
    }
    let mut s = sandbox(NamespaceMode::Node);
    s.hostname = String::new();
    let spec = spec_for(&f, &s, &config).unwrap();
    let types: Vec<_> = spec
        .linux()
        .clone()
        .unwrap()
        .namespaces()
        .clone()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    assert!(!types.contains(&LinuxNamespaceType::Network));
    assert!(!types.contains(&LinuxNamespaceType::Uts));
    assert_eq!(spec.hostname(), &None);
    assert!(spec
        .linux()
        .clone()
        .unwrap()
        .sysctl()
        .clone()
        .unwrap()
        .is_empty());
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert!(spec
        .process()
        .clone()
        .unwrap()
        .env()
        .clone()
        .unwrap()
        .contains(&format!("HOSTNAME={host}")));
}

#[test]
fn privileged_container_in_privileged_pod() {
    let f = fixture();
    let mut s = sandbox(NamespaceMode::Pod);
    let mut config = request(&f);
    if let Some(sc) = config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
    {
        sc.privileged = true;
    }
    let err = spec_for(&f, &s, &config).unwrap_err();
    assert_eq!(
        err.field(),
        Some("config.linux.security_context.privileged")
    );

    if let Some(sc) = s.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.privileged = true;
    }
    let spec = spec_for(&f, &s, &config).unwrap();
    let linux = spec.linux().clone().unwrap();
    assert!(linux.masked_paths().clone().unwrap().is_empty());
    assert!(linux.readonly_paths().clone().unwrap().is_empty());
    assert!(linux.seccomp().is_none());
    let rules = linux
        .resources()
        .clone()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert!(rules.len() == 1 && rules[0].allow());
    let caps = spec
        .process()
        .clone()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    assert_eq!(caps.effective().clone().unwrap(), capabilities::node_all());
    let sys = spec
        .mounts()
        .clone()
        .unwrap()
        .into_iter()
        .find(|m| m.destination() == Path::new("/sys"))
        .unwrap();
    assert!(sys.options().clone().unwrap().contains(&"rw".to_string()));
}

#[test]
fn run_as_user_overrides_image_user() {
    let f = fixture();
    let mut config = request(&f);
    if let Some(sc) = config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
    {
        sc.run_as_user = Some(Int64Value { value: 0 });
        sc.run_as_group = Some(Int64Value { value: 7 });
    }
    let spec = spec_for(&f, &sandbox(NamespaceMode::Pod), &config).unwrap();
    let user = spec.process().clone().unwrap().user().clone();
    assert_eq!((user.uid(), user.gid()), (0, 7));
}

#[test]
fn bad_requests_name_the_field() {
    let f = fixture();
    let s = sandbox(NamespaceMode::Pod);
    let check = |config: ContainerConfig, field: &str| {
        let err = spec_for(&f, &s, &config).unwrap_err();
        assert_eq!(err.field(), Some(field), "{err}");
        assert!(err.to_string().starts_with(&format!("{field}: ")), "{err}");
    };

    let mut c = request(&f);
    c.mounts[1].host_path = format!("{}/../../etc", f.volume.path().display());
    check(c, "config.mounts[1].host_path");

    let mut c = request(&f);
    c.mounts[0].container_path = "/usr/../etc".into();
    check(c, "config.mounts[0].container_path");

    let mut c = request(&f);
    if let Some(caps) = c
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|sc| sc.capabilities.as_mut())
    {
        caps.add_capabilities.push("CAP_FOO".into());
    }
    check(
        c,
        "config.linux.security_context.capabilities.add_capabilities[1]",
    );

    let mut c = request(&f);
    c.devices[0].host_path = "/dev/../etc/shadow".into();
    check(c, "config.devices[0].host_path");

    let mut c = request(&f);
    if let Some(r) = c.linux.as_mut().and_then(|l| l.resources.as_mut()) {
        r.memory_limit_in_bytes = -5;
    }
    check(c, "config.linux.resources.memory_limit_in_bytes");

    let mut c = request(&f);
    if let Some(sc) = c.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.run_as_username = "nobody-here".into();
    }
    check(c, "config.linux.security_context.run_as_username");

    let mut c = request(&f);
    c.metadata = None;
    check(c, "config.metadata");

    let mut c = request(&f);
    c.cdi_devices = vec![berth_proto::v1::CdiDevice {
        name: "vendor.com/gpu=0".into(),
    }];
    check(c, "config.cdi_devices");

    let err = build(
        &s,
        &info(&f),
        "../x",
        &request(&f),
        &image(),
        f.rootfs.path(),
        f.dev.path(),
    )
    .unwrap_err();
    assert_eq!(err.field(), Some("container id"));
}

#[test]
fn empty_image_and_request_command_is_rejected() {
    let f = fixture();
    let mut config = request(&f);
    config.args.clear();
    let empty = ImageConfigurationBuilder::default().build().unwrap();
    let err = build(
        &sandbox(NamespaceMode::Pod),
        &info(&f),
        "c",
        &config,
        &empty,
        f.rootfs.path(),
        f.dev.path(),
    )
    .unwrap_err();
    assert_eq!(err.field(), Some("config.command"));
}

#[test]
fn pod_files_then_spec_bind_them() {
    let f = fixture();
    let s = sandbox(NamespaceMode::Pod);
    write_pod_files(f.pod_dir.path(), &s, Some("10.244.0.9".parse().unwrap())).unwrap();
    let spec = spec_for(&f, &s, &request(&f)).unwrap();
    for name in ["hostname", "hosts", "resolv.conf"] {
        let m = spec
            .mounts()
            .clone()
            .unwrap()
            .into_iter()
            .find(|m| *m.destination() == Path::new("/etc").join(name))
            .unwrap();
        let source = m.source().clone().unwrap();
        assert!(source.is_file(), "{}", source.display());
        // The rootfs is read-only, so are the pod files.
        assert!(m.options().clone().unwrap().contains(&"ro".to_string()));
    }
}
