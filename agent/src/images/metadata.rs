//! Image records: one JSON file per image under `<root>/images/<id hex>.json`,
//! written last when an image is stored, so a pull killed half-way leaves no
//! image behind.

use std::fs;
use std::io;
use std::path::PathBuf;

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::ImageError;
use super::manifest::Descriptor;
use super::staging::Staged;

/// A stored image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    /// The image ID: the digest of its config blob.
    pub id: Digest,
    /// Normalised `registry/repository:tag` names pointing at it.
    pub repo_tags: Vec<String>,
    /// `registry/repository@manifest-digest` names it was pulled by.
    pub repo_digests: Vec<String>,
    /// Bytes of config and (compressed) layer blobs.
    pub size: u64,
    /// The config's `User`, if set.
    pub user: Option<String>,
    /// The image configuration (entrypoint, env, working dir, ...).
    pub config: ImageConfiguration,
    /// Digest of the image manifest (the platform one, not an index).
    pub manifest_digest: Digest,
    /// The config blob's descriptor.
    pub config_descriptor: Descriptor,
    /// Layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
    /// Uncompressed layer digests, bottom first.
    pub diff_ids: Vec<Digest>,
    /// Snapshot keys (chain IDs), bottom first.
    pub chain_ids: Vec<Digest>,
}

impl Image {
    /// Every blob this image keeps alive: manifest, config, layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        std::iter::once(&self.manifest_digest)
            .chain(std::iter::once(&self.config_descriptor.digest))
            .chain(self.layers.iter().map(|l| &l.digest))
    }

    /// The config's `User` split the way CRI reports it: a numeric user
    /// (`1000`, `1000:1000`) as a UID, anything else as a user name.
    pub fn image_user(&self) -> ImageUser {
        ImageUser::parse(self.user.as_deref().unwrap_or(""))
    }
}

/// Who an image runs as by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageUser {
    /// No user set: root unless the container says otherwise.
    Unset,
    /// A numeric UID (the group part, if any, is not reported).
    Uid(u32),
    /// A user name (resolved inside the container's rootfs).
    Name(String),
}

impl ImageUser {
    /// Parses `user[:group]`.
    pub fn parse(spec: &str) -> Self {
        let user = spec.split(':').next().unwrap_or("");
        if user.is_empty() {
            ImageUser::Unset
        } else if let Ok(uid) = user.parse::<u32>() {
            ImageUser::Uid(uid)
        } else {
            ImageUser::Name(user.to_string())
        }
    }
}

/// The image records.
#[derive(Debug, Clone)]
pub struct MetadataStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl MetadataStore {
    /// Records in `dir`, staged through `tmp`.
    pub fn new(dir: PathBuf, tmp: PathBuf) -> Self {
        MetadataStore { dir, tmp }
    }

    fn path(&self, id: &Digest) -> PathBuf {
        self.dir.join(format!("{}.json", id.hex()))
    }

    /// The record of image `id`, if any.
    pub fn get(&self, id: &Digest) -> Result<Option<Image>, ImageError> {
        let path = self.path(id);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes)
                    .map_err(ImageError::json(path.display().to_string()))?,
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io("read image record", path)(e)),
        }
    }

    /// Every record.
    pub fn all(&self) -> Result<Vec<Image>, ImageError> {
        let entries = fs::read_dir(&self.dir).map_err(ImageError::io("read dir", &self.dir))?;
        let mut ids: Vec<Digest> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json")
                    .and_then(|h| Digest::from_hex(h).ok())
            })
            .collect();
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(img) = self.get(&id)? {
                out.push(img);
            }
        }
        Ok(out)
    }

    /// Writes (atomically replaces) a record.
    pub fn put(&self, image: &Image) -> Result<(), ImageError> {
        let staged = Staged::new(&self.tmp, "image.json");
        let bytes = serde_json::to_vec_pretty(image).map_err(ImageError::json("image record"))?;
        fs::write(staged.path(), bytes).map_err(ImageError::io("write", staged.path()))?;
        staged.commit(&self.path(&image.id))
    }

    /// Deletes a record; a missing one is fine.
    pub fn delete(&self, id: &Digest) -> Result<(), ImageError> {
        let path = self.path(id);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(ImageError::io("remove image record", path)(e))
            }
            _ => Ok(()),
        }
    }

    /// Stores `image`, merging names with an existing record of the same ID
    /// and taking its tags away from any other image. Caller holds the
    /// metadata lock. Returns the stored record.
    pub fn record(&self, mut image: Image) -> Result<Image, ImageError> {
        for mut other in self.all()? {
            if other.id == image.id {
                merge_names(&mut image.repo_tags, &other.repo_tags);
                merge_names(&mut image.repo_digests, &other.repo_digests);
                continue;
            }
            let before = other.repo_tags.len();
            other.repo_tags.retain(|t| !image.repo_tags.contains(t));
            if other.repo_tags.len() != before {
                self.put(&other)?;
            }
        }
        self.put(&image)?;
        Ok(image)
    }
}

fn merge_names(into: &mut Vec<String>, from: &[String]) {
    for name in from {
        if !into.contains(name) {
            into.push(name.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ImageUser;

    #[test]
    fn image_user_is_uid_or_name() {
        assert_eq!(ImageUser::parse(""), ImageUser::Unset);
        assert_eq!(ImageUser::parse("1000"), ImageUser::Uid(1000));
        assert_eq!(ImageUser::parse("1000:1000"), ImageUser::Uid(1000));
        assert_eq!(
            ImageUser::parse("nobody:nogroup"),
            ImageUser::Name("nobody".into())
        );
        assert_eq!(ImageUser::parse(":100"), ImageUser::Unset);
    }
}
