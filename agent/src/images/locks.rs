//! Advisory file locks (`flock`) that serialise work on the store between
//! threads and between processes (berthd and the CLI may share a store).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::error::ImageError;

/// A held lock; released on drop.
pub struct LockGuard {
    _lock: Flock<File>,
}

/// Whether a lock excludes every other holder or only exclusive ones.
#[derive(Debug, Clone, Copy)]
pub enum LockMode {
    /// Many shared holders at once, no exclusive one.
    Shared,
    /// One holder.
    Exclusive,
}

/// Blocks until `path` (created if missing) is locked in `mode`.
pub fn lock(path: &Path, mode: LockMode) -> Result<LockGuard, ImageError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(ImageError::io("open lock", path))?;
    let arg = match mode {
        LockMode::Shared => FlockArg::LockShared,
        LockMode::Exclusive => FlockArg::LockExclusive,
    };
    let lock = Flock::lock(file, arg).map_err(|(_, errno)| ImageError::Io {
        op: "flock",
        path: path.to_path_buf(),
        source: errno.into(),
    })?;
    Ok(LockGuard { _lock: lock })
}

/// Locks `path` from async code without blocking the runtime's threads.
pub async fn lock_async(path: PathBuf, mode: LockMode) -> Result<LockGuard, ImageError> {
    tokio::task::spawn_blocking(move || lock(&path, mode))
        .await
        .map_err(|e| ImageError::Task {
            what: "lock".into(),
            reason: e.to_string(),
        })?
}
