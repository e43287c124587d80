//! A busybox rootfs built once per machine and shared read-only by every test
//! process: keyed by busybox's content hash, built in a temporary directory and
//! renamed into place so racing builders never see a half-built tree.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::busybox::Busybox;
use crate::{rootfs, FixtureError};

/// Environment variable that overrides the cache directory.
pub const CACHE_ENV: &str = "BERTH_FIXTURES_CACHE";

/// The default cache directory (kept across reboots, shared by all checkouts).
pub const DEFAULT_CACHE_DIR: &str = "/var/tmp/berth-fixtures";

/// Bumped whenever the rootfs layout changes, so old caches are not reused.
const LAYOUT_VERSION: u32 = 1;

/// The path of a shared busybox rootfs, built on first use. Callers must not
/// write into it: use [`crate::Bundle`] or [`crate::busybox_rootfs`] for a
/// private, writable copy.
pub fn cached_busybox_rootfs() -> Result<PathBuf, FixtureError> {
    static CACHED: OnceLock<PathBuf> = OnceLock::new();
    if let Some(path) = CACHED.get() {
        return Ok(path.clone());
    }
    let cache_dir = std::env::var_os(CACHE_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR));
    let path = cached_rootfs_in(&cache_dir, &Busybox::locate()?)?;
    Ok(CACHED.get_or_init(|| path).clone())
}

/// Returns `cache_dir/busybox-<sha>-v<layout>`, building it if it is missing.
pub(crate) fn cached_rootfs_in(
    cache_dir: &Path,
    busybox: &Busybox,
) -> Result<PathBuf, FixtureError> {
    let sha = busybox.sha256()?;
    let target = cache_dir.join(format!("busybox-{}-v{LAYOUT_VERSION}", &sha[..16]));
    if target.is_dir() {
        return Ok(target);
    }
    fs::create_dir_all(cache_dir).map_err(FixtureError::io("create directory", cache_dir))?;
    let staging = tempfile::Builder::new()
        .prefix(".building-")
        .tempdir_in(cache_dir)
        .map_err(FixtureError::io("create staging directory in", cache_dir))?;
    rootfs::build(busybox, &busybox.applets()?, staging.path())?;
    // From here the staging tree must survive the TempDir guard only if the rename
    // succeeds; otherwise the guard removes it.
    match fs::rename(staging.path(), &target) {
        Ok(()) => {
            let _ = staging.keep();
            Ok(target)
        }
        // Another process renamed its build into place first: use that one.
        Err(error) if target.is_dir() && lost_race(&error) => Ok(target),
        Err(error) => Err(FixtureError::Io {
            op: "rename cached rootfs to",
            path: target,
            source: error,
        }),
    }
}

/// True for the errors rename(2) gives when the target directory already exists
/// and is not empty.
fn lost_race(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::DirectoryNotEmpty | ErrorKind::AlreadyExists
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn racing_threads_share_one_complete_build() {
        let cache = tempfile::tempdir().unwrap();
        let busybox = Busybox::locate().unwrap();
        let paths: Vec<PathBuf> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..6)
                .map(|_| scope.spawn(|| cached_rootfs_in(cache.path(), &busybox).unwrap()))
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().unwrap())
                .collect()
        });
        assert!(paths.windows(2).all(|pair| pair[0] == pair[1]));
        assert!(paths[0].join("bin/sh").is_file());
        assert!(paths[0].join("etc/passwd").is_file());
        // Losers' staging directories are gone: only the final tree remains.
        let entries: Vec<_> = fs::read_dir(cache.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }
}
