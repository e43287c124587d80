//! Shared helpers for the root-only integration tests: a throw-away network
//! (own bridge, subnets, nft table, state and netns dirs) that cleans up on
//! drop, and helpers to run sockets inside a pod's namespace.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_cni::{Network, NetworkConfig, NetworkMode, PodNetworkRequest, PortMapping};

/// A test network; everything it created is removed on drop.
pub struct TestNet {
    pub net: Option<Network>,
    pub cfg: NetworkConfig,
    pub dir: tempfile::TempDir,
}

/// Config for test `tag` (≤ 9 chars) using 10.231.`n`.0/24 and fd00:bee:`n`::/64.
pub fn test_config(tag: &str, n: u8, dual_stack: bool, dir: &Path) -> NetworkConfig {
    NetworkConfig {
        mode: NetworkMode::Builtin,
        bridge: format!("bt-{tag}"),
        subnet_v4: format!("10.231.{n}.0/24").parse().unwrap(),
        subnet_v6: dual_stack.then(|| format!("fd00:bee:{n}::/64").parse().unwrap()),
        mtu: 1500,
        state_dir: dir.join("state"),
        netns_dir: dir.join("netns"),
        masquerade: true,
        nft_table: format!("berth_test_{tag}"),
        plugin_timeout: Duration::from_secs(20),
    }
}

impl TestNet {
    pub fn new(tag: &str, n: u8, dual_stack: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = test_config(tag, n, dual_stack, dir.path());
        Self::with_config(cfg, dir)
    }

    pub fn with_config(cfg: NetworkConfig, dir: tempfile::TempDir) -> Self {
        let mut t = TestNet {
            net: None,
            cfg: cfg.clone(),
            dir,
        };
        t.net = Some(Network::new(cfg).unwrap());
        t
    }

    pub fn net(&self) -> &Network {
        self.net.as_ref().unwrap()
    }

    /// Drops the Network and opens a new one on the same state (a restart).
    pub fn reopen(&mut self) {
        self.net = None;
        self.net = Some(Network::new(self.cfg.clone()).unwrap());
    }

    /// create_netns + setup for `pod`.
    pub async fn add_pod(
        &self,
        pod: &str,
        ports: Vec<PortMapping>,
    ) -> Result<berth_cni::PodNetworkStatus, berth_cni::NetError> {
        let netns = self.net().create_netns(pod)?;
        self.net().setup(&request(pod, netns, ports)).await
    }

    /// teardown + remove_netns for `pod`.
    pub async fn remove_pod(&self, pod: &str) {
        self.net().teardown(pod).await.unwrap();
        self.net().remove_netns(pod).unwrap();
    }

    pub fn netns(&self, pod: &str) -> PathBuf {
        self.cfg.netns_dir.join(pod)
    }
}

pub fn request(pod: &str, netns: PathBuf, ports: Vec<PortMapping>) -> PodNetworkRequest {
    PodNetworkRequest {
        id: pod.to_string(),
        name: format!("name-{pod}"),
        namespace: "default".to_string(),
        uid: format!("uid-{pod}"),
        netns,
        port_mappings: ports,
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        if let Some(net) = self.net.take() {
            std::thread::scope(|s| {
                s.spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        let _ = net.gc(&Default::default()).await;
                        let _ = net.destroy().await;
                    });
                });
            });
        }
        // Fallbacks in case the Network could not be opened or destroyed.
        unpin_all(&self.cfg.netns_dir);
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "inet", &self.cfg.nft_table])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.cfg.bridge])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Unmounts every namespace pinned in `dir`, then `dir` itself.
pub fn unpin_all(dir: &Path) {
    use nix::mount::{umount2, MntFlags};
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let _ = umount2(&e.path(), MntFlags::MNT_DETACH);
    }
    let _ = umount2(dir, MntFlags::MNT_DETACH);
}

/// Runs `f` on a thread inside the namespace at `netns`.
pub fn in_netns<T: Send>(netns: &Path, f: impl FnOnce() -> T + Send) -> T {
    let file = std::fs::File::open(netns).unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

/// An echo server bound in `netns` (or the host if `None`) that serves
/// `count` connections, or gives up after 30 s.
pub fn echo_server(
    netns: Option<PathBuf>,
    addr: SocketAddr,
    count: usize,
) -> std::thread::JoinHandle<usize> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        if let Some(ns) = netns {
            let file = std::fs::File::open(ns).unwrap();
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        }
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        tx.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut served = 0;
        while served < count && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    let mut buf = [0u8; 64];
                    if let Ok(n) = stream.read(&mut buf) {
                        let _ = stream.write_all(&buf[..n]);
                    }
                    served += 1;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
        served
    });
    rx.recv().unwrap();
    handle
}

/// Connects to `addr`, sends `msg`, returns what came back.
pub fn echo(addr: SocketAddr, msg: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(msg.as_bytes())?;
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Whether the host has a link called `name`.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The nftables table's listing.
pub fn nft_list(table: &str) -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "table", "inet", table])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `cond` every 20 ms until it holds or 30 s pass (for work the
/// kernel finishes asynchronously, like namespace cleanup).
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}
