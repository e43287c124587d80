//! What the monitor keeps on disk under the pod's state directory, so that a
//! restarted berthd can read everything even if the monitor died:
//! `monitor.json` (the monitor, the pause process and the containers) and
//! `containers/<id>/exit.json` (written before the exit event is pushed).
//! Every file is written durably: temp file, fsync, rename, fsync of the dir.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::error::{MonitorError, Result};

/// The pod record's file name in the state directory.
pub const POD_RECORD: &str = "monitor.json";
/// The exit record's file name in a container's state directory.
pub const EXIT_RECORD: &str = "exit.json";

/// How a container's init ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Its pid.
    pub pid: i32,
    /// Exit code (128 + signal when killed by a signal).
    pub exit_code: i32,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// RFC 3339 (nanoseconds) exit time.
    pub finished_at: String,
    /// The OOM killer killed a process of the container.
    pub oom_killed: bool,
}

/// A container as recorded in `monitor.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Container id.
    pub id: String,
    /// Its init's host pid.
    pub pid: i32,
    /// Its bundle.
    pub bundle: PathBuf,
    /// Its CRI log.
    pub log_path: PathBuf,
    /// It has a terminal.
    pub tty: bool,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 start time.
    pub started_at: Option<String>,
}

/// `monitor.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodRecord {
    /// The pod id.
    pub pod_id: String,
    /// The monitor's pid.
    pub monitor_pid: i32,
    /// The pause process's pid.
    pub pause_pid: Option<i32>,
    /// The pod cgroup.
    pub pod_cgroup: Option<String>,
    /// Every container the monitor holds.
    pub containers: Vec<ContainerRecord>,
}

/// The state directory of container `id`.
pub fn container_dir(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("containers").join(id)
}

/// Writes `data` to `path` durably and atomically.
pub fn write_durable(path: &Path, data: &[u8]) -> Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut f = fs::File::create(&tmp).map_err(|e| MonitorError::io("create", &tmp, e))?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .map_err(|e| MonitorError::io("write", &tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| MonitorError::io("rename", path, e))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| MonitorError::io("fsync", dir, e))?;
    }
    Ok(())
}

fn write_json<T: Serialize>(path: &Path, value: &T, what: &'static str) -> Result<()> {
    let data = serde_json::to_vec(value).map_err(|e| MonitorError::json(what, e))?;
    write_durable(path, &data)
}

fn read_json<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| MonitorError::json(what, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(MonitorError::io("read", path, e)),
    }
}

/// Writes container `id`'s exit record.
pub fn write_exit(state_dir: &Path, id: &str, rec: &ExitRecord) -> Result<()> {
    let dir = container_dir(state_dir, id);
    fs::create_dir_all(&dir).map_err(|e| MonitorError::io("create", &dir, e))?;
    write_json(&dir.join(EXIT_RECORD), rec, "exit record")
}

/// Container `id`'s exit record, if it has exited.
pub fn read_exit(state_dir: &Path, id: &str) -> Result<Option<ExitRecord>> {
    read_json(
        &container_dir(state_dir, id).join(EXIT_RECORD),
        "exit record",
    )
}

/// Writes the pod record.
pub fn write_pod(state_dir: &Path, rec: &PodRecord) -> Result<()> {
    write_json(&state_dir.join(POD_RECORD), rec, "pod record")
}

/// The pod record, if the monitor wrote one.
pub fn read_pod(state_dir: &Path) -> Result<Option<PodRecord>> {
    read_json(&state_dir.join(POD_RECORD), "pod record")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_exit(dir.path(), "c").unwrap(), None);
        let rec = ExitRecord {
            pid: 5,
            exit_code: 137,
            signal: Some(9),
            finished_at: "2026-01-01T00:00:00.000000000Z".into(),
            oom_killed: false,
        };
        write_exit(dir.path(), "c", &rec).unwrap();
        assert_eq!(read_exit(dir.path(), "c").unwrap(), Some(rec));
        let names: Vec<_> = fs::read_dir(container_dir(dir.path(), "c"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [EXIT_RECORD]);
        let pod = PodRecord {
            pod_id: "p".into(),
            monitor_pid: 1,
            ..Default::default()
        };
        write_pod(dir.path(), &pod).unwrap();
        assert_eq!(read_pod(dir.path()).unwrap(), Some(pod));
    }
}
