//! [`ImageStore`]: pulls, imports, lists and removes images, garbage-collects
//! what no image uses, and mounts container root filesystems.
//!
//! Layout under the root:
//! `blobs/sha256/<hex>` (content), `snapshots/<chain id hex>/` (unpacked
//! layers), `images/<id hex>.json` (records, written last), `tmp/` (staging),
//! `locks/` (flock files shared by every process using the store).
//!
//! Locking: pulls and imports hold `locks/gc` shared for their whole run and
//! remove holds it exclusive, so GC never frees what a pull is about to
//! record. Each blob download and snapshot unpack holds its own lock, so two
//! pulls of one image (in one process or two) do the work once. Record
//! updates hold `locks/meta`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::stream::{self, StreamExt};
use oci_spec::image::ImageConfiguration;

use super::content::ContentStore;
use super::digest::{chain_ids, Digest};
use super::error::ImageError;
use super::leases::Leases;
use super::locks::{lock, lock_async, LockGuard, LockMode};
use super::manifest::{is_layer_type, Descriptor, Manifest, ManifestDoc, Platform};
use super::metadata::{Image, MetadataStore};
use super::reference::Reference;
use super::registry::{RegistryAuth, RegistryClient, TagOrDigest};
use super::registry_config::RegistryConfig;
use super::rootfs::{mount_rootfs, unmount_rootfs, RootfsMount};
use super::snapshots::SnapshotStore;
use super::staging::sweep_stale;
use super::usage::disk_usage;

/// The default store root.
pub const DEFAULT_ROOT: &str = "/var/lib/berth/images";
/// How many layers are downloaded and unpacked at once.
const LAYER_CONCURRENCY: usize = 4;

/// The image store. Cheap to share behind an `Arc`; every method may run
/// concurrently with others, in this process or another one.
#[derive(Debug, Clone)]
pub struct ImageStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    registry: RegistryConfig,
    platform: Platform,
    content: ContentStore,
    snapshots: SnapshotStore,
    metadata: MetadataStore,
    leases: Leases,
    locks: PathBuf,
}

/// An image's names, as they will be recorded.
struct Names {
    tags: Vec<String>,
    digests: Vec<String>,
}

impl ImageStore {
    /// Opens (creating if needed) the store at `root`, pulling for linux/amd64.
    pub fn open(root: &Path, registry: RegistryConfig) -> Result<Self, ImageError> {
        Self::open_for_platform(root, registry, Platform::linux_amd64())
    }

    /// Opens the store, choosing `platform` from multi-platform indexes.
    pub fn open_for_platform(
        root: &Path,
        registry: RegistryConfig,
        platform: Platform,
    ) -> Result<Self, ImageError> {
        let blobs = root.join("blobs/sha256");
        let snapshots = root.join("snapshots");
        let images = root.join("images");
        let tmp = root.join("tmp");
        let locks = root.join("locks");
        let leases = root.join("leases");
        for dir in [&blobs, &snapshots, &images, &tmp, &locks, &leases] {
            fs::create_dir_all(dir).map_err(ImageError::io("create", dir))?;
        }
        // Image files keep their set-id bits and device nodes: host users
        // must not reach them through the store.
        for dir in [&snapshots, &tmp] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(ImageError::io("chmod", dir))?;
        }
        sweep_stale(&tmp)?;
        Ok(ImageStore {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                registry,
                platform,
                content: ContentStore::new(blobs, tmp.clone()),
                snapshots: SnapshotStore::new(snapshots, tmp.clone()),
                metadata: MetadataStore::new(images, tmp.clone()),
                leases: Leases::new(leases, tmp),
                locks,
            }),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Pulls `reference` (normalised like Docker's), trying the registry's
    /// mirrors in order (anonymously: `auth` is only sent to the registry
    /// itself) and then the registry. Index entries are chosen for the
    /// store's platform. An image already stored under the same digest
    /// reference is returned without network. A tag is recorded (and moved
    /// from any image that had it) only when pulling by tag alone.
    pub async fn pull(
        &self,
        reference: &str,
        auth: Option<RegistryAuth>,
    ) -> Result<Image, ImageError> {
        let reference = Reference::parse(reference)?;
        let auth = auth.unwrap_or_default();
        if let Some(digest) = &reference.digest {
            let by_digest = reference.with_digest(digest);
            if let Some(img) = self.find(|i| i.repo_digests.contains(&by_digest))? {
                return Ok(img);
            }
        }
        let _gc = lock_async(self.inner.locks.join("gc"), LockMode::Shared).await?;
        let mut errors = Vec::new();
        for endpoint in self.inner.registry.endpoints(&reference.registry) {
            // Credentials are for the registry: never hand them to a mirror.
            let endpoint_auth = match endpoint.is_mirror {
                true => RegistryAuth::Anonymous,
                false => auth.clone(),
            };
            let client = RegistryClient::new(&endpoint, &reference, &endpoint_auth);
            match self.pull_from(&client, &reference).await {
                Ok(image) => return Ok(image),
                Err(e) => {
                    tracing::debug!(endpoint = client.host(), error = %e, "pull from endpoint failed");
                    errors.push(format!("{}: {e}", client.host()));
                }
            }
        }
        Err(ImageError::Registry {
            reference: reference.to_string(),
            errors: errors.join("; "),
        })
    }

    async fn pull_from(
        &self,
        client: &RegistryClient,
        reference: &Reference,
    ) -> Result<Image, ImageError> {
        let first = match (&reference.digest, &reference.tag) {
            (Some(d), _) => TagOrDigest::Digest(d),
            (None, Some(t)) => TagOrDigest::Tag(t),
            (None, None) => TagOrDigest::Tag(super::reference::DEFAULT_TAG),
        };
        let (bytes, top_digest) = client.manifest(first).await?;
        let what = format!("manifest of {reference}");
        let (manifest_bytes, manifest_digest) = match ManifestDoc::parse(&bytes, None, &what)? {
            ManifestDoc::Image(_) => (bytes, top_digest.clone()),
            ManifestDoc::Index(index) => {
                let chosen = index.select(&self.inner.platform).ok_or_else(|| {
                    ImageError::NoMatchingPlatform {
                        reference: reference.to_string(),
                        platform: self.inner.platform.describe(),
                    }
                })?;
                let digest = chosen.digest.clone();
                client.manifest(TagOrDigest::Digest(&digest)).await?
            }
        };
        let ManifestDoc::Image(manifest) = ManifestDoc::parse(&manifest_bytes, None, &what)? else {
            return Err(ImageError::malformed(
                what,
                "an index that lists another index",
            ));
        };
        let config_bytes = match self.inner.content.contains(&manifest.config.digest) {
            true => self.inner.content.read(&manifest.config.digest)?,
            false => client.blob_bytes(&manifest.config).await?,
        };
        let names = Names {
            tags: reference
                .tagged()
                .filter(|_| reference.digest.is_none())
                .into_iter()
                .collect(),
            digests: vec![reference.with_digest(&top_digest)],
        };
        let image = self
            .inner
            .describe(&manifest, &manifest_digest, &config_bytes, names)?;
        // Futures built in a loop, not a `map` closure: keeps `pull` Send.
        // After a failure no new layer starts, but the ones under way finish
        // (an unpack cannot be cancelled), so nothing outlives the pull.
        let failed = AtomicBool::new(false);
        let mut layer_jobs = Vec::with_capacity(manifest.layers.len());
        for (i, layer) in manifest.layers.iter().enumerate() {
            let failed = &failed;
            let job = self.fetch_and_unpack(client, &image, i, layer);
            layer_jobs.push(async move {
                if failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let res = job.await;
                if res.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                res
            });
        }
        let results: Vec<Result<(), ImageError>> = stream::iter(layer_jobs)
            .buffer_unordered(LAYER_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        let inner = self.inner.clone();
        blocking("record image", move || {
            inner
                .content
                .put_bytes(&config_bytes, Some(&image.config_descriptor.digest))?;
            inner
                .content
                .put_bytes(&manifest_bytes, Some(&image.manifest_digest))?;
            inner.record(image)
        })
        .await
    }

    async fn fetch_and_unpack(
        &self,
        client: &RegistryClient,
        image: &Image,
        i: usize,
        layer: &Descriptor,
    ) -> Result<(), ImageError> {
        let chain_id = image.chain_ids[i].clone();
        if self.inner.snapshots.contains(&chain_id) {
            return Ok(());
        }
        {
            let _blob =
                lock_async(self.inner.lock_path(&layer.digest), LockMode::Exclusive).await?;
            if !self.inner.content.contains(&layer.digest) {
                let staged = self.inner.content.stage("layer");
                client.blob_to_file(layer, staged.path()).await?;
                self.inner.content.commit(staged, &layer.digest)?;
            }
        }
        let inner = self.inner.clone();
        let (layer, diff_id) = (layer.digest.clone(), image.diff_ids[i].clone());
        blocking("unpack layer", move || {
            inner.ensure_snapshot(&chain_id, &diff_id, &layer)
        })
        .await
    }

    /// Imports every image of an OCI image-layout archive or a `docker save`
    /// archive (plain tar), without a registry.
    pub fn import(&self, archive: &Path) -> Result<Vec<Image>, ImageError> {
        let _gc = lock(&self.inner.locks.join("gc"), LockMode::Shared)?;
        let staged = self.inner.content.stage("import");
        let found = super::import::read_archive(archive, staged.path(), &self.inner.platform)?;
        let mut images = Vec::with_capacity(found.len());
        for item in found {
            for (digest, path) in &item.blobs {
                let what = format!("blob {digest} of {}", archive.display());
                self.inner.content.adopt(path, digest, &what)?;
            }
            let names = Names {
                tags: item.tags,
                digests: Vec::new(),
            };
            let image =
                self.inner
                    .describe(&item.manifest, &item.manifest_digest, &item.config, names)?;
            run_parallel(image.layers.len(), LAYER_CONCURRENCY, |i| {
                self.inner.ensure_snapshot(
                    &image.chain_ids[i],
                    &image.diff_ids[i],
                    &image.layers[i].digest,
                )
            })?;
            images.push(self.inner.record(image)?);
        }
        Ok(images)
    }

    /// The image named by a reference (`busybox`, `repo@sha256:...`), an ID
    /// (`sha256:<hex>` or `<hex>`), or a unique ID prefix.
    pub fn status(&self, reference_or_id: &str) -> Result<Option<Image>, ImageError> {
        let key = reference_or_id
            .strip_prefix("sha256:")
            .unwrap_or(reference_or_id);
        if let Ok(id) = Digest::from_hex(key) {
            return self.inner.metadata.get(&id);
        }
        if let Ok(r) = Reference::parse(reference_or_id) {
            let found = match (&r.digest, r.tagged()) {
                (Some(d), _) => {
                    let name = r.with_digest(d);
                    self.find(|i| i.repo_digests.contains(&name))?
                }
                (None, Some(tagged)) => self.find(|i| i.repo_tags.contains(&tagged))?,
                (None, None) => None,
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        if key.len() >= 4 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut matches = self
                .list()?
                .into_iter()
                .filter(|i| i.id.hex().starts_with(key));
            return match (matches.next(), matches.next()) {
                (Some(_), Some(_)) => Err(ImageError::Ambiguous(reference_or_id.to_string())),
                (first, _) => Ok(first),
            };
        }
        Ok(None)
    }

    fn find(&self, pred: impl Fn(&Image) -> bool) -> Result<Option<Image>, ImageError> {
        Ok(self.list()?.into_iter().find(|i| pred(i)))
    }

    /// Every stored image, by ID.
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        self.inner.metadata.all()
    }

    /// Removes the image (all its names) and frees the blobs and snapshots
    /// no other image uses. Removing a missing image succeeds.
    pub fn remove(&self, reference_or_id: &str) -> Result<(), ImageError> {
        let _gc = lock(&self.inner.locks.join("gc"), LockMode::Exclusive)?;
        if let Some(image) = self.status(reference_or_id)? {
            let _meta = self.inner.meta_lock()?;
            self.inner.metadata.delete(&image.id)?;
        }
        self.inner.collect_garbage()
    }

    /// Bytes and inodes the store uses on disk.
    pub fn fs_usage(&self) -> Result<(u64, u64), ImageError> {
        disk_usage(&self.inner.root)
    }

    /// Mounts the rootfs of image `image_id` (any name [`status`] accepts)
    /// at `<container_dir>/rootfs`: its snapshots under a per-container
    /// upper/work dir; read-only if asked. The snapshots are leased to the
    /// container until [`release_rootfs`] with the same `container_dir`, so
    /// removing the image meanwhile does not free them.
    ///
    /// [`status`]: ImageStore::status
    /// [`release_rootfs`]: ImageStore::release_rootfs
    pub fn prepare_rootfs(
        &self,
        image_id: &str,
        container_dir: &Path,
        readonly: bool,
    ) -> Result<RootfsMount, ImageError> {
        let _gc = lock(&self.inner.locks.join("gc"), LockMode::Shared)?;
        let image = self
            .status(image_id)?
            .ok_or_else(|| ImageError::NotFound(image_id.to_string()))?;
        let lowers: Vec<PathBuf> = image
            .chain_ids
            .iter()
            .rev()
            .map(|c| self.inner.snapshots.path(c))
            .collect();
        if let Some(missing) = lowers.iter().find(|p| !p.is_dir()) {
            return Err(ImageError::io("find snapshot", missing)(
                std::io::ErrorKind::NotFound.into(),
            ));
        }
        self.inner.leases.add(container_dir, &image.chain_ids)?;
        mount_rootfs(&lowers, container_dir, readonly).inspect_err(|_| {
            let _ = self.inner.leases.remove(container_dir);
        })
    }

    /// Unmounts `<container_dir>/rootfs` and drops the container's lease on
    /// its snapshots. Releasing twice, or a rootfs never prepared, is fine.
    /// The upper/work dirs stay for the caller to delete.
    pub fn release_rootfs(&self, container_dir: &Path) -> Result<(), ImageError> {
        unmount_rootfs(&container_dir.join("rootfs"))?;
        self.inner.leases.remove(container_dir)
    }
}

impl Inner {
    fn lock_path(&self, digest: &Digest) -> PathBuf {
        self.locks.join(digest.hex())
    }

    fn meta_lock(&self) -> Result<LockGuard, ImageError> {
        lock(&self.locks.join("meta"), LockMode::Exclusive)
    }

    /// Builds the image record for `manifest` and its config (not yet stored).
    fn describe(
        &self,
        manifest: &Manifest,
        manifest_digest: &Digest,
        config: &[u8],
        names: Names,
    ) -> Result<Image, ImageError> {
        manifest
            .config
            .digest
            .verify(&Digest::of_bytes(config), "image config")?;
        let what = format!("config {}", manifest.config.digest);
        let parsed: ImageConfiguration =
            serde_json::from_slice(config).map_err(ImageError::json(&what))?;
        let diff_ids = parsed
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| Digest::parse(d))
            .collect::<Result<Vec<_>, _>>()?;
        if diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::malformed(
                what,
                format!(
                    "{} diff ids for {} layers",
                    diff_ids.len(),
                    manifest.layers.len()
                ),
            ));
        }
        if let Some(bad) = manifest
            .layers
            .iter()
            .find(|l| !is_layer_type(&l.media_type))
        {
            return Err(ImageError::malformed(
                format!("layer {}", bad.digest),
                format!("media type {:?}", bad.media_type),
            ));
        }
        let user = parsed
            .config()
            .as_ref()
            .and_then(|c| c.user().clone())
            .filter(|u| !u.is_empty());
        Ok(Image {
            id: manifest.config.digest.clone(),
            repo_tags: names.tags,
            repo_digests: names.digests,
            size: manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
            user,
            chain_ids: chain_ids(&diff_ids),
            diff_ids,
            config: parsed,
            manifest_digest: manifest_digest.clone(),
            config_descriptor: manifest.config.clone(),
            layers: manifest.layers.clone(),
        })
    }

    /// Unpacks layer blob `layer` as snapshot `chain_id` unless it exists.
    fn ensure_snapshot(
        &self,
        chain_id: &Digest,
        diff_id: &Digest,
        layer: &Digest,
    ) -> Result<(), ImageError> {
        if self.snapshots.contains(chain_id) {
            return Ok(());
        }
        let _lock = lock(
            &self.locks.join(format!("snapshot-{}", chain_id.hex())),
            LockMode::Exclusive,
        )?;
        let blob = self.content.open(layer)?;
        self.snapshots
            .ensure(chain_id, diff_id, blob, layer.as_str())
    }

    fn record(&self, image: Image) -> Result<Image, ImageError> {
        let _meta = self.meta_lock()?;
        self.metadata.record(image)
    }

    /// Frees blobs and snapshots no image uses. Caller holds `gc` exclusive.
    fn collect_garbage(&self) -> Result<(), ImageError> {
        let images = self.metadata.all()?;
        let blobs: std::collections::HashSet<&Digest> =
            images.iter().flat_map(Image::blobs).collect();
        let leased = self.leases.chain_ids()?;
        let snaps: std::collections::HashSet<&Digest> = images
            .iter()
            .flat_map(|i| i.chain_ids.iter())
            .chain(leased.iter())
            .collect();
        for digest in self.content.list()? {
            if !blobs.contains(&digest) {
                self.content.remove(&digest)?;
                let _ = fs::remove_file(self.lock_path(&digest));
            }
        }
        for chain in self.snapshots.list()? {
            if !snaps.contains(&chain) {
                self.snapshots.remove(&chain)?;
                let _ = fs::remove_file(self.locks.join(format!("snapshot-{}", chain.hex())));
            }
        }
        Ok(())
    }
}

/// Runs `f(0..n)` on up to `workers` threads; the first error wins.
fn run_parallel(
    n: usize,
    workers: usize,
    f: impl Fn(usize) -> Result<(), ImageError> + Sync,
) -> Result<(), ImageError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || -> Result<(), ImageError> {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= n {
                return Ok(());
            }
            if let Err(e) = f(i) {
                next.store(n, std::sync::atomic::Ordering::Relaxed);
                return Err(e);
            }
        }
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers.min(n)).map(|_| s.spawn(work)).collect();
        handles.into_iter().try_for_each(|h| {
            h.join().map_err(|_| ImageError::Task {
                what: "unpack layer".into(),
                reason: "worker panicked".into(),
            })?
        })
    })
}

/// Runs blocking store work off the async runtime's threads.
async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ImageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ImageError::Task {
            what: what.to_string(),
            reason: e.to_string(),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: T) {}

    #[test]
    fn store_and_pull_future_can_cross_threads() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path(), RegistryConfig::default()).unwrap();
        assert_send_sync(&store);
        // Never polled: only its type matters (a gRPC handler needs it Send).
        assert_send(store.pull("busybox", None));
    }

    #[test]
    fn run_parallel_stops_at_the_first_error() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let seen = std::sync::atomic::AtomicUsize::new(0);
        let failing = AtomicBool::new(false);
        let res = run_parallel(100, 3, |i| {
            seen.fetch_add(1, Ordering::Relaxed);
            if i == 5 {
                failing.store(true, Ordering::Relaxed);
                return Err(ImageError::NotFound("x".into()));
            }
            // Later items wait for the failure, then take a moment each:
            // the failing worker must not be outrun by the others (with
            // instant items, two workers could take all 100 first).
            if i > 5 {
                let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
                while !failing.load(Ordering::Relaxed) && std::time::Instant::now() < give_up {
                    std::thread::yield_now();
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Ok(())
        });
        assert!(res.is_err());
        assert!(seen.load(std::sync::atomic::Ordering::Relaxed) < 100);
        assert!(run_parallel(0, 4, |_| Ok(())).is_ok());
    }
}
