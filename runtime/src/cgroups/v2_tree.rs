//! Creating a cgroup on v2: the directory chain from the root down, with
//! every controller an ancestor has delegated to its children as well. Only
//! the controllers missing from an ancestor's `cgroup.subtree_control` are
//! written, in one write per ancestor: once set up, a create reads one small
//! file per level instead of writing every controller to every level (each
//! such write takes the kernel's cgroup lock, which parallel creates share).

use std::io::ErrorKind;
use std::path::Path;

use super::{files, CgroupError};

/// Creates `root/<path>` (a `/a/b` path relative to the v2 root) and its
/// missing parents, enabling each level's available controllers for the
/// level below. An existing cgroup is fine.
pub(super) fn create(root: &Path, path: &str) -> Result<(), CgroupError> {
    let mut dir = root.to_path_buf();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for part in parts {
        delegate_controllers(path, &dir)?;
        dir.push(part);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(CgroupError::Create {
                    cgroup: path.to_string(),
                    source: format!("mkdir {}: {e}", dir.display()).into(),
                })
            }
        }
    }
    Ok(())
}

/// Enables in `dir`'s `cgroup.subtree_control` the controllers of its
/// `cgroup.controllers` that are not enabled yet. A refusal (for instance a
/// parent that holds processes itself) is left to the caller's check of the
/// new cgroup's controllers, which names what is missing.
fn delegate_controllers(cgroup: &str, dir: &Path) -> Result<(), CgroupError> {
    let available = files::read(cgroup, dir, "cgroup.controllers")?;
    let enabled = files::read(cgroup, dir, "cgroup.subtree_control")?;
    let missing = missing_controllers(&available, &enabled);
    if missing.is_empty() {
        return Ok(());
    }
    let file = dir.join("cgroup.subtree_control");
    if std::fs::write(&file, &missing).is_ok() {
        return Ok(());
    }
    // One refused controller fails the whole write: enable the others one by one.
    for one in missing.split(' ') {
        if let Err(e) = std::fs::write(&file, one) {
            tracing::debug!("enable {one} in {}: {e}", file.display());
        }
    }
    Ok(())
}

/// `+a +b` for every controller in `available` that is not in `enabled`.
fn missing_controllers(available: &str, enabled: &str) -> String {
    let on: Vec<&str> = enabled.split_whitespace().collect();
    available
        .split_whitespace()
        .filter(|c| !on.contains(c))
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::missing_controllers;

    #[test]
    fn only_missing_controllers_are_written() {
        assert_eq!(
            missing_controllers("cpuset cpu io memory pids\n", "cpu memory\n"),
            "+cpuset +io +pids"
        );
        assert_eq!(missing_controllers("cpu memory", "memory cpu"), "");
        assert_eq!(missing_controllers("", ""), "");
    }
}
