//! A private berthd for the CRI bench: its own root, state, socket, cgroup
//! parent, bridge, subnet and nftables table, with the bench's images
//! imported into its store before it starts. Stopping it also kills the
//! per-pod monitors it left and unmounts what is left under its directory.

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_agent::images::{ImageStore, RegistryConfig};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::BenchError;
use crate::procs::{self, Proc};
use crate::sweep;

/// The name of the subject in reports and errors.
pub const NAME: &str = "berthd";
/// The monitor's process name, and its pause clone's.
const MONITOR_COMM: &str = "berth-monitor";
const PAUSE_COMM: &str = "berth-pause";
/// How long berthd may take to listen, and to exit on SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The network and cgroup settings that keep this berthd apart from a real
/// one (and from containerd's pods).
pub struct BerthdSettings<'a> {
    pub cgroup_parent: &'a str,
    pub bridge: &'a str,
    pub subnet: &'a str,
    pub nft_table: &'a str,
    /// Log at debug level to this file (kept) instead of at warn level
    /// into `dir`.
    pub debug_log: Option<&'a Path>,
}

/// A running berthd; stopped on drop.
pub struct Berthd {
    child: Option<Child>,
    dir: PathBuf,
    state: PathBuf,
    socket: PathBuf,
}

impl Berthd {
    /// Imports `archives` into the store under `dir`, then starts `binary`
    /// with its root and log under `dir` and its runtime state (socket,
    /// monitor sockets) in `state`, and waits until its socket accepts.
    /// `state` must be short: a monitor socket is
    /// `<state>/pods/<64 hex>/monitor.sock`, and socket paths are limited
    /// to 107 bytes.
    pub fn start(
        binary: &Path,
        dir: &Path,
        state: &Path,
        archives: &[&Path],
        settings: &BerthdSettings,
    ) -> Result<Berthd, BenchError> {
        if !binary.exists() {
            return Err(BenchError::Spawn {
                binary: binary.to_path_buf(),
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        let root = dir.join("root");
        let state = state.to_path_buf();
        import_images(&root.join("images"), archives)?;
        let socket = state.join("berth.sock");
        let (log_path, log_level) = match settings.debug_log {
            Some(path) => (path.to_path_buf(), "debug"),
            None => (dir.join("berthd.log"), "warn"),
        };
        let log = fs::File::create(&log_path).map_err(|source| BenchError::Io {
            op: "create",
            path: log_path.clone(),
            source,
        })?;
        let err_log = log.try_clone().map_err(|source| BenchError::Io {
            op: "dup",
            path: log_path.clone(),
            source,
        })?;
        let child = Command::new(binary)
            .arg("--root")
            .arg(&root)
            .arg("--state")
            .arg(&state)
            .arg("--listen")
            .arg(&socket)
            .args(["--log-level", log_level])
            .args(["--cgroup-parent", settings.cgroup_parent])
            .args(["--network-bridge", settings.bridge])
            .args(["--network-subnet", settings.subnet])
            .args(["--network-nft-table", settings.nft_table])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|source| BenchError::Spawn {
                binary: binary.to_path_buf(),
                source,
            })?;
        let mut daemon = Berthd {
            child: Some(child),
            dir: dir.to_path_buf(),
            state,
            socket,
        };
        daemon.wait_listening(&log_path)?;
        Ok(daemon)
    }

    fn wait_listening(&mut self, log: &Path) -> Result<(), BenchError> {
        let deadline = Instant::now() + START_TIMEOUT;
        while UnixStream::connect(&self.socket).is_err() {
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let text = fs::read_to_string(log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
                return Err(BenchError::Misbehaved {
                    runtime: NAME,
                    what: format!("did not start listening: {tail}"),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The CRI socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Every berth-monitor process of this berthd: monitors, and the pause
    /// processes cloned from them (same arguments, renamed).
    fn monitor_family(&self) -> Vec<Proc> {
        let state = self.state.display().to_string();
        procs::all()
            .into_iter()
            .filter(|proc| {
                (proc.comm == MONITOR_COMM || proc.comm == PAUSE_COMM)
                    && proc.args.iter().any(|arg| arg.starts_with(&state))
            })
            .collect()
    }

    /// The per-pod monitors. The pause processes are left out: they stand
    /// for containerd's pause containers, which are not counted either.
    pub fn monitors(&self) -> Vec<Proc> {
        self.monitor_family()
            .into_iter()
            .filter(|proc| proc.comm == MONITOR_COMM)
            .collect()
    }

    /// Stops berthd (SIGTERM, then SIGKILL), kills its monitors and their
    /// pause processes, and unmounts what is left under its directory.
    pub fn stop(&mut self) -> Result<(), BenchError> {
        if let Some(mut child) = self.child.take() {
            if let Ok(raw) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(raw), Signal::SIGTERM);
            }
            let deadline = Instant::now() + STOP_TIMEOUT;
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let family: Vec<u32> = self.monitor_family().iter().map(|proc| proc.pid).collect();
        sweep::kill_all(&family);
        let mut stuck = sweep::unmount_under(&self.dir);
        stuck.extend(sweep::unmount_under(&self.state));
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(BenchError::Misbehaved {
                runtime: NAME,
                what: format!("mounts left under {}: {stuck:?}", self.dir.display()),
            })
        }
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!("berth-bench: cleaning up: {error}");
        }
    }
}

/// Imports each archive into the image store at `images_dir`.
fn import_images(images_dir: &Path, archives: &[&Path]) -> Result<(), BenchError> {
    let store_error = |op: &'static str, what: &Path| {
        let reference = what.display().to_string();
        move |source| BenchError::ImageStore {
            op,
            reference,
            source: Box::new(source),
        }
    };
    let store = ImageStore::open(images_dir, RegistryConfig::default())
        .map_err(store_error("open", images_dir))?;
    for archive in archives {
        store
            .import(archive)
            .map_err(store_error("import", archive))?;
    }
    Ok(())
}
