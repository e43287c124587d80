//! Temporary files and directories inside the store (`<root>/tmp`), named
//! after the creating process so that leftovers of a killed process can be
//! swept, and removed on drop unless committed by a rename.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::ImageError;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary path that is deleted (file or whole tree) when dropped,
/// unless [`Staged::commit`] renamed it into place.
pub struct Staged {
    path: PathBuf,
    committed: bool,
}

impl Staged {
    /// A fresh, not yet existing path in `tmp_dir`.
    pub fn new(tmp_dir: &Path, what: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = tmp_dir.join(format!("{}-{n}-{what}", std::process::id()));
        Staged {
            path,
            committed: false,
        }
    }

    /// The temporary path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Atomically renames the staged file or directory to `dest`.
    pub fn commit(mut self, dest: &Path) -> Result<(), ImageError> {
        fs::rename(&self.path, dest).map_err(ImageError::io("rename into place", dest))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            remove_any(&self.path);
        }
    }
}

/// Removes a file or a directory tree, ignoring errors (best effort cleanup).
pub fn remove_any(path: &Path) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// Removes entries of `tmp_dir` left by processes that no longer run.
pub fn sweep_stale(tmp_dir: &Path) -> Result<(), ImageError> {
    let entries = fs::read_dir(tmp_dir).map_err(ImageError::io("read dir", tmp_dir))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_string_lossy()
            .split('-')
            .next()
            .and_then(|p| p.parse::<i32>().ok());
        let alive = pid.is_some_and(|pid| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                != Err(nix::errno::Errno::ESRCH)
        });
        if !alive {
            remove_any(&entry.path());
        }
    }
    Ok(())
}
