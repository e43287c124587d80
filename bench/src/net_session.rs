//! One network bench run's resources: the async runtime, the two pod
//! networks and their temporary work directory. Dropping it tears down every
//! pod still owned, removes both networks, then the directory.

use std::path::Path;
use std::sync::Arc;

use tempfile::TempDir;
use tokio::runtime::Runtime;

use crate::error::BenchError;
use crate::pod_network::PodNetwork;

/// Worker threads of the async runtime: one per core of the bench machine.
const WORKER_THREADS: usize = 2;

/// The runtime and both networks; cleaned up on drop.
pub struct NetSession {
    pub runtime: Runtime,
    /// The built-in network first, then the CNI path.
    pub paths: Vec<Arc<PodNetwork>>,
    work_dir: TempDir,
}

impl NetSession {
    /// Opens both networks in a new temporary directory; the CNI path's
    /// plugins come from `cni_plugin_dir`.
    pub fn new(cni_plugin_dir: &Path) -> Result<NetSession, BenchError> {
        let work_dir = tempfile::Builder::new()
            .prefix("berth-bench-net-")
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
        let mut session = NetSession {
            runtime,
            paths: Vec::new(),
            work_dir,
        };
        // Pushed one by one so that a failure to open the second still
        // closes the first on drop.
        let builtin = PodNetwork::builtin(session.work_dir.path())?;
        session.paths.push(Arc::new(builtin));
        let cni = PodNetwork::cni(session.work_dir.path(), cni_plugin_dir)?;
        session.paths.push(Arc::new(cni));
        Ok(session)
    }

    /// Closes both networks, returning the first failure; also done on drop,
    /// where failures can only be printed.
    pub fn close(&mut self) -> Result<(), BenchError> {
        let paths = std::mem::take(&mut self.paths);
        let mut first_error = None;
        for path in paths {
            if let Err(error) = self.runtime.block_on(path.close()) {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for NetSession {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            eprintln!("berth-bench: cleaning up: {error}");
        }
    }
}
