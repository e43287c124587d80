//! A local OCI registry for tests and benchmarks: Debian's `docker-registry`
//! serving plain HTTP on a free 127.0.0.1 port with its storage in a given
//! directory, filled with `skopeo copy`. Open access only (no auth); the
//! process is killed when the handle drops.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::image::{BuiltImage, ImageSpec};

/// Where Debian installs the registry.
pub const DEFAULT_REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// How long the registry may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the registry could not be started or filled.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A file of the registry could not be written or read.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A program could not be started.
    #[error("starting {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The registry never accepted connections.
    #[error("docker-registry did not listen on 127.0.0.1:{port} within {seconds} s (log: {log})")]
    NotListening {
        port: u16,
        seconds: u64,
        log: PathBuf,
    },
    /// `skopeo copy` failed.
    #[error("skopeo copy of {archive} to {destination}: {stderr}")]
    Push {
        archive: PathBuf,
        destination: String,
        stderr: String,
    },
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError {
    let path = path.to_path_buf();
    move |source| RegistryError::Io { op, path, source }
}

/// A running registry; killed (and waited for) on drop. Its storage stays
/// in the directory it was given, which the caller owns.
pub struct LocalRegistry {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl LocalRegistry {
    /// Starts `docker-registry` storing under `dir` (created if missing;
    /// config, storage and log go there) and waits until it listens.
    pub fn start(dir: &Path) -> Result<LocalRegistry, RegistryError> {
        Self::start_with(Path::new(DEFAULT_REGISTRY_BINARY), dir)
    }

    /// Like [`LocalRegistry::start`] with another registry binary.
    pub fn start_with(binary: &Path, dir: &Path) -> Result<LocalRegistry, RegistryError> {
        fs::create_dir_all(dir).map_err(io("create", dir))?;
        let port = free_port().map_err(io("bind a free port on", Path::new("127.0.0.1")))?;
        let config = dir.join("config.yml");
        let text = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: berth-fixture\n",
            dir.join("data").display()
        );
        fs::write(&config, text).map_err(io("write", &config))?;
        let log_path = dir.join("log");
        let log = fs::File::create(&log_path).map_err(io("create", &log_path))?;
        let err_log = log.try_clone().map_err(io("dup", &log_path))?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|source| RegistryError::Spawn {
                program: binary.display().to_string(),
                source,
            })?;
        // From here on, drop kills the child if it never listens.
        let registry = LocalRegistry {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(RegistryError::NotListening {
                    port,
                    seconds: START_TIMEOUT.as_secs(),
                    log: log_path,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(registry)
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's directory (config, `data/`, `log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Pushes the OCI archive `archive` as `<host>/<repo_tag>`, every platform
    /// of an index included.
    pub fn push_archive(&self, archive: &Path, repo_tag: &str) -> Result<(), RegistryError> {
        let destination = format!("docker://{}/{repo_tag}", self.host());
        let output = Command::new("skopeo")
            .args([
                "--insecure-policy",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--multi-arch",
                "all",
            ])
            .arg(format!("oci-archive:{}", archive.display()))
            .arg(&destination)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| RegistryError::Spawn {
                program: "skopeo".into(),
                source,
            })?;
        if output.status.success() {
            Ok(())
        } else {
            Err(RegistryError::Push {
                archive: archive.to_path_buf(),
                destination,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }

    /// Writes `spec` as an OCI archive in the registry's directory, pushes
    /// it as `repo_tag` and deletes the archive.
    pub fn push(&self, spec: &ImageSpec, repo_tag: &str) -> Result<BuiltImage, RegistryError> {
        let archive = self
            .dir
            .join(format!("{}.tar", repo_tag.replace(['/', ':'], "_")));
        let built = spec
            .write_oci_archive(&archive, repo_tag)
            .map_err(io("write", &archive))?;
        let pushed = self.push_archive(&archive, repo_tag);
        let _ = fs::remove_file(&archive);
        pushed.map(|()| built)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
