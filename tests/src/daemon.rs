//! A berthd per test: private root, state, socket, cgroup parent, bridge,
//! subnet and nftables table (a slot leased through a lock file, so tests
//! in parallel never share a subnet), the busybox fixture image imported as
//! `berth.local/busybox:latest`, a CRI client, and full cleanup on drop:
//! every pod removed through CRI, berthd stopped, bridge and table deleted.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_agent::cri_client::{self, CriClient};
use berth_agent::images::{ImageStore, RegistryConfig};
use berth_fixtures::image::{ImageSpec, Layer};
use berth_proto::v1 as cri;

use crate::binary;

/// The fixture image every daemon has.
pub const BUSYBOX: &str = "berth.local/busybox:latest";

/// A network slot: its index, held by an flock until dropped.
struct Slot {
    n: u32,
    _lock: File,
}

impl Slot {
    fn lease() -> Slot {
        let dir = Path::new("/tmp/berth-test-slots");
        std::fs::create_dir_all(dir).expect("slot dir");
        for n in 1..250 {
            let f = File::create(dir.join(format!("{n}.lock"))).expect("slot file");
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Slot { n, _lock: f };
            }
        }
        panic!("no free test network slot");
    }
}

/// A running berthd and its client.
pub struct Berthd {
    dir: tempfile::TempDir,
    slot: Slot,
    child: Option<Child>,
    /// The CRI client.
    pub cri: CriClient,
    args: Vec<String>,
}

impl Berthd {
    /// Starts a berthd with the busybox image imported.
    pub async fn start() -> Berthd {
        Self::start_with(&[]).await
    }

    /// Starts a berthd with extra flags.
    pub async fn start_with(extra: &[&str]) -> Berthd {
        let dir = tempfile::Builder::new()
            .prefix("berthd-")
            .tempdir()
            .expect("temp dir");
        let slot = Slot::lease();
        // Clean what a crashed earlier run may have left in this slot.
        let _ = Command::new("ip")
            .args(["link", "del", &format!("bt{}", slot.n)])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &format!("berth_t{}", slot.n)])
            .stderr(Stdio::null())
            .status();
        import_busybox(&dir.path().join("root/images"));
        let n = slot.n;
        let mut args: Vec<String> = vec![
            "--root".into(),
            dir.path().join("root").display().to_string(),
            "--state".into(),
            dir.path().join("state").display().to_string(),
            "--listen".into(),
            dir.path().join("berth.sock").display().to_string(),
            "--cgroup-parent".into(),
            format!("/berth-test-{n}"),
            "--network-bridge".into(),
            format!("bt{n}"),
            "--network-subnet".into(),
            format!("10.211.{n}.0/24"),
            "--network-nft-table".into(),
            format!("berth_t{n}"),
            "--monitor-binary".into(),
            binary("berth-monitor").display().to_string(),
            "--log-level".into(),
            "debug".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = spawn(&args, dir.path());
        let cri = wait_for(&dir.path().join("berth.sock")).await;
        Berthd {
            dir,
            slot,
            child: Some(child),
            cri,
            args,
        }
    }

    /// The daemon's root directory.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The daemon's state directory.
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The container's init pid, from its verbose status.
    pub async fn container_pid(&mut self, id: &str) -> i32 {
        let r = self
            .cri
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: true,
            })
            .await
            .expect("ContainerStatus")
            .into_inner();
        let info: serde_json::Value =
            serde_json::from_str(r.info.get("info").expect("info")).expect("info json");
        info["pid"].as_i64().expect("pid") as i32
    }

    /// The pod subnet's first three octets (`10.211.N`).
    pub fn subnet_prefix(&self) -> String {
        format!("10.211.{}", self.slot.n)
    }

    /// The berthd log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    /// berthd's pid (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// SIGKILLs berthd (pods keep running).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts berthd again on the same state and reconnects.
    pub async fn restart(&mut self) {
        self.kill9();
        self.child = Some(spawn(&self.args, self.dir.path()));
        self.cri = wait_for(&self.dir.path().join("berth.sock")).await;
    }

    /// RunPodSandbox; panics (with berthd's log) on error.
    pub async fn run_pod(&mut self, config: &cri::PodSandboxConfig) -> String {
        match self
            .cri
            .runtime
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
        {
            Ok(r) => r.into_inner().pod_sandbox_id,
            Err(e) => panic!("RunPodSandbox: {e}\n{}", self.log()),
        }
    }

    /// CreateContainer in `pod`; panics on error.
    pub async fn create(
        &mut self,
        pod: &str,
        sandbox: &cri::PodSandboxConfig,
        c: cri::ContainerConfig,
    ) -> String {
        match self
            .cri
            .runtime
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: pod.into(),
                config: Some(c),
                sandbox_config: Some(sandbox.clone()),
            })
            .await
        {
            Ok(r) => r.into_inner().container_id,
            Err(e) => panic!("CreateContainer: {e}\n{}", self.log()),
        }
    }

    /// CreateContainer then StartContainer; panics on error.
    pub async fn start_container(
        &mut self,
        pod: &str,
        sandbox: &cri::PodSandboxConfig,
        c: cri::ContainerConfig,
    ) -> String {
        let id = self.create(pod, sandbox, c).await;
        if let Err(e) = self
            .cri
            .runtime
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
        {
            panic!("StartContainer: {e}\n{}", self.log());
        }
        id
    }

    /// A pod `name` with one running container from `config`:
    /// (pod id, container id).
    pub async fn pod_with(&mut self, name: &str, config: cri::ContainerConfig) -> (String, String) {
        let sandbox = pod_config(name);
        let pod = self.run_pod(&sandbox).await;
        let id = self.start_container(&pod, &sandbox, config).await;
        (pod, id)
    }

    /// A pod `name` whose busybox httpd serves `/index.html` ("hello from
    /// the pod") on its loopback's port 8080, once it answers there:
    /// (pod id, container id).
    pub async fn web_pod(&mut self, name: &str) -> (String, String) {
        let script = "mkdir -p /www && echo hello from the pod > /www/index.html && \
                      exec httpd -f -p 127.0.0.1:8080 -h /www";
        let (pod, id) = self.pod_with(name, sh_container("web", script)).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self
            .sh(&id, "wget -q -O - http://127.0.0.1:8080/index.html")
            .await
            .0
            != 0
        {
            assert!(
                Instant::now() < deadline,
                "httpd did not come up\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (pod, id)
    }

    /// berthd's open file descriptors.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|r| r.count())
            .unwrap_or(0)
    }

    /// ContainerStatus; panics on error.
    pub async fn status(&mut self, id: &str) -> cri::ContainerStatus {
        self.cri
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .expect("ContainerStatus")
            .into_inner()
            .status
            .expect("status")
    }

    /// PodSandboxStatus; panics on error.
    pub async fn pod_status(&mut self, id: &str) -> cri::PodSandboxStatus {
        self.cri
            .runtime
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: false,
            })
            .await
            .expect("PodSandboxStatus")
            .into_inner()
            .status
            .expect("status")
    }

    /// ListPodSandbox (no filter): every pod; panics on error.
    pub async fn pods(&mut self) -> Vec<cri::PodSandbox> {
        self.cri
            .runtime
            .list_pod_sandbox(cri::ListPodSandboxRequest::default())
            .await
            .expect("ListPodSandbox")
            .into_inner()
            .items
    }

    /// PodSandboxStats; panics on error.
    pub async fn pod_stats(&mut self, id: &str) -> cri::PodSandboxStats {
        self.cri
            .runtime
            .pod_sandbox_stats(cri::PodSandboxStatsRequest {
                pod_sandbox_id: id.into(),
            })
            .await
            .expect("PodSandboxStats")
            .into_inner()
            .stats
            .expect("pod stats")
    }

    /// GetContainerEvents: the open event stream; panics on error.
    pub async fn events(&mut self) -> tonic::Streaming<cri::ContainerEventResponse> {
        self.cri
            .runtime
            .get_container_events(cri::GetEventsRequest {})
            .await
            .expect("GetContainerEvents")
            .into_inner()
    }

    /// StopContainer with `timeout` seconds of grace; panics on error.
    pub async fn stop_container(&mut self, id: &str, timeout: i64) {
        self.cri
            .runtime
            .stop_container(cri::StopContainerRequest {
                container_id: id.into(),
                timeout,
            })
            .await
            .expect("StopContainer");
    }

    /// Waits (up to 20 s) until the container has exited; its status.
    pub async fn wait_exited(&mut self, id: &str) -> cri::ContainerStatus {
        for _ in 0..1000 {
            let s = self.status(id).await;
            if s.state == cri::ContainerState::ContainerExited as i32 {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("container {id} did not exit\n{}", self.log());
    }

    /// ExecSync `sh -c script` (10 s timeout): (exit code, stdout, stderr).
    pub async fn sh(&mut self, id: &str, script: &str) -> (i32, String, String) {
        let r = self
            .cri
            .runtime
            .exec_sync(cri::ExecSyncRequest {
                container_id: id.into(),
                cmd: vec!["sh".into(), "-c".into(), script.into()],
                timeout: 10,
            })
            .await
            .unwrap_or_else(|e| panic!("ExecSync {script:?}: {e}\n{}", self.log()))
            .into_inner();
        (
            r.exit_code,
            String::from_utf8_lossy(&r.stdout).into_owned(),
            String::from_utf8_lossy(&r.stderr).into_owned(),
        )
    }

    /// Removes every pod through CRI.
    pub async fn remove_all(&mut self) {
        remove_pods(self.cri.clone()).await;
    }

    /// Removes every pod, stops berthd, deletes its bridge and table.
    pub async fn shutdown(mut self) {
        self.remove_all().await;
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
        let n = self.slot.n;
        let _ = Command::new("ip")
            .args(["link", "del", &format!("bt{n}")])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &format!("berth_t{n}")])
            .stderr(Stdio::null())
            .status();
        if let Some(keep) = std::env::var_os("BERTH_TEST_KEEP_LOG") {
            // For debugging: keep berthd's log after the test.
            let _ = std::fs::copy(self.dir.path().join("berthd.log"), keep);
        }
        let netns_dir = self.dir.path().join("state/netns");
        let _ = nix::mount::umount2(&netns_dir, nix::mount::MntFlags::MNT_DETACH);
        remove_cgroup_parent(&format!("berth-test-{n}/berth-monitors"));
        remove_cgroup_parent(&format!("berth-test-{n}"));
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        if self.child.is_some() {
            // A test that panicked: remove its pods from a runtime of our own
            // (drop may run inside the test's runtime, so on another thread).
            let cri = self.cri.clone();
            let _ = std::thread::spawn(move || remove_all_blocking(cri)).join();
        }
        self.stop();
    }
}

/// Removes the (empty) cgroup parent `name` from every hierarchy.
fn remove_cgroup_parent(name: &str) {
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(name));
    for e in entries.flatten() {
        let _ = std::fs::remove_dir(e.path().join(name));
    }
}

/// Removes every pod the daemon behind `cri` has.
async fn remove_pods(mut cri: CriClient) {
    let pods = cri
        .runtime
        .list_pod_sandbox(cri::ListPodSandboxRequest::default())
        .await
        .map(|r| r.into_inner().items)
        .unwrap_or_default();
    for p in pods {
        if let Err(e) = cri
            .runtime
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: p.id.clone(),
            })
            .await
        {
            eprintln!("cleanup: remove pod {}: {e}", p.id);
        }
    }
}

fn remove_all_blocking(cri: CriClient) {
    if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        rt.block_on(remove_pods(cri));
    }
}

fn spawn(args: &[String], dir: &Path) -> Child {
    let log = File::options()
        .create(true)
        .append(true)
        .open(dir.join("berthd.log"))
        .expect("log file");
    Command::new(binary("berthd"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn berthd")
}

async fn wait_for(socket: &Path) -> CriClient {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if socket.exists() {
            if let Ok(mut c) = cri_client::connect(socket).await {
                if c.runtime
                    .version(cri::VersionRequest::default())
                    .await
                    .is_ok()
                {
                    return c;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "berthd did not come up on {}",
            socket.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Imports the busybox fixture image into the store at `images_dir`.
pub fn import_busybox(images_dir: &Path) {
    let tmp = tempfile::tempdir().expect("temp");
    let archive = tmp.path().join("busybox.tar");
    let spec = ImageSpec::new(vec![Layer::busybox().expect("busybox layer")]);
    spec.write_oci_archive(&archive, BUSYBOX).expect("archive");
    let store = ImageStore::open(images_dir, RegistryConfig::default()).expect("store");
    store.import(&archive).expect("import");
}

/// A pod config named `name` (uid derived from it), own network.
pub fn pod_config(name: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        labels: [("app".to_string(), name.to_string())].into(),
        ..Default::default()
    }
}

/// A busybox container config running `sh -c script`.
pub fn sh_container(name: &str, script: &str) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: BUSYBOX.into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}.log"),
        ..Default::default()
    }
}
