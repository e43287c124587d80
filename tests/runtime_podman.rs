//! Debian's podman driving `berth-runtime` through `--runtime`: a fixture image
//! loaded from an OCI archive, a foreground `run --rm` (output and exit code),
//! and a detached container with `exec`, `stop` and `rm`.
//!
//! Podman gets a private store, run root, tmp dir and cgroup parent under a
//! temp dir, so the machine's podman state is never touched; all of it is
//! removed at the end.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use berth_fixtures::image::{ImageSpec, Layer, BUSYBOX_APPLETS};
use berth_tests::*;

/// The image name the fixture archive is loaded as.
const IMAGE: &str = "localhost/berth-podman-fixture:latest";

/// A podman with its own state under a temp dir, using berth-runtime.
struct Podman {
    dir: tempfile::TempDir,
    runtime: PathBuf,
    cgroup_parent: String,
}

impl Podman {
    /// None (with a printed reason) when podman is not installed.
    fn new() -> Option<Self> {
        let found = Command::new("podman")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            eprintln!("skipped: podman is not installed");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-podman-")
            .tempdir()
            .expect("podman temp dir");
        Some(Self {
            dir,
            runtime: binary("berth-runtime"),
            cgroup_parent: format!("/berth-podman-{}", std::process::id()),
        })
    }

    /// `podman` with the private store and berth-runtime.
    fn command(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg("--storage-driver")
            .arg("vfs")
            .arg("--cgroup-manager")
            .arg("cgroupfs")
            .arg("--events-backend")
            .arg("none")
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Runs `podman ARGS` to completion.
    fn cmd(&self, args: &[&str]) -> Output {
        run_to_files(self.command(args))
    }

    /// Like [`Podman::cmd`], panicking with stderr on failure; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The flags every container needs on this machine (see FIELD-NOTES).
    fn run_flags(&self) -> Vec<&str> {
        vec![
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:20000",
            "--ulimit",
            "nproc=1024:1024",
            "--cgroup-parent",
            &self.cgroup_parent,
        ]
    }

    /// Writes the fixture image as an OCI archive and loads it.
    fn load_fixture(&self) {
        let archive = self.dir.path().join("image.tar");
        ImageSpec::new(vec![busybox_layer()])
            .write_oci_archive(&archive, IMAGE)
            .expect("write OCI archive");
        let out = self.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert!(out.contains("berth-podman-fixture"), "load: {out}");
    }
}

/// A busybox layer whose applets are symlinks. (`Layer::busybox` hard-links
/// them with mode 0644 in the link entries, and podman's unpacker applies that
/// mode to the shared inode, leaving busybox not executable.)
fn busybox_layer() -> Layer {
    let busybox = std::fs::read("/bin/busybox").expect("read /bin/busybox");
    let mut l = Layer::new();
    for dir in ["bin", "dev", "etc", "proc", "sys", "root", "run", "var"] {
        l = l.dir(dir, 0o755);
    }
    l = l
        .dir("tmp", 0o1777)
        .file_full("bin/busybox", busybox, 0o755, 0, 0, Vec::new());
    for applet in BUSYBOX_APPLETS.iter().chain(&["hostname"]) {
        l = l.symlink(&format!("bin/{applet}"), "busybox");
    }
    l.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        .file("etc/group", b"root:x:0:\n")
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "--all", "--force", "--time", "0"]);
        let _ = self.cmd(&["rmi", "--all", "--force"]);
        unmount_under(self.dir.path());
        remove_cgroup_tree(&self.cgroup_parent);
    }
}

/// Lazily unmounts whatever podman may have left mounted under `dir`.
fn unmount_under(dir: &Path) {
    let prefix = dir.to_string_lossy().into_owned();
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mi
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Removes the cgroup `path` (and its children) in every hierarchy.
fn remove_cgroup_tree(path: &str) {
    let rel = path.trim_start_matches('/');
    let roots: Vec<PathBuf> = if is_cgroup_v2() {
        vec![PathBuf::from("/sys/fs/cgroup")]
    } else {
        std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| !p.is_symlink())
            .collect()
    };
    for root in roots {
        remove_dirs_bottom_up(&root.join(rel));
    }
}

fn remove_dirs_bottom_up(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_dirs_bottom_up(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[test]
fn podman_runs_containers_with_berth_runtime() {
    if need_root() {
        return;
    }
    let Some(pm) = Podman::new() else { return };
    pm.load_fixture();

    // Foreground, removed on exit: output and exit code come back.
    let mut args = vec!["run", "--rm"];
    args.extend(pm.run_flags());
    args.extend([
        IMAGE,
        "sh",
        "-c",
        "echo hello from berth; cat /proc/1/comm; exit 3",
    ]);
    let out = pm.cmd(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("hello from berth"), "{stdout}");
    assert!(
        stdout.contains("sh"),
        "pid 1 is the container's sh: {stdout}"
    );
    assert!(pm.ok(&["ps", "-aq"]).trim().is_empty(), "--rm removed it");

    // Detached, then exec into it, then stop (SIGTERM reaches the init) and rm.
    let mut args = vec!["run", "--detach", "--name", "berth-detached"];
    args.extend(pm.run_flags());
    args.extend([
        "--hostname",
        "berth-pod",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 42' TERM; echo started; while :; do sleep 0.1; done",
    ]);
    let id = pm.ok(&args).trim().to_string();
    assert!(!id.is_empty());
    let status = pm.ok(&["inspect", "--format", "{{.State.Status}}", &id]);
    assert_eq!(status.trim(), "running");
    let out = pm.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "hostname; echo $$; cat /proc/1/cmdline",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"berth-pod"), "exec output: {out}");
    assert_ne!(lines.get(1), Some(&"1"), "exec is not the init: {out}");
    assert!(out.contains("trap"), "exec sees the init's pid ns: {out}");
    let out = pm.cmd(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "exec's exit code");
    pm.ok(&["stop", "--time", "10", &id]);
    let code = pm.ok(&["inspect", "--format", "{{.State.ExitCode}}", &id]);
    assert_eq!(
        code.trim(),
        "42",
        "the init got SIGTERM and exited by its trap"
    );
    let logs = pm.ok(&["logs", &id]);
    assert!(logs.contains("started"), "logs: {logs}");
    pm.ok(&["rm", &id]);
    assert!(pm.ok(&["ps", "-aq"]).trim().is_empty());
}
