//! Reading image archives without a registry: an OCI image layout in a tar
//! (`index.json`, `oci-layout`, `blobs/`) or a `docker save` tar
//! (`manifest.json` naming config and layer files).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::digest::{Digest, HashingReader};
use super::error::ImageError;
use super::manifest::{Descriptor, Index, Manifest, ManifestDoc, Platform, DOCKER_MANIFEST};
use super::reference::Reference;

/// Annotation naming an image in an OCI layout (a tag or a full reference).
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation carrying a full image name.
const IMAGE_NAME: &str = "io.containerd.image.name";

/// One image found in an archive.
pub struct Found {
    /// Its manifest (synthesised for `docker save` archives).
    pub manifest: Manifest,
    /// The manifest's digest.
    pub manifest_digest: Digest,
    /// The config blob.
    pub config: Vec<u8>,
    /// Normalised `repo:tag` names.
    pub tags: Vec<String>,
    /// Every blob to store (manifest, config, layers) and the extracted file holding it.
    pub blobs: Vec<(Digest, PathBuf)>,
}

/// Extracts `archive` into `staging` (created) and describes its images.
pub fn read_archive(
    archive: &Path,
    staging: &Path,
    platform: &Platform,
) -> Result<Vec<Found>, ImageError> {
    let files = extract(archive, staging)?;
    if files.exists("index.json") {
        read_oci_layout(&files, platform)
    } else if files.exists("manifest.json") {
        read_docker_save(&files)
    } else {
        Err(ImageError::malformed(
            archive.display().to_string(),
            "neither index.json nor manifest.json found",
        ))
    }
}

/// The regular files of an extracted archive, with its symlinks resolved.
struct Files {
    root: PathBuf,
    what: String,
    links: HashMap<PathBuf, PathBuf>,
}

impl Files {
    /// The extracted path of archive member `name`, following archive symlinks.
    fn path(&self, name: &str) -> Result<PathBuf, ImageError> {
        let mut rel = clean(Path::new(name)).ok_or_else(|| {
            ImageError::malformed(&self.what, format!("bad member name {name:?}"))
        })?;
        for _ in 0..16 {
            match self.links.get(&rel) {
                Some(target) => rel = target.clone(),
                None => return Ok(self.root.join(rel)),
            }
        }
        Err(ImageError::malformed(
            &self.what,
            format!("symlink loop at {name:?}"),
        ))
    }

    fn exists(&self, name: &str) -> bool {
        self.path(name).is_ok_and(|p| p.is_file())
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, ImageError> {
        let path = self.path(name)?;
        fs::read(&path).map_err(ImageError::io("read archive member", path))
    }

    fn json<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<T, ImageError> {
        serde_json::from_slice(&self.read(name)?)
            .map_err(ImageError::json(format!("{name} in {}", self.what)))
    }

    fn blob_name(digest: &Digest) -> String {
        format!("blobs/sha256/{}", digest.hex())
    }
}

/// A member name made relative with `.` dropped; `None` if it has `..` or is absolute.
fn clean(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// Unpacks the regular files of `archive` into `dest`, remembering symlinks.
fn extract(archive: &Path, dest: &Path) -> Result<Files, ImageError> {
    let what = archive.display().to_string();
    let file = File::open(archive).map_err(ImageError::io("open archive", archive))?;
    let read_err = |e: io::Error| ImageError::io("read archive", archive)(e);
    let mut links = HashMap::new();
    let mut tar = tar::Archive::new(file);
    fs::create_dir_all(dest).map_err(ImageError::io("create", dest))?;
    for entry in tar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = entry.path().map_err(read_err)?.into_owned();
        let Some(rel) = clean(&raw) else {
            return Err(ImageError::malformed(
                &what,
                format!("member {} escapes the archive", raw.display()),
            ));
        };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let path = dest.join(&rel);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(ImageError::io("create", parent))?;
                }
                let mut out = File::create(&path).map_err(ImageError::io("create", &path))?;
                io::copy(&mut entry, &mut out).map_err(ImageError::io("write", &path))?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(read_err)?
                    .unwrap_or_default()
                    .into_owned();
                let resolved = match entry.header().entry_type() {
                    tar::EntryType::Symlink => rel.parent().unwrap_or(Path::new("")).join(&target),
                    _ => target,
                };
                if let Some(t) = normalize(&resolved) {
                    links.insert(rel, t);
                }
            }
            _ => {}
        }
    }
    Ok(Files {
        root: dest.to_path_buf(),
        what,
        links,
    })
}

/// Resolves `..` lexically; `None` if the path climbs above the archive root.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// The normalised tag named by an OCI layout descriptor's annotations.
fn layout_name(desc: &Descriptor) -> Option<String> {
    let ann = desc.annotations.as_ref()?;
    let name = ann.get(IMAGE_NAME).or_else(|| {
        ann.get(REF_NAME)
            .filter(|n| n.contains(':') || n.contains('/'))
    })?;
    Reference::parse(name).ok()?.tagged()
}

fn read_oci_layout(files: &Files, platform: &Platform) -> Result<Vec<Found>, ImageError> {
    let index: Index = files.json("index.json")?;
    let mut found: Vec<Found> = Vec::new();
    for desc in &index.manifests {
        let bytes = files.read(&Files::blob_name(&desc.digest))?;
        desc.digest.verify(
            &Digest::of_bytes(&bytes),
            format!("manifest in {}", files.what),
        )?;
        let (manifest_digest, bytes) =
            match ManifestDoc::parse(&bytes, Some(&desc.media_type), &files.what)? {
                ManifestDoc::Image(_) => (desc.digest.clone(), bytes),
                ManifestDoc::Index(inner) => {
                    let chosen =
                        inner
                            .select(platform)
                            .ok_or_else(|| ImageError::NoMatchingPlatform {
                                reference: files.what.clone(),
                                platform: platform.describe(),
                            })?;
                    (
                        chosen.digest.clone(),
                        files.read(&Files::blob_name(&chosen.digest))?,
                    )
                }
            };
        let ManifestDoc::Image(manifest) = ManifestDoc::parse(&bytes, None, &files.what)? else {
            return Err(ImageError::malformed(&files.what, "nested index"));
        };
        let tags: Vec<String> = layout_name(desc).into_iter().collect();
        if let Some(existing) = found
            .iter_mut()
            .find(|f| f.manifest_digest == manifest_digest)
        {
            existing.tags.extend(tags);
            continue;
        }
        let config = files.read(&Files::blob_name(&manifest.config.digest))?;
        let mut blobs = vec![(
            manifest_digest.clone(),
            files.path(&Files::blob_name(&manifest_digest))?,
        )];
        for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
            blobs.push((d.digest.clone(), files.path(&Files::blob_name(&d.digest))?));
        }
        found.push(Found {
            manifest,
            manifest_digest,
            config,
            tags,
            blobs,
        });
    }
    Ok(found)
}

/// One entry of a `docker save` archive's `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SaveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn read_docker_save(files: &Files) -> Result<Vec<Found>, ImageError> {
    let entries: Vec<SaveEntry> = files.json("manifest.json")?;
    let mut found = Vec::with_capacity(entries.len());
    for entry in entries {
        let config = files.read(&entry.config)?;
        let config_desc = Descriptor {
            media_type: "application/vnd.docker.container.image.v1+json".into(),
            digest: Digest::of_bytes(&config),
            size: config.len() as u64,
            platform: None,
            annotations: None,
        };
        let mut blobs = vec![(config_desc.digest.clone(), files.path(&entry.config)?)];
        let mut layers = Vec::with_capacity(entry.layers.len());
        for name in &entry.layers {
            let path = files.path(name)?;
            let mut file = File::open(&path).map_err(ImageError::io("open", &path))?;
            let mut magic = [0u8; 2];
            let gzipped = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
            let file = File::open(&path).map_err(ImageError::io("open", &path))?;
            let (digest, size) = HashingReader::new(file)
                .finish()
                .map_err(ImageError::io("read", &path))?;
            let media_type = if gzipped {
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            } else {
                "application/vnd.docker.image.rootfs.diff.tar"
            };
            layers.push(Descriptor {
                media_type: media_type.into(),
                digest: digest.clone(),
                size,
                platform: None,
                annotations: None,
            });
            blobs.push((digest, path));
        }
        let manifest = Manifest {
            media_type: Some(DOCKER_MANIFEST.into()),
            config: config_desc,
            layers,
        };
        let mut doc =
            serde_json::to_value(&manifest).map_err(ImageError::json("synthesised manifest"))?;
        doc["schemaVersion"] = 2.into();
        let bytes = serde_json::to_vec(&doc).map_err(ImageError::json("synthesised manifest"))?;
        let manifest_digest = Digest::of_bytes(&bytes);
        let manifest_path = files
            .root
            .join(format!("manifest-{}.json", manifest_digest.hex()));
        fs::write(&manifest_path, &bytes).map_err(ImageError::io("write", &manifest_path))?;
        blobs.insert(0, (manifest_digest.clone(), manifest_path));
        let tags = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .filter_map(|t| Reference::parse(t).ok()?.tagged())
            .collect();
        found.push(Found {
            manifest,
            manifest_digest,
            config,
            tags,
            blobs,
        });
    }
    Ok(found)
}
