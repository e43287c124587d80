//! Harness shared by the end-to-end tests: where the binaries are, a runtime
//! with its own state root per test, containers that are force-deleted on drop,
//! and checks that a deleted container left nothing behind.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

pub mod daemon;

pub use berth_fixtures::Bundle;

/// A built binary of the workspace (`target/<profile>/<name>`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// Skips the calling test (returns true) when not root.
pub fn need_root() -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return true;
    }
    false
}

/// `berth-runtime` with a private `--root`.
pub struct Runtime {
    root: tempfile::TempDir,
    bin: PathBuf,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// A runtime with a fresh state root.
    pub fn new() -> Self {
        Self {
            root: tempfile::Builder::new()
                .prefix("berth-rt-")
                .tempdir()
                .expect("state root"),
            bin: binary("berth-runtime"),
        }
    }

    /// The state root.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A command for `berth-runtime --root <root> ARGS`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path()).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs `berth-runtime ARGS` and returns its output. Stdout and stderr go
    /// through files, not pipes: a created container inherits them and would
    /// hold a pipe open long after the command returned.
    pub fn cmd(&self, args: &[&str]) -> Output {
        run_to_files(self.command(args))
    }

    /// Like [`Runtime::cmd`], panicking with stderr on failure.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "berth-runtime {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `run` of `bundle` to completion: (exit code, stdout, stderr).
    pub fn run(&self, id: &str, bundle: &Bundle) -> (i32, String, String) {
        let out = self.cmd(&["run", "--bundle", bundle.dir().to_str().unwrap(), id]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Creates and starts `bundle` as `id`; the guard force-deletes it.
    pub fn start(&self, id: &str, bundle: &Bundle) -> Container<'_> {
        self.ok(&["create", "--bundle", bundle.dir().to_str().unwrap(), id]);
        let c = Container::new(self, id);
        self.ok(&["start", id]);
        c
    }

    /// The `state` JSON of `id`.
    pub fn state(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state json")
    }

    /// Waits (bounded) until `id` has `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.state(id)["status"] != status {
            assert!(Instant::now() < deadline, "{id} never became {status}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Runs `cmd` with stdout and stderr in anonymous files; waits for it only.
pub fn run_to_files(mut cmd: Command) -> Output {
    use std::io::{Read, Seek};
    let mut out = tempfile::tempfile().expect("tempfile");
    let mut err = tempfile::tempfile().expect("tempfile");
    let status = cmd
        .stdout(out.try_clone().expect("dup"))
        .stderr(err.try_clone().expect("dup"))
        .status()
        .expect("spawn");
    let read = |f: &mut std::fs::File| {
        let mut v = Vec::new();
        f.rewind().expect("rewind");
        f.read_to_end(&mut v).expect("read");
        v
    };
    Output {
        status,
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

/// A created container; force-deleted (and checked for leaks) on drop.
pub struct Container<'a> {
    rt: &'a Runtime,
    /// Container id.
    pub id: String,
    /// Its init's host pid.
    pub pid: i32,
    /// Its cgroup's directories on the host.
    cgroup_dirs: Vec<PathBuf>,
    rootfs: String,
}

impl<'a> Container<'a> {
    /// Tracks an existing container.
    pub fn new(rt: &'a Runtime, id: &str) -> Self {
        let st = rt.state(id);
        let pid = st["pid"].as_i64().unwrap_or(0) as i32;
        Self {
            rt,
            id: id.to_string(),
            pid,
            cgroup_dirs: cgroup_dirs_of(pid),
            rootfs: st["rootfs"].as_str().unwrap_or_default().to_string(),
        }
    }

    /// `exec` of `args` in the container: (exit code, stdout).
    pub fn exec(&self, args: &[&str]) -> (i32, String) {
        let mut a = vec!["exec", self.id.as_str()];
        a.extend_from_slice(args);
        let out = self.rt.cmd(&a);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let out = self.rt.cmd(&["delete", "--force", &self.id]);
        if std::thread::panicking() {
            return;
        }
        assert!(
            out.status.success(),
            "delete {}: {}",
            self.id,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_gone(self.rt, &self.id, self.pid, &self.cgroup_dirs, &self.rootfs);
    }
}

/// The host directories of `pid`'s cgroups (every v1 hierarchy, or the v2 one).
pub fn cgroup_dirs_of(pid: i32) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrl, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
        if path == "/" {
            continue;
        }
        let mount = if ctrl.is_empty() {
            if is_cgroup_v2() {
                "/sys/fs/cgroup".to_string()
            } else {
                continue;
            }
        } else {
            let first = ctrl.split(',').next().unwrap_or(ctrl);
            format!("/sys/fs/cgroup/{}", first.trim_start_matches("name="))
        };
        out.push(PathBuf::from(format!("{mount}{path}")));
    }
    out
}

/// Whether the host's /sys/fs/cgroup is cgroup v2.
pub fn is_cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Asserts a deleted container left no state, process, cgroup or mount.
pub fn assert_gone(rt: &Runtime, id: &str, pid: i32, cgroups: &[PathBuf], rootfs: &str) {
    assert!(
        !rt.root().join(id).exists(),
        "state dir of {id} left behind"
    );
    if pid > 0 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            if stat.contains(") Z ") {
                break; // a zombie of a foreground `run`: reaped by its parent
            }
            assert!(
                Instant::now() < deadline,
                "init {pid} of {id} still running"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    for d in cgroups {
        assert!(!d.exists(), "cgroup {} of {id} left behind", d.display());
    }
    if !rootfs.is_empty() {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        assert!(
            !mi.lines().any(|l| l.contains(rootfs)),
            "a mount under {rootfs} leaked into the host"
        );
    }
}

/// A unique id for a test container.
pub fn unique_id(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The bundle's process, to edit.
pub fn process_mut(b: &mut Bundle) -> &mut oci_spec::runtime::Process {
    b.spec_mut()
        .process_mut()
        .as_mut()
        .expect("spec has a process")
}

/// The bundle's `linux` section, to edit.
pub fn linux_mut(b: &mut Bundle) -> &mut oci_spec::runtime::Linux {
    b.spec_mut()
        .linux_mut()
        .get_or_insert_with(Default::default)
}

/// A temp bundle running `sh -c SCRIPT`.
pub fn sh_bundle(script: &str) -> Bundle {
    Bundle::temp(&["sh", "-c", script]).expect("bundle")
}

/// Edits `b` with `f`, then saves it.
pub fn edit(b: &mut Bundle, f: impl FnOnce(&mut Bundle)) {
    f(b);
    b.save().expect("save config.json");
}
