//! One bench run's resources: a temporary work directory with the busybox
//! bundles and each runtime's state root. Dropping it force-deletes every
//! container still owned, then removes the directory.

use std::path::{Path, PathBuf};

use berth_fixtures::Bundle;
use tempfile::TempDir;

use crate::error::BenchError;
use crate::runtime::Runtime;

/// The init process of the container that `exec` runs in.
pub const SLEEP_ARGS: &[&str] = &["/bin/sleep", "1000"];
/// What the probe container prints: proof that a runtime really runs containers.
pub const PROBE_MARKER: &str = "berth-bench-probe";
/// The process of every short-lived container.
pub const TRUE_ARGS: &[&str] = &["/bin/true"];

/// Runtimes and bundles of one run; field order is drop order: containers are
/// deleted before the directory holding their bundles and state goes.
pub struct Session {
    pub runtimes: Vec<Runtime>,
    true_bundle: Bundle,
    sleep_bundle: Bundle,
    echo_bundle: Bundle,
    _work_dir: TempDir,
}

impl Session {
    /// Builds the bundles and state roots for `runtimes` (name, binary).
    pub fn new(runtimes: Vec<(&'static str, PathBuf)>) -> Result<Session, BenchError> {
        let work_dir = tempfile::Builder::new()
            .prefix("berth-bench-")
            .tempdir()
            .map_err(|source| BenchError::Io {
                op: "create temporary directory in",
                path: std::env::temp_dir(),
                source,
            })?;
        let true_bundle = Bundle::new(work_dir.path().join("bundle-true"), TRUE_ARGS)?;
        let sleep_bundle = Bundle::new(work_dir.path().join("bundle-sleep"), SLEEP_ARGS)?;
        let echo_bundle = Bundle::new(
            work_dir.path().join("bundle-echo"),
            &["/bin/echo", PROBE_MARKER],
        )?;
        let runtimes = runtimes
            .into_iter()
            .map(|(name, binary)| Runtime::new(name, binary, work_dir.path()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Session {
            runtimes,
            true_bundle,
            sleep_bundle,
            echo_bundle,
            _work_dir: work_dir,
        })
    }

    /// The bundle whose process is `/bin/true`.
    pub fn true_bundle(&self) -> &Path {
        self.true_bundle.dir()
    }

    /// The bundle whose process prints [`PROBE_MARKER`].
    pub fn echo_bundle(&self) -> &Path {
        self.echo_bundle.dir()
    }

    /// The bundle whose process is `sleep 1000`.
    pub fn sleep_bundle(&self) -> &Path {
        self.sleep_bundle.dir()
    }
}
