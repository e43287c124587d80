//! An OCI bundle on disk: a private busybox `rootfs/` and a `config.json` that
//! tests edit through [`Bundle::spec_mut`] and write back with [`Bundle::save`].

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use tempfile::TempDir;

use crate::spec::default_spec;
use crate::{busybox_rootfs, FixtureError};

/// The bundle's config file name, fixed by the OCI runtime spec.
pub const CONFIG_FILE: &str = "config.json";
/// The bundle's root filesystem directory, as named in its config.
pub const ROOTFS_DIR: &str = "rootfs";

/// A bundle directory holding a fresh busybox rootfs and its runtime config.
#[derive(Debug)]
pub struct Bundle {
    dir: PathBuf,
    spec: Spec,
    /// Set when the bundle owns its directory: dropping it removes the bundle.
    _owned_dir: Option<TempDir>,
}

impl Bundle {
    /// Writes a bundle into `dir` (created if missing; must not hold a rootfs yet)
    /// whose process runs `args`, with the default config of [`default_spec`].
    pub fn new(dir: impl AsRef<Path>, args: &[&str]) -> Result<Bundle, FixtureError> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(FixtureError::io("create directory", dir))?;
        Self::write(dir.to_path_buf(), args, None)
    }

    /// Writes a bundle into a new temporary directory that is removed when the
    /// bundle is dropped.
    pub fn temp(args: &[&str]) -> Result<Bundle, FixtureError> {
        let owned = tempfile::Builder::new()
            .prefix("berth-bundle-")
            .tempdir()
            .map_err(FixtureError::io(
                "create temporary directory in",
                std::env::temp_dir(),
            ))?;
        Self::write(owned.path().to_path_buf(), args, Some(owned))
    }

    fn write(
        dir: PathBuf,
        args: &[&str],
        owned_dir: Option<TempDir>,
    ) -> Result<Bundle, FixtureError> {
        busybox_rootfs(&dir.join(ROOTFS_DIR))?;
        let bundle = Bundle {
            dir,
            spec: default_spec(args),
            _owned_dir: owned_dir,
        };
        bundle.save()?;
        Ok(bundle)
    }

    /// The bundle directory (what runtimes take as `--bundle`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bundle's root filesystem.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join(ROOTFS_DIR)
    }

    /// The bundle's `config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// The runtime config as last set (saved or not).
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The runtime config, to edit before [`Bundle::save`].
    pub fn spec_mut(&mut self) -> &mut Spec {
        &mut self.spec
    }

    /// Writes the runtime config to `config.json`.
    pub fn save(&self) -> Result<(), FixtureError> {
        let path = self.config_path();
        self.spec
            .save(&path)
            .map_err(|source| FixtureError::Spec { path, source })
    }
}
