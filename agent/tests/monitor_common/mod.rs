//! Harness for the monitor tests: a pod (temp dirs, its own cgroup path and
//! optionally a fresh netns) with a real `berth-monitor`, torn down on drop
//! even when a test fails, and checks that a shut-down pod left nothing.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use berth_agent::monitor::{
    protocol::{Event, PauseConfig, PidMode},
    records, spawn, MonitorClient, SpawnConfig,
};
use berth_fixtures::Bundle;
use berth_runtime::cgroups::CgroupManager;
use oci_spec::runtime::{LinuxNamespaceBuilder, LinuxNamespaceType};
use tokio::sync::mpsc::UnboundedReceiver;

/// Bound on every wait (a hung test fails instead of hanging CI).
pub const WAIT: Duration = Duration::from_secs(30);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this test process and call.
pub fn unique(tag: &str) -> String {
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A network namespace pinned under /run/netns, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        let name = unique(tag);
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add")
            .success();
        assert!(ok, "ip netns add {name}");
        Self { name }
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A pod with a running monitor.
pub struct Pod {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub cgroup: String,
    pub monitor_pid: i32,
    pub client: Option<MonitorClient>,
    pub netns: Option<Netns>,
}

impl Pod {
    /// A new pod without a monitor yet.
    pub fn new(tag: &str) -> Pod {
        let name = unique(tag);
        let dir = tempfile::Builder::new()
            .prefix("berth-mon-")
            .tempdir()
            .unwrap();
        Pod {
            cgroup: format!("/berth-test-{name}"),
            name,
            dir,
            monitor_pid: 0,
            client: None,
            netns: None,
        }
    }

    /// Spawns a monitor for a new pod.
    pub async fn spawn(tag: &str) -> Pod {
        let mut pod = Pod::new(tag);
        let client = spawn(&pod.spawn_config()).await.expect("spawn monitor");
        pod.monitor_pid = pod.monitor_pid_on_disk();
        pod.client = Some(client);
        pod
    }

    /// Connects to a monitor started some other way.
    pub async fn connect(&mut self) {
        self.monitor_pid = self.monitor_pid_on_disk();
        self.client = Some(
            MonitorClient::connect(&self.run_dir())
                .await
                .expect("connect"),
        );
    }

    fn monitor_pid_on_disk(&self) -> i32 {
        records::read_pod(&self.state_dir())
            .unwrap()
            .expect("monitor.json")
            .monitor_pid
    }

    pub fn spawn_config(&self) -> SpawnConfig {
        SpawnConfig {
            binary: PathBuf::from(env!("CARGO_BIN_EXE_berth-monitor")),
            pod_id: self.name.clone(),
            state_dir: self.state_dir(),
            run_dir: self.run_dir(),
            runtime_root: self.runtime_root(),
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }
    pub fn runtime_root(&self) -> PathBuf {
        self.dir.path().join("runtime")
    }
    pub fn log_path(&self, ctr: &str) -> PathBuf {
        self.dir.path().join("logs").join(format!("{ctr}.log"))
    }

    pub fn client(&self) -> &MonitorClient {
        self.client.as_ref().expect("connected")
    }

    /// A pause config in this pod's cgroup (host network, pod pid namespace).
    pub fn pause_config(&self) -> PauseConfig {
        PauseConfig {
            hostname: "pod-host".into(),
            pid: PidMode::Pod,
            cgroup_path: self.cgroup.clone(),
            ..Default::default()
        }
    }

    /// A busybox bundle running `script` in the pod's cgroup; with `pause`,
    /// it joins the pause process's network, IPC, UTS and pid namespaces.
    pub fn bundle(&self, ctr: &str, script: &str, pause: Option<i32>) -> Bundle {
        let mut b = Bundle::temp(&["sh", "-c", script]).unwrap();
        let spec = b.spec_mut();
        let linux = spec.linux_mut().as_mut().unwrap();
        linux.set_cgroups_path(Some(PathBuf::from(format!("{}/{ctr}", self.cgroup))));
        if let Some(pid) = pause {
            let joined = [
                (LinuxNamespaceType::Network, "net"),
                (LinuxNamespaceType::Ipc, "ipc"),
                (LinuxNamespaceType::Uts, "uts"),
                (LinuxNamespaceType::Pid, "pid"),
            ];
            let mut nss = linux.namespaces().clone().unwrap_or_default();
            for (typ, name) in joined {
                nss.retain(|n| n.typ() != typ);
                nss.push(
                    LinuxNamespaceBuilder::default()
                        .typ(typ)
                        .path(format!("/proc/{pid}/ns/{name}"))
                        .build()
                        .unwrap(),
                );
            }
            linux.set_namespaces(Some(nss));
            spec.set_hostname(None);
        }
        b.save().unwrap();
        b
    }

    /// Shuts the pod down and checks that nothing is left.
    pub async fn shutdown_and_check(&mut self, pids: &[i32]) {
        self.client().shutdown().await.expect("shutdown");
        self.client = None;
        wait_gone(self.monitor_pid);
        for &pid in pids {
            wait_gone(pid);
        }
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let p = hierarchy.path().join(self.cgroup.trim_start_matches('/'));
            assert!(!p.exists(), "{} left behind", p.display());
        }
        assert!(!self.state_dir().exists(), "state dir left behind");
        assert!(!self.run_dir().exists(), "run dir left behind");
        let left: Vec<_> = std::fs::read_dir(self.runtime_root())
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "runtime state left: {left:?}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(self.dir.path().to_str().unwrap()),
            "mounts left behind"
        );
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        if self.monitor_pid > 0 && Path::new(&format!("/proc/{}", self.monitor_pid)).exists() {
            // SAFETY: kill(2) on the monitor this test spawned.
            unsafe { libc::kill(self.monitor_pid, libc::SIGKILL) };
        }
        if let Ok(cg) = CgroupManager::new(Some(&self.cgroup), "pod") {
            let _ = cg.destroy();
        }
    }
}

/// Waits (bounded) until `pid` no longer exists.
pub fn wait_gone(pid: i32) {
    let deadline = Instant::now() + WAIT;
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "process {pid} still exists");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The next event (bounded wait).
pub async fn next_event(rx: &mut UnboundedReceiver<Event>) -> Event {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("event in time")
        .expect("event stream open")
}

/// A log record: its `P`/`F` tag and text.
pub type Record = (char, Vec<u8>);

/// Splits a CRI log into per-stream (tag, text) records, checking each
/// line's shape and timestamp format.
pub fn parse_cri_log(data: &[u8]) -> (Vec<Record>, Vec<Record>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(data.last(), Some(&b'\n'), "log ends with a newline");
    for line in data[..data.len() - 1].split(|&b| b == b'\n') {
        let ts = &line[..30];
        for (i, &c) in ts.iter().enumerate() {
            let ok = match i {
                4 | 7 => c == b'-',
                10 => c == b'T',
                13 | 16 => c == b':',
                19 => c == b'.',
                29 => c == b'Z',
                _ => c.is_ascii_digit(),
            };
            assert!(ok, "bad timestamp in {:?}", String::from_utf8_lossy(line));
        }
        let rest = &line[31..];
        let (stream, rest) = rest.split_at(6);
        assert_eq!(rest[0], b' ');
        let tag = rest[1] as char;
        assert!(tag == 'P' || tag == 'F', "tag {tag}");
        assert_eq!(rest[2], b' ');
        let rec = (tag, rest[3..].to_vec());
        match stream {
            b"stdout" => out.push(rec),
            b"stderr" => err.push(rec),
            s => panic!("bad stream {:?}", String::from_utf8_lossy(s)),
        }
    }
    (out, err)
}
