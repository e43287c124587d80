//! A private containerd for the benches: Debian's `containerd` with its own
//! config, root, state, sockets and runc root under one directory, driven
//! with `ctr`; optionally with the CRI plugin (runc, a CNI conf dir and a
//! sandbox image of the bench's choosing). Stopping it also kills the
//! shims it left and unmounts what it mounted under its directory.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::BenchError;
use crate::procs::{self, Proc};
use crate::sweep;

/// The name of the subject in reports and errors.
pub const NAME: &str = "containerd";
/// The name of its shim processes (`comm` is cut at 15 bytes).
const SHIM_COMM: &str = "containerd-shim";
/// How long containerd may take to listen, and to exit on SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// What the CRI plugin needs from the bench.
pub struct CriSettings {
    /// `sandbox_image`: must be imported before the first RunPodSandbox.
    pub sandbox_image: String,
    /// Where the CNI conflist is.
    pub cni_conf_dir: PathBuf,
    /// Where the CNI plugin binaries are.
    pub cni_bin_dir: PathBuf,
}

/// A running containerd; stopped on drop.
pub struct Containerd {
    child: Option<Child>,
    dir: PathBuf,
    socket: PathBuf,
    ctr: PathBuf,
}

impl Containerd {
    /// Writes a config under `dir` and starts `binary` with it; waits until
    /// its socket answers. Without `cri`, the CRI plugin is disabled.
    pub fn start(
        binary: &Path,
        ctr: &Path,
        dir: &Path,
        cri: Option<&CriSettings>,
    ) -> Result<Containerd, BenchError> {
        fs::create_dir_all(dir).map_err(|source| BenchError::Io {
            op: "create",
            path: dir.to_path_buf(),
            source,
        })?;
        let socket = dir.join("containerd.sock");
        let config_path = dir.join("config.toml");
        let config = config(dir, &socket, cri);
        fs::write(&config_path, config).map_err(|source| BenchError::Io {
            op: "write",
            path: config_path.clone(),
            source,
        })?;
        let log_path = dir.join("containerd.log");
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
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|source| BenchError::Spawn {
                binary: binary.to_path_buf(),
                source,
            })?;
        let mut daemon = Containerd {
            child: Some(child),
            dir: dir.to_path_buf(),
            socket,
            ctr: ctr.to_path_buf(),
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
                let tail = log_tail(log);
                return Err(BenchError::Misbehaved {
                    runtime: NAME,
                    what: format!("did not start listening: {tail}"),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The gRPC socket (also the CRI endpoint when the plugin is on).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `ctr --address <socket> --namespace <namespace> ARGS`; its stdout, or
    /// a failure with its stderr.
    pub fn ctr(&self, namespace: &str, args: &[&str]) -> Result<String, BenchError> {
        let output = Command::new(&self.ctr)
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", namespace])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| BenchError::Spawn {
                binary: self.ctr.clone(),
                source,
            })?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(BenchError::Failed {
                runtime: NAME,
                verb: "ctr",
                id: args.join(" "),
                reason: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }

    /// `containerd --version`'s version field.
    pub fn version(binary: &Path) -> Option<String> {
        let output = Command::new(binary).arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        text.split_whitespace().nth(2).map(str::to_string)
    }

    /// The shim processes serving this containerd.
    pub fn shims(&self) -> Vec<Proc> {
        let socket = self.socket.display().to_string();
        procs::all()
            .into_iter()
            .filter(|proc| {
                proc.comm.starts_with(SHIM_COMM) && proc.has_arg_pair("-address", &socket)
            })
            .collect()
    }

    /// Stops containerd (SIGTERM, then SIGKILL), kills its shims, and
    /// unmounts whatever is left mounted under its directory.
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
        let shims: Vec<u32> = self.shims().iter().map(|proc| proc.pid).collect();
        sweep::kill_all(&shims);
        let stuck = sweep::unmount_under(&self.dir);
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

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!("berth-bench: cleaning up: {error}");
        }
    }
}

/// The last lines of containerd's log, for an error message.
fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// containerd's config (version 2): everything under `dir`, no debug or
/// metrics listener, and the CRI plugin only when `cri` is given.
fn config(dir: &Path, socket: &Path, cri: Option<&CriSettings>) -> String {
    // Top-level keys come before the first table.
    let disabled = match cri {
        None => "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
        Some(_) => "",
    };
    let mut text = format!(
        "version = 2\nroot = {root:?}\nstate = {state:?}\n{disabled}\
         [grpc]\n  address = {socket:?}\n\
         [ttrpc]\n  address = {ttrpc:?}\n\
         [debug]\n  address = \"\"\n  level = \"warn\"\n\
         [metrics]\n  address = \"\"\n\
         [plugins.\"io.containerd.internal.v1.opt\"]\n  path = {opt:?}\n",
        root = dir.join("root").display().to_string(),
        state = dir.join("state").display().to_string(),
        socket = socket.display().to_string(),
        ttrpc = format!("{}.ttrpc", socket.display()),
        opt = dir.join("opt").display().to_string(),
    );
    if let Some(cri) = cri {
        let _ = write!(
            text,
            "[plugins.\"io.containerd.grpc.v1.cri\"]\n\
                 \x20 sandbox_image = {image:?}\n\
                 \x20 restrict_oom_score_adj = true\n\
                 \x20 disable_apparmor = true\n\
                 \x20 stream_server_address = \"127.0.0.1\"\n\
                 \x20 stream_server_port = \"0\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n\
                 \x20 snapshotter = \"overlayfs\"\n\
                 \x20 default_runtime_name = \"runc\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n\
                 \x20 runtime_type = \"io.containerd.runc.v2\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n\
                 \x20 SystemdCgroup = false\n\
                 \x20 Root = {runc_root:?}\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".cni]\n\
                 \x20 bin_dir = {bin:?}\n\
                 \x20 conf_dir = {conf:?}\n\
                 \x20 max_conf_num = 1\n",
            image = cri.sandbox_image,
            runc_root = dir.join("runc").display().to_string(),
            bin = cri.cni_bin_dir.display().to_string(),
            conf = cri.cni_conf_dir.display().to_string(),
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keeps_everything_under_the_directory() {
        let dir = Path::new("/tmp/b");
        let text = config(dir, &dir.join("c.sock"), None);
        assert!(text.contains("root = \"/tmp/b/root\""), "{text}");
        assert!(text.contains("address = \"/tmp/b/c.sock\""), "{text}");
        assert!(text.contains("address = \"/tmp/b/c.sock.ttrpc\""), "{text}");
        assert!(text.contains("disabled_plugins"), "{text}");
    }

    #[test]
    fn cri_config_names_the_sandbox_image_and_cni_dirs() {
        let dir = Path::new("/tmp/b");
        let cri = CriSettings {
            sandbox_image: "docker.io/berth/pause:1".into(),
            cni_conf_dir: dir.join("net.d"),
            cni_bin_dir: "/usr/lib/cni".into(),
        };
        let text = config(dir, &dir.join("c.sock"), Some(&cri));
        assert!(!text.contains("disabled_plugins"), "{text}");
        assert!(
            text.contains("sandbox_image = \"docker.io/berth/pause:1\""),
            "{text}"
        );
        assert!(text.contains("conf_dir = \"/tmp/b/net.d\""), "{text}");
        assert!(text.contains("Root = \"/tmp/b/runc\""), "{text}");
    }
}
