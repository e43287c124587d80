//! OCI image builders for tests: layers assembled entry by entry (including
//! whiteouts, opaque dirs and deliberately malicious paths), written as an
//! OCI image layout, an OCI layout archive, a multi-platform index, or a
//! `docker save` archive.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

/// Applets hard-linked to busybox in [`Layer::busybox`].
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "sleep", "true", "false", "id", "stat", "test",
];

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// One tar entry of a layer.
#[derive(Debug, Clone)]
enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
        uid: u64,
        gid: u64,
        xattrs: Vec<(String, Vec<u8>)>,
    },
    Symlink {
        path: String,
        target: String,
    },
    Hardlink {
        path: String,
        target: String,
    },
    Char {
        path: String,
        major: u32,
        minor: u32,
    },
    Fifo {
        path: String,
    },
}

/// A layer: tar entries in order. Paths are written verbatim (no checks), so
/// malicious layers can be built too.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    entries: Vec<Entry>,
    mtime: u64,
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

impl Layer {
    /// An empty layer whose entries have mtime 1_600_000_000.
    pub fn new() -> Self {
        Layer {
            entries: Vec::new(),
            mtime: 1_600_000_000,
        }
    }

    /// A busybox rootfs: `/bin/busybox` (from the host) with
    /// [`BUSYBOX_APPLETS`] hard-linked to it, and the usual top-level dirs.
    pub fn busybox() -> io::Result<Self> {
        let busybox = fs::read("/bin/busybox")?;
        let mut l = Layer::new();
        for dir in ["bin", "dev", "etc", "proc", "sys", "tmp", "root", "var"] {
            l = l.dir(dir, if dir == "tmp" { 0o1777 } else { 0o755 });
        }
        l = l.file_full("bin/busybox", busybox, 0o755, 0, 0, Vec::new());
        for applet in BUSYBOX_APPLETS {
            l = l.hardlink(&format!("bin/{applet}"), "bin/busybox");
        }
        Ok(l.file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
        )
        .file("etc/group", b"root:x:0:\nnobody:x:65534:\n"))
    }

    /// Adds a directory.
    pub fn dir(mut self, path: &str, mode: u32) -> Self {
        self.entries.push(Entry::Dir {
            path: path.into(),
            mode,
        });
        self
    }

    /// Adds a root-owned 0644 file.
    pub fn file(self, path: &str, data: &[u8]) -> Self {
        self.file_full(path, data.to_vec(), 0o644, 0, 0, Vec::new())
    }

    /// Adds a file with mode, owner and xattrs.
    pub fn file_full(
        mut self,
        path: &str,
        data: Vec<u8>,
        mode: u32,
        uid: u64,
        gid: u64,
        xattrs: Vec<(String, Vec<u8>)>,
    ) -> Self {
        self.entries.push(Entry::File {
            path: path.into(),
            data,
            mode,
            uid,
            gid,
            xattrs,
        });
        self
    }

    /// Adds a symlink.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.entries.push(Entry::Symlink {
            path: path.into(),
            target: target.into(),
        });
        self
    }

    /// Adds a hard link to an earlier entry.
    pub fn hardlink(mut self, path: &str, target: &str) -> Self {
        self.entries.push(Entry::Hardlink {
            path: path.into(),
            target: target.into(),
        });
        self
    }

    /// Adds a character device.
    pub fn char_device(mut self, path: &str, major: u32, minor: u32) -> Self {
        self.entries.push(Entry::Char {
            path: path.into(),
            major,
            minor,
        });
        self
    }

    /// Adds a FIFO.
    pub fn fifo(mut self, path: &str) -> Self {
        self.entries.push(Entry::Fifo { path: path.into() });
        self
    }

    /// Deletes `path` of lower layers (an AUFS-style `.wh.` file).
    pub fn whiteout(self, path: &str) -> Self {
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (format!("{d}/"), n),
            None => (String::new(), path),
        };
        self.file(&format!("{dir}.wh.{name}"), b"")
    }

    /// Hides everything lower layers have in directory `dir`.
    pub fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), b"")
    }

    /// The uncompressed tar.
    pub fn tar(&self) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in &self.entries {
            let (path, kind, data, mode, uid, gid): (&str, tar::EntryType, &[u8], u32, u64, u64) =
                match e {
                    Entry::Dir { path, mode } => {
                        (path, tar::EntryType::Directory, &[], *mode, 0, 0)
                    }
                    Entry::File {
                        path,
                        data,
                        mode,
                        uid,
                        gid,
                        xattrs,
                    } => {
                        if !xattrs.is_empty() {
                            let records: Vec<(String, Vec<u8>)> = xattrs
                                .iter()
                                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.clone()))
                                .collect();
                            append_raw(
                                &mut b,
                                "PaxHeader",
                                tar::EntryType::XHeader,
                                &pax(&records),
                                0o644,
                                0,
                                0,
                                "",
                                self.mtime,
                                (0, 0),
                            );
                        }
                        (path, tar::EntryType::Regular, data, *mode, *uid, *gid)
                    }
                    Entry::Symlink { path, .. } => {
                        (path, tar::EntryType::Symlink, &[], 0o777, 0, 0)
                    }
                    Entry::Hardlink { path, .. } => (path, tar::EntryType::Link, &[], 0o644, 0, 0),
                    Entry::Char { path, .. } => (path, tar::EntryType::Char, &[], 0o666, 0, 0),
                    Entry::Fifo { path } => (path, tar::EntryType::Fifo, &[], 0o644, 0, 0),
                };
            let (link, dev) = match e {
                Entry::Symlink { target, .. } | Entry::Hardlink { target, .. } => {
                    (target.as_str(), (0, 0))
                }
                Entry::Char { major, minor, .. } => ("", (*major, *minor)),
                _ => ("", (0, 0)),
            };
            append_raw(
                &mut b, path, kind, data, mode, uid, gid, link, self.mtime, dev,
            );
        }
        b.into_inner().unwrap_or_default()
    }

    /// The compressed blob.
    pub fn blob(&self, compression: Compression) -> Vec<u8> {
        compress(&self.tar(), compression)
    }
}

fn compress(tar: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => tar.to_vec(),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = enc.write_all(tar);
            enc.finish().unwrap_or_default()
        }
        Compression::Zstd => zstd::encode_all(tar, 3).unwrap_or_default(),
    }
}

/// PAX extended header records (`<len> <key>=<value>\n`).
fn pax(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let body = k.len() + v.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {k}=").as_bytes());
        out.extend_from_slice(v);
        out.push(b'\n');
    }
    out
}

/// Appends an entry with its name and link name written byte for byte (the
/// tar crate's setters refuse `..` and absolute paths, which malicious
/// fixtures need).
#[allow(clippy::too_many_arguments)]
fn append_raw(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    kind: tar::EntryType,
    data: &[u8],
    mode: u32,
    uid: u64,
    gid: u64,
    link: &str,
    mtime: u64,
    dev: (u32, u32),
) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(mtime);
    if kind == tar::EntryType::Char {
        let _ = h.set_device_major(dev.0);
        let _ = h.set_device_minor(dev.1);
    }
    let old = h.as_old_mut();
    let n = path.len().min(100);
    old.name[..n].copy_from_slice(&path.as_bytes()[..n]);
    let n = link.len().min(100);
    old.linkname[..n].copy_from_slice(&link.as_bytes()[..n]);
    h.set_cksum();
    let _ = b.append(&h, data);
}

/// What an image was written as.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// Digest of the image manifest.
    pub manifest_digest: String,
    /// Digest of the config blob: the image ID.
    pub config_digest: String,
    /// Digests of the layer blobs, bottom first.
    pub layer_digests: Vec<String>,
    /// Digests of the uncompressed layers, bottom first.
    pub diff_ids: Vec<String>,
    /// The manifest's size in bytes.
    pub manifest_size: usize,
}

/// An image: layers and a few config fields.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Layers, bottom first, each with its compression.
    pub layers: Vec<(Layer, Compression)>,
    /// `config.Cmd`.
    pub cmd: Vec<String>,
    /// `config.Env`.
    pub env: Vec<String>,
    /// `config.User`, if any.
    pub user: Option<String>,
    /// `architecture` of the config.
    pub architecture: String,
}

impl ImageSpec {
    /// An image of `layers` (gzip-compressed), running `/bin/sh`.
    pub fn new(layers: Vec<Layer>) -> Self {
        ImageSpec {
            layers: layers.into_iter().map(|l| (l, Compression::Gzip)).collect(),
            cmd: vec!["/bin/sh".into()],
            env: vec!["PATH=/bin".into()],
            user: None,
            architecture: "amd64".into(),
        }
    }

    /// The config JSON for the given diff IDs.
    fn config(&self, diff_ids: &[String]) -> Vec<u8> {
        let mut cfg = json!({"Cmd": self.cmd, "Env": self.env});
        if let Some(u) = &self.user {
            cfg["User"] = Value::from(u.clone());
        }
        let doc = json!({
            "created": "2020-09-13T12:26:40Z",
            "architecture": self.architecture,
            "os": "linux",
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        serde_json::to_vec(&doc).unwrap_or_default()
    }

    /// Writes config, layers and manifest as blobs of the OCI layout at
    /// `dir` (no index.json); returns what was written.
    pub fn write_blobs(&self, dir: &Path) -> io::Result<BuiltImage> {
        let mut layer_descs = Vec::new();
        let mut layer_digests = Vec::new();
        let mut diff_ids = Vec::new();
        for (layer, compression) in &self.layers {
            let tar = layer.tar();
            diff_ids.push(sha256(&tar));
            let blob = compress(&tar, *compression);
            let digest = write_blob(dir, &blob)?;
            layer_descs.push(json!({"mediaType": compression.media_type(), "digest": digest, "size": blob.len()}));
            layer_digests.push(digest);
        }
        let config = self.config(&diff_ids);
        let config_digest = write_blob(dir, &config)?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": layer_descs,
        }))?;
        let manifest_digest = write_blob(dir, &manifest)?;
        Ok(BuiltImage {
            manifest_digest,
            config_digest,
            layer_digests,
            diff_ids,
            manifest_size: manifest.len(),
        })
    }

    /// Writes an OCI image layout at `dir` whose index names the image `name`
    /// (e.g. `docker.io/library/busybox:latest`, or just a tag).
    pub fn write_oci_layout(&self, dir: &Path, name: &str) -> io::Result<BuiltImage> {
        let built = self.write_blobs(dir)?;
        let desc = json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": built.manifest_digest,
            "size": built.manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": name},
        });
        write_layout_index(dir, vec![desc])?;
        Ok(built)
    }

    /// Writes an OCI layout archive (tar of the layout) at `archive`.
    pub fn write_oci_archive(&self, archive: &Path, name: &str) -> io::Result<BuiltImage> {
        let dir = scratch_dir(archive)?;
        let built = self.write_oci_layout(&dir, name);
        let res = built.and_then(|b| tar_dir(&dir, archive).map(|()| b));
        let _ = fs::remove_dir_all(&dir);
        res
    }

    /// Writes a `docker save` archive (legacy layout: `<id>/layer.tar`,
    /// `<id>.json`, `manifest.json`) tagged `repo_tag`.
    pub fn write_docker_save(&self, archive: &Path, repo_tag: &str) -> io::Result<BuiltImage> {
        let mut b = tar::Builder::new(fs::File::create(archive)?);
        let mut layer_names = Vec::new();
        let mut diff_ids = Vec::new();
        for (layer, _) in &self.layers {
            let tar = layer.tar();
            let id = sha256(&tar);
            let name = format!("{}/layer.tar", &id["sha256:".len()..]);
            append_file(&mut b, &name, &tar)?;
            layer_names.push(name);
            diff_ids.push(id);
        }
        let config = self.config(&diff_ids);
        let config_digest = sha256(&config);
        let config_name = format!("{}.json", &config_digest["sha256:".len()..]);
        append_file(&mut b, &config_name, &config)?;
        let manifest = serde_json::to_vec(
            &json!([{"Config": config_name, "RepoTags": [repo_tag], "Layers": layer_names}]),
        )?;
        append_file(&mut b, "manifest.json", &manifest)?;
        b.finish()?;
        Ok(BuiltImage {
            manifest_digest: String::new(),
            config_digest,
            layer_digests: diff_ids.clone(),
            diff_ids,
            manifest_size: 0,
        })
    }
}

/// Writes a multi-platform OCI layout archive: an image index listing
/// `images` (each with its `os/arch` taken from the spec's architecture),
/// named `name`. Returns the index digest and each image.
pub fn write_index_archive(
    archive: &Path,
    images: &[ImageSpec],
    name: &str,
) -> io::Result<(String, Vec<BuiltImage>)> {
    let dir = scratch_dir(archive)?;
    let res = (|| {
        let mut built = Vec::new();
        let mut manifests = Vec::new();
        for spec in images {
            let b = spec.write_blobs(&dir)?;
            manifests.push(json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": b.manifest_digest,
                "size": b.manifest_size,
                "platform": {"architecture": spec.architecture, "os": "linux"},
            }));
            built.push(b);
        }
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }))?;
        let index_digest = write_blob(&dir, &index)?;
        write_layout_index(
            &dir,
            vec![json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": index_digest,
                "size": index.len(),
                "annotations": {"org.opencontainers.image.ref.name": name},
            })],
        )?;
        tar_dir(&dir, archive)?;
        Ok((index_digest, built))
    })();
    let _ = fs::remove_dir_all(&dir);
    res
}

fn scratch_dir(archive: &Path) -> io::Result<PathBuf> {
    let dir = archive.with_extension(format!("layout-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn write_blob(dir: &Path, data: &[u8]) -> io::Result<String> {
    let digest = sha256(data);
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs)?;
    fs::write(blobs.join(&digest["sha256:".len()..]), data)?;
    Ok(digest)
}

fn write_layout_index(dir: &Path, manifests: Vec<Value>) -> io::Result<()> {
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)
}

fn append_file(b: &mut tar::Builder<fs::File>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data)
}

fn tar_dir(dir: &Path, archive: &Path) -> io::Result<()> {
    let mut b = tar::Builder::new(fs::File::create(archive)?);
    b.append_dir_all(".", dir)?;
    b.finish()
}
