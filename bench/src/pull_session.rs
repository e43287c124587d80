//! One pull bench run's resources: a temporary directory holding a local
//! registry with the generated bulk image pushed to it, a private
//! containerd (no CRI plugin), the store roots of berth's samples, and the
//! async runtime berth's pull runs on. Dropping it stops containerd and the
//! registry, then removes the directory.

use std::path::{Path, PathBuf};

use berth_fixtures::image::BuiltImage;
use berth_fixtures::registry::LocalRegistry;
use berth_fixtures::BulkImage;
use tempfile::TempDir;
use tokio::runtime::Runtime;

use crate::containerd::Containerd;
use crate::error::BenchError;

/// Repository and tag of the bulk image in the registry.
const REPOSITORY_TAG: &str = "bench/bulk:1";
/// Worker threads of the async runtime: one per core of the bench machine.
const WORKER_THREADS: usize = 2;

/// The programs the pull bench compares.
pub struct PullPrograms<'a> {
    pub registry: &'a Path,
    pub containerd: &'a Path,
    pub ctr: &'a Path,
}

/// What was pushed, for the report.
pub struct PushedImage {
    pub reference: String,
    pub shape: BulkImage,
    pub built: BuiltImage,
    /// Bytes of the compressed layer blobs.
    pub blob_bytes: u64,
}

/// Registry, image, containerd and berth's store roots; field order is
/// drop order.
pub struct PullSession {
    pub runtime: Runtime,
    pub containerd: Result<Containerd, BenchError>,
    pub image: PushedImage,
    _registry: LocalRegistry,
    work_dir: TempDir,
}

impl PullSession {
    /// Generates the image, starts the registry, pushes the image and
    /// starts containerd. A containerd that does not start is kept as the
    /// reason its column is `n/a`.
    pub fn new(shape: BulkImage, programs: &PullPrograms) -> Result<PullSession, BenchError> {
        let work_dir = tempfile::Builder::new()
            .prefix("berth-bench-pull-")
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
        let registry =
            LocalRegistry::start_with(programs.registry, &work_dir.path().join("registry"))?;
        let spec = shape.spec().map_err(|source| BenchError::ImageFixture {
            path: "/bin/busybox".into(),
            source,
        })?;
        let built = registry.push(&spec, REPOSITORY_TAG)?;
        drop(spec);
        let blob_bytes = built
            .layer_digests
            .iter()
            .map(|digest| blob_size(registry.dir(), digest))
            .sum();
        let image = PushedImage {
            reference: format!("{}/{REPOSITORY_TAG}", registry.host()),
            shape,
            built,
            blob_bytes,
        };
        let containerd = Containerd::start(
            programs.containerd,
            programs.ctr,
            &work_dir.path().join("containerd"),
            None,
        );
        Ok(PullSession {
            runtime,
            containerd,
            image,
            _registry: registry,
            work_dir,
        })
    }

    /// A fresh, not yet existing store root for berth's sample `n`.
    pub fn berth_root(&self, n: usize) -> PathBuf {
        self.work_dir.path().join("berth").join(n.to_string())
    }
}

/// The size of a blob in the registry's storage (0 if unknown).
fn blob_size(registry_dir: &Path, digest: &str) -> u64 {
    let hex = digest.trim_start_matches("sha256:");
    let path = registry_dir.join(format!(
        "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
        hex.get(..2).unwrap_or_default()
    ));
    std::fs::metadata(path).map_or(0, |meta| meta.len())
}
