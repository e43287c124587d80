//! Leases: the snapshots each prepared container rootfs stands on, kept in
//! `<root>/leases/<key>.json`, so garbage collection never frees a layer
//! under a live container even when its image is removed.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::ImageError;
use super::staging::Staged;

/// One container's lease.
#[derive(Debug, Serialize, Deserialize)]
struct Lease {
    container_dir: PathBuf,
    chain_ids: Vec<Digest>,
}

/// The lease files.
#[derive(Debug, Clone)]
pub struct Leases {
    dir: PathBuf,
    tmp: PathBuf,
}

impl Leases {
    /// Leases in `dir`, staged through `tmp`.
    pub fn new(dir: PathBuf, tmp: PathBuf) -> Self {
        Leases { dir, tmp }
    }

    fn path(&self, container_dir: &Path) -> PathBuf {
        let key = Digest::of_bytes(container_dir.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{}.json", key.hex()))
    }

    /// Records that the rootfs in `container_dir` uses `chain_ids`.
    pub fn add(&self, container_dir: &Path, chain_ids: &[Digest]) -> Result<(), ImageError> {
        let lease = Lease {
            container_dir: container_dir.to_path_buf(),
            chain_ids: chain_ids.to_vec(),
        };
        let staged = Staged::new(&self.tmp, "lease.json");
        let bytes = serde_json::to_vec(&lease).map_err(ImageError::json("lease"))?;
        fs::write(staged.path(), bytes).map_err(ImageError::io("write", staged.path()))?;
        staged.commit(&self.path(container_dir))
    }

    /// Drops the lease of `container_dir`; a missing one is fine.
    pub fn remove(&self, container_dir: &Path) -> Result<(), ImageError> {
        let path = self.path(container_dir);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(ImageError::io("remove lease", path)(e))
            }
            _ => Ok(()),
        }
    }

    /// Every leased snapshot.
    pub fn chain_ids(&self) -> Result<HashSet<Digest>, ImageError> {
        let mut out = HashSet::new();
        let entries = fs::read_dir(&self.dir).map_err(ImageError::io("read dir", &self.dir))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ImageError::io("read lease", path)(e)),
            };
            let lease: Lease = serde_json::from_slice(&bytes)
                .map_err(ImageError::json(path.display().to_string()))?;
            out.extend(lease.chain_ids);
        }
        Ok(out)
    }
}
