//! On-disk container state: `<root>/<id>/state.json`, written atomically, plus
//! the `exec.fifo` that marks a created-but-not-started container. Owned here:
//! the state layout, the status of a container (derived from its init process
//! and the fifo, never trusted from disk), and the runc-compatible state JSON.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The file name of the state inside a container's directory.
pub const STATE_FILE: &str = "state.json";
/// The fifo the init blocks on until `start`.
pub const EXEC_FIFO: &str = "exec.fifo";

/// A container's status, as runc reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being created (no state file yet).
    Creating,
    /// Init is waiting for `start`.
    Created,
    /// The user process runs.
    Running,
    /// Frozen by the cgroup freezer.
    Paused,
    /// The init process is gone.
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What berth keeps about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    /// Container id.
    pub id: String,
    /// Host pid of the container's init.
    pub pid: i32,
    /// Start time of the init (field 22 of /proc/PID/stat), to tell pid reuse apart.
    pub init_start_time: u64,
    /// Absolute bundle path.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// The cgroup path (relative to the hierarchy roots).
    pub cgroup_path: String,
    /// The spec the container was created from (hooks for delete, template for exec).
    pub spec: Spec,
}

/// runc's `state` output.
#[derive(Debug, Serialize)]
pub struct OciState<'a> {
    /// Spec version.
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    /// Container id.
    pub id: &'a str,
    /// Init pid (0 when stopped).
    pub pid: i32,
    /// Status.
    pub status: Status,
    /// Bundle path.
    pub bundle: &'a Path,
    /// Rootfs path.
    pub rootfs: &'a Path,
    /// Creation time.
    pub created: &'a str,
    /// Owner (empty: root).
    pub owner: &'a str,
    /// The spec's annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<&'a std::collections::HashMap<String, String>>,
}

/// The state root (runc's `--root`), holding one directory per container.
#[derive(Debug, Clone)]
pub struct StateRoot {
    dir: PathBuf,
}

impl StateRoot {
    /// The default root: `/run/berth-runtime`.
    pub const DEFAULT: &'static str = "/run/berth-runtime";

    /// A state root at `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The root directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of container `id`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Claims the directory of a new container; fails if it exists.
    pub fn claim(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        fs::create_dir_all(&self.dir).map_err(|e| Error::io("create state root", &self.dir, e))?;
        let dir = self.container_dir(id);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists(id.to_string()))
            }
            Err(e) => Err(Error::io("create state dir", dir, e)),
        }
    }

    /// Loads container `id`'s state.
    pub fn load(&self, id: &str) -> Result<ContainerState> {
        validate_id(id)?;
        let path = self.container_dir(id).join(STATE_FILE);
        let data = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound(id.to_string()),
            _ => Error::io("read", &path, e),
        })?;
        serde_json::from_slice(&data).map_err(|e| Error::Bundle {
            path,
            reason: format!("corrupt state: {e}"),
        })
    }

    /// Writes `state` atomically (temp file + rename).
    pub fn save(&self, state: &ContainerState) -> Result<()> {
        let dir = self.container_dir(&state.id);
        let data = serde_json::to_vec(state).map_err(|e| Error::Bundle {
            path: dir.clone(),
            reason: format!("serialize state: {e}"),
        })?;
        write_atomic(&dir.join(STATE_FILE), &data)
    }

    /// Ids of every container with a directory under the root, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &self.dir, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

impl ContainerState {
    /// The current status, from the init process and the exec fifo.
    pub fn status(&self, root: &StateRoot) -> Status {
        match process_start_time(self.pid) {
            Some(t) if t == self.init_start_time => {
                if root.container_dir(&self.id).join(EXEC_FIFO).exists() {
                    Status::Created
                } else {
                    Status::Running
                }
            }
            _ => Status::Stopped,
        }
    }

    /// The runc-compatible state JSON view.
    pub fn oci<'a>(&'a self, status: Status) -> OciState<'a> {
        OciState {
            oci_version: self.spec.version(),
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: "",
            annotations: self.spec.annotations().as_ref(),
        }
    }
}

/// Checks a container id the way runc does.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

/// The start time of a live, non-zombie process, or `None`.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // `rest` starts at field 3 (state); starttime is field 22.
    fields.nth(18)?.parse().ok()
}

/// Writes `data` to `path` through a temp file and a rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
    f.write_all(data).map_err(|e| Error::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_like_runc() {
        for ok in ["a", "abc-1_2.3+x", "A"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "a/b", "../x", "a b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn own_process_has_a_start_time() {
        assert!(process_start_time(std::process::id() as i32).is_some());
        assert!(process_start_time(0).is_none());
        assert!(process_start_time(i32::MAX).is_none());
    }

    #[test]
    fn claim_refuses_duplicates() {
        let tmp = tempfile::tempdir().unwrap();
        let root = StateRoot::new(tmp.path());
        root.claim("c1").unwrap();
        assert!(matches!(root.claim("c1"), Err(Error::AlreadyExists(_))));
        assert!(matches!(root.load("c1"), Err(Error::NotFound(_))));
        assert_eq!(root.ids().unwrap(), vec!["c1".to_string()]);
    }
}
