//! Layer snapshots: each layer unpacked once into `<root>/snapshots/<chain
//! id hex>/` and shared by every image whose stack reaches it. A snapshot is
//! unpacked into a staging directory and renamed into place when complete.

use std::fs;
use std::io::Read;
use std::path::PathBuf;

use super::content::list_hex_names;
use super::digest::Digest;
use super::error::ImageError;
use super::staging::{remove_any, Staged};
use super::unpack::unpack_layer;

/// The snapshot directories.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl SnapshotStore {
    /// Snapshots in `dir`, staged through `tmp` (same filesystem).
    pub fn new(dir: PathBuf, tmp: PathBuf) -> Self {
        SnapshotStore { dir, tmp }
    }

    /// The snapshot directory for `chain_id` (whether or not it exists).
    pub fn path(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join(chain_id.hex())
    }

    /// Whether the snapshot exists (complete: incomplete ones are staged).
    pub fn contains(&self, chain_id: &Digest) -> bool {
        self.path(chain_id).is_dir()
    }

    /// Unpacks `blob` as snapshot `chain_id` unless it exists, checking that
    /// the uncompressed layer has digest `diff_id`. Caller holds the
    /// snapshot's lock.
    pub fn ensure(
        &self,
        chain_id: &Digest,
        diff_id: &Digest,
        blob: impl Read,
        layer: &str,
    ) -> Result<(), ImageError> {
        if self.contains(chain_id) {
            return Ok(());
        }
        let staged = Staged::new(&self.tmp, "snapshot");
        fs::create_dir(staged.path()).map_err(ImageError::io("create", staged.path()))?;
        let unpacked = unpack_layer(blob, staged.path(), layer)?;
        diff_id.verify(&unpacked.diff_id, format!("uncompressed layer {layer}"))?;
        staged.commit(&self.path(chain_id))
    }

    /// Deletes a snapshot; a missing one is fine.
    pub fn remove(&self, chain_id: &Digest) -> Result<(), ImageError> {
        // Move it aside first so a half-deleted tree is never seen as a snapshot.
        let path = self.path(chain_id);
        if !path.exists() {
            return Ok(());
        }
        let doomed = Staged::new(&self.tmp, "snapshot-deleted");
        fs::rename(&path, doomed.path()).map_err(ImageError::io("move aside", &path))?;
        remove_any(doomed.path());
        Ok(())
    }

    /// Every snapshot's chain ID.
    pub fn list(&self) -> Result<Vec<Digest>, ImageError> {
        list_hex_names(&self.dir)
    }
}
