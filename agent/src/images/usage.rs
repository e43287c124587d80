//! Disk usage of the store: bytes and inodes, hard links counted once.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::error::ImageError;

/// Bytes (allocated blocks) and inodes used below `root`.
pub fn disk_usage(root: &Path) -> Result<(u64, u64), ImageError> {
    let mut seen = HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    let (mut bytes, mut inodes) = (0u64, 0u64);
    while let Some(path) = stack.pop() {
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            // Entries vanish while a pull or GC runs next to us.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ImageError::io("stat", &path)(e)),
        };
        if seen.insert((meta.dev(), meta.ino())) {
            bytes += meta.blocks() * 512;
            inodes += 1;
        }
        if meta.is_dir() {
            if let Ok(entries) = fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    Ok((bytes, inodes))
}
