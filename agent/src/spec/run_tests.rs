//! Root tests that run a generated spec for real: a pause-like process holds
//! the pod's IPC, UTS and network namespaces, and the workspace's
//! `berth-runtime` binary runs a busybox container from the spec. Skipped
//! (with a message) when not root or when the binary is not built.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use berth_fixtures::{Bundle, APP_EXTRA_GIDS, APP_UID, APP_USER};
use berth_proto::v1::{
    ContainerConfig, ContainerMetadata, Device, DnsConfig, LinuxContainerConfig,
    LinuxContainerResources, LinuxContainerSecurityContext, LinuxPodSandboxConfig,
    LinuxSandboxSecurityContext, Mount as CriMount, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, SecurityProfile,
};
use oci_spec::image::{ConfigBuilder, ImageConfigurationBuilder};

use super::*;

/// The `berth-runtime` binary next to this test's target directory.
fn runtime_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("berth-runtime");
    bin.exists().then_some(bin)
}

fn skip() -> Option<PathBuf> {
    // SAFETY: geteuid cannot fail.
    if unsafe { nix::libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return None;
    }
    let bin = runtime_binary();
    if bin.is_none() {
        eprintln!("skipped: berth-runtime is not built (cargo build -p berth-runtime --bins)");
    }
    bin
}

/// A process in new IPC, UTS and network namespaces, killed on drop. Like
/// the pod sandbox, it sets the pod's hostname in its UTS namespace (the
/// runtime sets `hostname` only in a UTS namespace it creates).
struct Pause(Child);

impl Pause {
    fn start(hostname: &str) -> Self {
        let child = Command::new("unshare")
            .args(["--ipc", "--uts", "--net", "sh", "-c"])
            .arg(format!("hostname {hostname} && exec sleep 600"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pause = Self(child);
        // Wait until unshare has exec'd sleep in its new namespaces.
        let pid = pause.pid();
        let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
        for _ in 0..2000 {
            let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if ns.is_some_and(|ns| ns != host_net) && comm.trim() == "sleep" {
                return pause;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("pause process never entered its namespaces");
    }

    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Pause {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Force-deletes the container on drop.
struct Cleanup<'a> {
    bin: &'a Path,
    root: &'a Path,
    id: &'a str,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = Command::new(self.bin)
            .arg("--root")
            .arg(self.root)
            .args(["delete", "--force", self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn sandbox() -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "runpod".into(),
            uid: "uid-run".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "spec-run-pod".into(),
        dns_config: Some(DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec!["default.svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    pid: NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

const SCRIPT: &str = "\
echo host=$(hostname) env=$HOSTNAME home=$HOME
echo ids=$(id -u):$(id -g):$(id -G)
echo net=$(readlink /proc/self/ns/net) ipc=$(readlink /proc/self/ns/ipc)
echo pid1=$(cat /proc/1/comm) cwd=$(pwd)
grep -q '^nameserver 10.96.0.10$' /etc/resolv.conf && echo resolv=ok
grep -q 'spec-run-pod' /etc/hosts && echo hosts=ok
cat /data/file
(echo x > /data/new) 2>/dev/null || echo volume=ro
(echo x > /rootfs-write) 2>/dev/null || echo rootfs=ro
echo hi > /dev/xnull && echo device=ok
grep CapEff /proc/self/status
grep Seccomp: /proc/self/status
echo mem=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)
";

#[test]
fn generated_spec_runs_in_berth_runtime() {
    let Some(bin) = skip() else { return };
    let sandbox = sandbox();
    let pause = Pause::start(&sandbox.hostname);
    let pod_dir = tempfile::tempdir().unwrap();
    let volume = tempfile::tempdir().unwrap();
    std::fs::write(volume.path().join("file"), "volume=content\n").unwrap();
    std::fs::create_dir(pod_dir.path().join("shm")).unwrap();
    write_pod_files(pod_dir.path(), &sandbox, Some("10.1.2.3".parse().unwrap())).unwrap();

    let bundle = Bundle::temp(&["true"]).unwrap();
    let info = SandboxInfo {
        pod_id: "runpod".into(),
        pause_pid: pause.pid(),
        netns_path: None,
        pod_dir: pod_dir.path().to_path_buf(),
        cgroup_parent: String::new(),
        target_pid: None,
    };
    let config = ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: "c".into(),
            attempt: 0,
        }),
        command: vec!["/bin/sh".into(), "-c".into(), SCRIPT.into()],
        working_dir: "/tmp".into(),
        mounts: vec![CriMount {
            container_path: "/data".into(),
            host_path: volume.path().to_str().unwrap().into(),
            readonly: true,
            ..Default::default()
        }],
        devices: vec![Device {
            container_path: "/dev/xnull".into(),
            host_path: "/dev/null".into(),
            permissions: "rw".into(),
        }],
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                memory_limit_in_bytes: 64 << 20,
                ..Default::default()
            }),
            security_context: Some(LinuxContainerSecurityContext {
                run_as_username: APP_USER.into(),
                supplemental_groups: vec![4242],
                readonly_rootfs: true,
                no_new_privs: true,
                seccomp: Some(SecurityProfile::default()),
                namespace_options: sandbox
                    .linux
                    .as_ref()
                    .and_then(|l| l.security_context.as_ref())
                    .and_then(|s| s.namespace_options.clone()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let image = ImageConfigurationBuilder::default()
        .config(ConfigBuilder::default().build().unwrap())
        .build()
        .unwrap();
    let id = format!("spec-run-{}", std::process::id());
    let spec = container_spec(&sandbox, &info, &id, &config, &image, &bundle.rootfs()).unwrap();
    spec.save(bundle.config_path()).unwrap();

    let state = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup {
        bin: &bin,
        root: state.path(),
        id: &id,
    };
    let mut cmd = Command::new(&bin);
    cmd.arg("--root")
        .arg(state.path())
        .args(["run", "--bundle"])
        .arg(bundle.dir())
        .arg(&id)
        .stdin(Stdio::null());
    let out = berth_output(cmd);
    assert!(out.0, "run failed: {}", out.2);
    let stdout = out.1;

    let pause_net = std::fs::read_link(format!("/proc/{}/ns/net", pause.pid())).unwrap();
    let pause_ipc = std::fs::read_link(format!("/proc/{}/ns/ipc", pause.pid())).unwrap();
    let [g1, g2] = APP_EXTRA_GIDS;
    let expected = [
        "host=spec-run-pod env=spec-run-pod home=/home/app".to_string(),
        format!("ids={APP_UID}:{APP_UID}:{APP_UID} {g1} {g2} 4242"),
        format!("net={} ipc={}", pause_net.display(), pause_ipc.display()),
        "pid1=sh cwd=/tmp".to_string(),
        "resolv=ok".to_string(),
        "hosts=ok".to_string(),
        "volume=content".to_string(),
        "volume=ro".to_string(),
        "rootfs=ro".to_string(),
        "device=ok".to_string(),
        // A non-root user without ambient capabilities has none effective.
        "CapEff:\t0000000000000000".to_string(),
        "Seccomp:\t2".to_string(),
        format!("mem={}", 64 << 20),
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, expected, "stderr: {}", out.2);
}

/// Runs `cmd` with output in files (a container may inherit them): (success,
/// stdout, stderr).
fn berth_output(mut cmd: Command) -> (bool, String, String) {
    use std::io::{Read, Seek};
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    let status = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap();
    let read = |f: &mut std::fs::File| {
        let mut s = String::new();
        f.rewind().unwrap();
        f.read_to_string(&mut s).unwrap();
        s
    };
    (status.success(), read(&mut out), read(&mut err))
}
