//! The bench's error type.

use std::path::PathBuf;

/// Why a measurement or the whole bench failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The runtime binary could not be started.
    #[error("starting {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A runtime command exited unsuccessfully.
    #[error("{runtime} {verb} {id}: {reason}")]
    Failed {
        runtime: &'static str,
        verb: &'static str,
        id: String,
        reason: String,
    },
    /// A container did not reach the expected state in time.
    #[error("{runtime}: container {id} did not stop within {seconds} s")]
    NotStopped {
        runtime: &'static str,
        id: String,
        seconds: u64,
    },
    /// A runtime reported success but did not do the job.
    #[error("{runtime}: {what}")]
    Misbehaved { runtime: &'static str, what: String },
    /// A filesystem operation failed on a path.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The busybox bundle could not be built.
    #[error("building the bundle: {0}")]
    Fixture(#[from] berth_fixtures::FixtureError),
    /// The Ctrl-C/SIGTERM handler could not be installed.
    #[error("installing the signal handler: {0}")]
    Signal(#[from] ctrlc::Error),
    /// A pod network operation failed.
    #[error("{path} network: {op} pod {pod}: {source}")]
    Net {
        path: &'static str,
        op: &'static str,
        pod: String,
        #[source]
        source: Box<berth_cni::NetError>,
    },
    /// A pod network task died before finishing.
    #[error("{path} network: {op} task for pod {pod} failed: {reason}")]
    Task {
        path: &'static str,
        op: &'static str,
        pod: String,
        reason: String,
    },
    /// The async runtime that drives the pod networks could not start.
    #[error("starting the async runtime: {0}")]
    AsyncRuntime(#[source] std::io::Error),
    /// The bench could not move into its own network namespace.
    #[error("entering a private node network namespace: {0}")]
    NodeNetns(#[source] nix::Error),
    /// The local registry could not be started or filled.
    #[error("local registry: {0}")]
    Registry(#[from] berth_fixtures::registry::RegistryError),
    /// The bench image could not be generated or written.
    #[error("writing the bench image {path}: {source}")]
    ImageFixture {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// berth's image store failed.
    #[error("berth image store: {op} {reference}: {source}")]
    ImageStore {
        op: &'static str,
        reference: String,
        #[source]
        source: Box<berth_agent::images::ImageError>,
    },
    /// A CRI endpoint could not be reached.
    #[error("{runtime}: connecting to {endpoint}: {source}")]
    Connect {
        runtime: &'static str,
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// A CRI call failed.
    #[error("{runtime} {rpc} {pod}: {code:?}: {message}")]
    Rpc {
        runtime: &'static str,
        rpc: &'static str,
        pod: String,
        code: tonic::Code,
        message: String,
    },
    /// The user interrupted the run.
    #[error("interrupted")]
    Interrupted,
}

impl BenchError {
    /// The short reason shown in a table cell for a runtime that could not run.
    pub fn reason(&self) -> String {
        match self {
            BenchError::Failed { reason, .. } => reason.clone(),
            BenchError::Misbehaved { what, .. } => what.clone(),
            BenchError::Spawn { binary, source }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                format!("not found: {}", binary.display())
            }
            BenchError::Spawn { source, .. } => source.to_string(),
            BenchError::Net { op, source, .. } => format!("{op}: {source}"),
            BenchError::Rpc {
                rpc, code, message, ..
            } => format!("{rpc}: {code:?}: {message}"),
            other => other.to_string(),
        }
    }
}
