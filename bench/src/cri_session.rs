//! One CRI bench run's resources: a temporary directory with the fixture
//! images (a pause-like sandbox image for containerd, the `sleep` image for
//! both), the CNI conflist containerd's pods use, and the subjects: a
//! private containerd with its CRI plugin and a private berthd, or the
//! endpoints given on the command line. Closing it removes every pod of the
//! run, stops the daemons and removes the cgroups the pods lived in.

use std::path::{Path, PathBuf};

use berth_fixtures::busybox_symlinked;
use berth_fixtures::image::ImageSpec;
use tempfile::TempDir;
use tokio::runtime::Runtime;

use crate::berthd::{self, Berthd, BerthdSettings};
use crate::containerd::{self, Containerd, CriSettings};
use crate::cri_client::CriClient;
use crate::cri_pod::{PodPlace, SLEEP_COMMAND, SLEEP_IMAGE};
use crate::error::BenchError;
use crate::procs::{self, Memory};
use crate::sweep;

/// containerd's sandbox image, imported before it serves the first pod.
const PAUSE_IMAGE: &str = "docker.io/berth/bench-pause:1";
/// containerd's pods: a CNI bridge and subnet that are neither berth's
/// defaults (`berth0`, 10.88.0.0/16) nor the network bench's.
const CNI_BRIDGE: &str = "bbench-cd0";
const CNI_SUBNET: &str = "10.238.0.0/16";
/// berthd's pods.
const BERTHD_BRIDGE: &str = "bbench-bd0";
const BERTHD_SUBNET: &str = "10.239.0.0/16";
const BERTHD_NFT_TABLE: &str = "berth_bench_cri";
/// Worker threads of the async runtime: one per core of the bench machine.
const WORKER_THREADS: usize = 2;

/// What runs behind a subject's endpoint.
pub enum Daemon {
    Berthd(Berthd),
    Containerd(Containerd),
    /// An endpoint given on the command line, not managed by the bench.
    External,
    /// A daemon that did not start.
    NotRunning,
}

/// One CRI endpoint under test.
pub struct CriSubject {
    pub name: String,
    pub endpoint: String,
    pub daemon: Daemon,
    /// The client, or why the subject cannot be measured.
    pub client: Result<CriClient, String>,
    /// Version's `runtime_name runtime_version`.
    pub version: Option<String>,
    pub cgroup_parent: String,
    pub log_root: PathBuf,
}

impl CriSubject {
    /// Where its pods go.
    pub fn place<'a>(&'a self, run: &'a str) -> PodPlace<'a> {
        PodPlace {
            run,
            cgroup_parent: &self.cgroup_parent,
            log_root: &self.log_root,
        }
    }

    /// The daemon's memory, and its per-pod helpers' (containerd's shims,
    /// berthd's monitors) with their count; `None` for an external endpoint.
    pub fn memory(&self) -> Option<(Memory, Memory, usize)> {
        let (pid, helpers) = match &self.daemon {
            Daemon::Berthd(daemon) => (daemon.pid()?, daemon.monitors()),
            Daemon::Containerd(daemon) => (daemon.pid()?, daemon.shims()),
            Daemon::External | Daemon::NotRunning => return None,
        };
        let daemon = procs::memory(pid)?;
        let helper_memory = helpers
            .iter()
            .filter_map(|proc| procs::memory(proc.pid))
            .fold(Memory::default(), |sum, memory| sum + memory);
        Some((daemon, helper_memory, helpers.len()))
    }
}

/// The programs and endpoints of a run.
pub struct CriPrograms<'a> {
    /// External endpoints; when given, no daemon is started.
    pub endpoints: &'a [String],
    pub berthd: &'a Path,
    /// Where berthd logs at debug level, if not in the run's directory.
    pub berthd_log: Option<&'a Path>,
    pub containerd: &'a Path,
    pub ctr: &'a Path,
    pub cni_bin_dir: &'a Path,
}

/// The run's subjects and resources; [`CriSession::close`] (or drop)
/// cleans up.
pub struct CriSession {
    pub runtime: Runtime,
    /// berthd first, then containerd (or the external endpoints in order).
    pub subjects: Vec<CriSubject>,
    /// The run id every pod is labelled with.
    pub run: String,
    cgroup_root: String,
    /// berthd's runtime state: a short path under /run (see `Berthd::start`).
    berthd_state: TempDir,
    work_dir: TempDir,
}

impl CriSession {
    /// Writes the images and configs and starts the daemons. A daemon that
    /// does not start becomes an unavailable subject, not an error.
    pub fn new(programs: &CriPrograms) -> Result<CriSession, BenchError> {
        let work_dir = tempfile::Builder::new()
            .prefix("berth-bench-cri-")
            .tempdir()
            .map_err(|source| BenchError::Io {
                op: "create temporary directory in",
                path: std::env::temp_dir(),
                source,
            })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .enable_all()
            .build()
            .map_err(BenchError::AsyncRuntime)?;
        let berthd_state = tempfile::Builder::new()
            .prefix("bbc")
            .tempdir_in("/run")
            .map_err(|source| BenchError::Io {
                op: "create temporary directory in",
                path: "/run".into(),
                source,
            })?;
        let run = format!("berth-bench-cri-{}", std::process::id());
        let mut session = CriSession {
            runtime,
            subjects: Vec::new(),
            cgroup_root: format!("/{run}"),
            run,
            berthd_state,
            work_dir,
        };
        if programs.endpoints.is_empty() {
            session.start_daemons(programs)?;
        } else {
            for (index, endpoint) in programs.endpoints.iter().enumerate() {
                let name = format!("endpoint{}", index + 1);
                session.add(name, endpoint.clone(), Ok(Daemon::External));
            }
        }
        Ok(session)
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.work_dir.path().join(name)
    }

    fn start_daemons(&mut self, programs: &CriPrograms) -> Result<(), BenchError> {
        let images = self.dir("images");
        std::fs::create_dir_all(&images).map_err(|source| BenchError::Io {
            op: "create",
            path: images.clone(),
            source,
        })?;
        let sleep_archive = write_image(&images, SLEEP_IMAGE, &SLEEP_COMMAND)?;
        let pause_archive = write_image(&images, PAUSE_IMAGE, &["/bin/sleep", "infinity"])?;

        let berthd = Berthd::start(
            programs.berthd,
            &self.dir("berthd"),
            self.berthd_state.path(),
            &[&sleep_archive],
            &BerthdSettings {
                cgroup_parent: &format!("{}/{}", self.cgroup_root, berthd::NAME),
                bridge: BERTHD_BRIDGE,
                subnet: BERTHD_SUBNET,
                nft_table: BERTHD_NFT_TABLE,
                debug_log: programs.berthd_log,
            },
        );
        let endpoint = |socket: &Path| format!("unix://{}", socket.display());
        let berthd_endpoint = berthd
            .as_ref()
            .map_or_else(|_| String::new(), |daemon| endpoint(daemon.socket()));
        self.add(
            berthd::NAME.to_string(),
            berthd_endpoint,
            berthd.map(Daemon::Berthd),
        );

        let conf_dir = self.dir("cni/net.d");
        write_conflist(&conf_dir, &self.dir("cni/ipam"))?;
        let cri = CriSettings {
            sandbox_image: PAUSE_IMAGE.to_string(),
            cni_conf_dir: conf_dir,
            cni_bin_dir: programs.cni_bin_dir.to_path_buf(),
        };
        let containerd = Containerd::start(
            programs.containerd,
            programs.ctr,
            &self.dir("containerd"),
            Some(&cri),
        )
        .and_then(|daemon| {
            for archive in [&pause_archive, &sleep_archive] {
                let path = archive.display().to_string();
                daemon.ctr("k8s.io", &["images", "import", &path])?;
            }
            Ok(daemon)
        });
        let containerd_endpoint = containerd
            .as_ref()
            .map_or_else(|_| String::new(), |daemon| endpoint(daemon.socket()));
        self.add(
            containerd::NAME.to_string(),
            containerd_endpoint,
            containerd.map(Daemon::Containerd),
        );
        Ok(())
    }

    /// Adds a subject and connects to it (asking Version: a daemon that
    /// does not answer it is unavailable).
    fn add(&mut self, name: String, endpoint: String, daemon: Result<Daemon, BenchError>) {
        let (daemon, client) = match daemon {
            Ok(daemon) => {
                let client = self.runtime.block_on(async {
                    let mut client = CriClient::connect(static_name(&name), &endpoint).await?;
                    let version = client.version().await?;
                    Ok::<_, BenchError>((client, version))
                });
                (daemon, client.map_err(|error| error.reason()))
            }
            Err(error) => (Daemon::NotRunning, Err(error.reason())),
        };
        let (client, version) = match client {
            Ok((client, version)) => (Ok(client), Some(version)),
            Err(reason) => (Err(reason), None),
        };
        self.subjects.push(CriSubject {
            cgroup_parent: format!("{}/{name}", self.cgroup_root),
            log_root: self.dir("logs").join(&name),
            name,
            endpoint,
            daemon,
            client,
            version,
        });
    }

    /// Removes every pod of the run, stops the daemons, and removes the
    /// pods' cgroups; returns the first failure. Also done on drop.
    pub fn close(&mut self) -> Result<(), BenchError> {
        let mut first_error = None;
        for mut subject in std::mem::take(&mut self.subjects) {
            if let Ok(client) = &mut subject.client {
                if let Err(error) = self.runtime.block_on(client.remove_run(&self.run)) {
                    first_error.get_or_insert(error);
                }
            }
            let stopped = match &mut subject.daemon {
                Daemon::Berthd(daemon) => daemon.stop(),
                Daemon::Containerd(daemon) => daemon.stop(),
                Daemon::External | Daemon::NotRunning => Ok(()),
            };
            if let Err(error) = stopped {
                first_error.get_or_insert(error);
            }
        }
        let left = sweep::remove_cgroup_tree(&self.cgroup_root);
        if !left.is_empty() {
            first_error.get_or_insert(BenchError::Misbehaved {
                runtime: "cleanup",
                what: format!("cgroups left: {left:?}"),
            });
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for CriSession {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            eprintln!("berth-bench: cleaning up: {error}");
        }
    }
}

/// The subject names the bench knows, as `'static` for error values.
fn static_name(name: &str) -> &'static str {
    match name {
        berthd::NAME => berthd::NAME,
        containerd::NAME => containerd::NAME,
        _ => "endpoint",
    }
}

/// A one-layer busybox image running `cmd`, as a `docker save` archive
/// (both daemons import that format).
fn write_image(dir: &Path, name: &str, cmd: &[&str]) -> Result<PathBuf, BenchError> {
    let archive = dir.join(format!("{}.tar", name.replace(['/', ':'], "_")));
    let fixture_error = |source| BenchError::ImageFixture {
        path: archive.clone(),
        source,
    };
    let mut spec = ImageSpec::new(vec![busybox_symlinked().map_err(fixture_error)?]);
    spec.cmd = cmd.iter().map(|arg| arg.to_string()).collect();
    spec.write_docker_save(&archive, name)
        .map_err(|source| BenchError::ImageFixture {
            path: archive.clone(),
            source,
        })?;
    Ok(archive)
}

/// containerd's CNI network: bridge with host-local IPAM (its own data
/// dir), then portmap, as a conflist in `conf_dir`.
fn write_conflist(conf_dir: &Path, ipam_dir: &Path) -> Result<(), BenchError> {
    let conflist = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "berth-bench-cri",
        "plugins": [
            {
                "type": "bridge",
                "bridge": CNI_BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": CNI_SUBNET}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir.display().to_string(),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    });
    let path = conf_dir.join("10-berth-bench.conflist");
    let io_error = |op| {
        let path = path.clone();
        move |source| BenchError::Io { op, path, source }
    };
    std::fs::create_dir_all(conf_dir).map_err(io_error("create the directory of"))?;
    std::fs::write(&path, conflist.to_string()).map_err(io_error("write"))
}
