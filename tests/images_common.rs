//! Helpers shared by the image store tests: scratch dirs, stores, mount
//! guards and fixture images.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use berth_agent::images::{unmount_rootfs, ImageStore, RegistryConfig, RootfsMount};
use berth_fixtures::image::{ImageSpec, Layer};

/// A scratch dir removed on drop.
pub fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("berth-images-{name}-"))
        .tempdir()
        .expect("create scratch dir")
}

/// A store at `<dir>/store`.
pub fn store(dir: &Path) -> ImageStore {
    store_with(dir, RegistryConfig::default())
}

/// A store at `<dir>/store` with registry settings.
pub fn store_with(dir: &Path, cfg: RegistryConfig) -> ImageStore {
    ImageStore::open(&dir.join("store"), cfg).expect("open store")
}

/// Unmounts a rootfs on drop (declare after the scratch dir so it drops first).
pub struct MountGuard(pub PathBuf);

impl MountGuard {
    /// Guards `m`.
    pub fn new(m: &RootfsMount) -> Self {
        MountGuard(m.target.clone())
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = unmount_rootfs(&self.0);
    }
}

/// A one-layer busybox image.
pub fn busybox() -> ImageSpec {
    ImageSpec::new(vec![Layer::busybox().expect("read /bin/busybox")])
}

/// busybox, then a layer with `data/{keep,gone}` and `opq/{old1,old2}`,
/// then a layer that whiteouts `data/gone` and makes `opq` opaque with
/// `opq/new`.
pub fn layered() -> ImageSpec {
    let l1 = Layer::new()
        .dir("data", 0o755)
        .file("data/keep", b"keep")
        .file("data/gone", b"gone")
        .dir("opq", 0o755)
        .file("opq/old1", b"1")
        .file("opq/old2", b"2");
    let l2 = Layer::new()
        .whiteout("data/gone")
        .opaque("opq")
        .file("opq/new", b"new");
    ImageSpec::new(vec![Layer::busybox().expect("read /bin/busybox"), l1, l2])
}

/// Checks the merged view of [`layered`] at `rootfs`.
pub fn assert_layered_view(rootfs: &Path) {
    assert_eq!(std::fs::read(rootfs.join("data/keep")).unwrap(), b"keep");
    assert!(
        !rootfs.join("data/gone").exists(),
        "whiteout must hide data/gone"
    );
    assert!(
        !rootfs.join("opq/old1").exists() && !rootfs.join("opq/old2").exists(),
        "opaque dir must hide lower entries"
    );
    assert_eq!(std::fs::read(rootfs.join("opq/new")).unwrap(), b"new");
    assert!(rootfs.join("bin/busybox").is_file());
}
