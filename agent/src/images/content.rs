//! The content store: blobs (manifests, configs, compressed layers) kept by
//! digest under `<root>/blobs/sha256/<hex>`, written to a temporary file and
//! renamed into place only once their digest is verified.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::digest::{Digest, HashingReader};
use super::error::ImageError;
use super::staging::Staged;

/// Blobs by digest.
#[derive(Debug, Clone)]
pub struct ContentStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl ContentStore {
    /// The store in `dir`, staging through `tmp` (same filesystem).
    pub fn new(dir: PathBuf, tmp: PathBuf) -> Self {
        ContentStore { dir, tmp }
    }

    /// Where the blob `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// Whether the blob is stored.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Reads a whole blob (manifests and configs: small).
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        let path = self.path(digest);
        fs::read(&path).map_err(ImageError::io("read blob", path))
    }

    /// Opens a blob for streaming.
    pub fn open(&self, digest: &Digest) -> Result<fs::File, ImageError> {
        let path = self.path(digest);
        fs::File::open(&path).map_err(ImageError::io("open blob", path))
    }

    /// A staging path for a blob being downloaded.
    pub fn stage(&self, what: &str) -> Staged {
        Staged::new(&self.tmp, what)
    }

    /// Stores `data`, checking it against `expected` if given; returns its digest.
    pub fn put_bytes(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest, ImageError> {
        self.put_reader(data, expected, "blob")
    }

    /// Streams `reader` into the store, checking it against `expected` if
    /// given; returns its digest. `what` names the content in errors.
    pub fn put_reader(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
        what: &str,
    ) -> Result<Digest, ImageError> {
        if let Some(d) = expected {
            if self.contains(d) {
                return Ok(d.clone());
            }
        }
        let staged = self.stage("blob");
        let mut file =
            fs::File::create(staged.path()).map_err(ImageError::io("create", staged.path()))?;
        let mut hashing = HashingReader::new(reader);
        io::copy(&mut hashing, &mut file).map_err(ImageError::io("write", staged.path()))?;
        file.flush()
            .map_err(ImageError::io("write", staged.path()))?;
        let (digest, _) = hashing
            .finish()
            .map_err(ImageError::io("read", staged.path()))?;
        if let Some(expected) = expected {
            expected.verify(&digest, what)?;
        }
        self.commit(staged, &digest)?;
        Ok(digest)
    }

    /// Moves the file `path` (on the store's filesystem, e.g. extracted
    /// from an archive into staging) into the store as blob `expected`,
    /// after checking its digest. `what` names the content in errors.
    pub fn adopt(&self, path: &Path, expected: &Digest, what: &str) -> Result<(), ImageError> {
        if self.contains(expected) {
            return Ok(());
        }
        let file = fs::File::open(path).map_err(ImageError::io("open", path))?;
        let (digest, _) = HashingReader::new(file)
            .finish()
            .map_err(ImageError::io("read", path))?;
        expected.verify(&digest, what)?;
        fs::rename(path, self.path(expected)).map_err(ImageError::io("rename into place", path))
    }

    /// Moves a staged, already verified blob into place.
    pub fn commit(&self, staged: Staged, digest: &Digest) -> Result<(), ImageError> {
        staged.commit(&self.path(digest))
    }

    /// Deletes a blob; missing blobs are fine.
    pub fn remove(&self, digest: &Digest) -> Result<(), ImageError> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(ImageError::io("remove blob", path)(e))
            }
            _ => Ok(()),
        }
    }

    /// Every stored blob's digest.
    pub fn list(&self) -> Result<Vec<Digest>, ImageError> {
        list_hex_names(&self.dir)
    }
}

/// Entries of `dir` whose names are 64-hex digests.
pub(crate) fn list_hex_names(dir: &Path) -> Result<Vec<Digest>, ImageError> {
    let entries = fs::read_dir(dir).map_err(ImageError::io("read dir", dir))?;
    Ok(entries
        .flatten()
        .filter_map(|e| Digest::from_hex(&e.file_name().to_string_lossy()).ok())
        .collect())
}
