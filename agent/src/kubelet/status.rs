//! The observed status of a manifest pod, as each worker writes it to
//! `<state>/kubelet/<namespace>_<name>.json` for the `berth` CLI: phase,
//! conditions, per-container state, restarts, last termination, probe
//! results and recent events. Times are nanoseconds since the epoch, as in
//! CRI. The file is replaced atomically (write, fsync, rename).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How many events a pod's status keeps.
pub const MAX_EVENTS: usize = 50;

/// A pod as the kubelet last saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    /// The manifest file the pod comes from.
    pub source: PathBuf,
    /// Pending, Running, Succeeded or Failed.
    pub phase: String,
    /// The STATUS column of `kubectl get pods` (Running, Init:0/1,
    /// CrashLoopBackOff, Completed, Terminating, ...).
    pub status: String,
    /// Why the pod is in its phase (a pod-level failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    /// When the worker took the pod on.
    pub created_at: i64,
    /// When the sandbox was running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    pub terminating: bool,
    pub conditions: Vec<Condition>,
    pub init_containers: Vec<ContainerView>,
    pub containers: Vec<ContainerView>,
    pub events: Vec<Event>,
}

impl PodStatus {
    /// Whether the pod's Ready condition is true.
    pub fn ready(&self) -> bool {
        self.condition("Ready")
    }

    /// The status of the condition `kind` (false when absent).
    pub fn condition(&self, kind: &str) -> bool {
        self.conditions.iter().any(|c| c.kind == kind && c.status)
    }

    /// Total restarts of the app containers.
    pub fn restarts(&self) -> u32 {
        self.containers.iter().map(|c| c.restart_count).sum()
    }

    /// A container (init or app) by name.
    pub fn container(&self, name: &str) -> Option<&ContainerView> {
        self.init_containers
            .iter()
            .chain(&self.containers)
            .find(|c| c.name == name)
    }

    /// Whether the phase is final.
    pub fn is_terminal(&self) -> bool {
        self.phase == "Succeeded" || self.phase == "Failed"
    }
}

/// One pod condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// PodScheduled, Initialized, ContainersReady or Ready.
    #[serde(rename = "type")]
    pub kind: String,
    pub status: bool,
    pub last_transition: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A container's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    Waiting {
        reason: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        message: String,
    },
    Running {
        started_at: i64,
    },
    Terminated(Terminated),
}

impl Default for State {
    fn default() -> Self {
        State::Waiting {
            reason: "ContainerCreating".into(),
            message: String::new(),
        }
    }
}

/// How a container ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Terminated {
    pub exit_code: i32,
    /// Completed, Error or OOMKilled.
    pub reason: String,
    /// The termination message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub started_at: i64,
    pub finished_at: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_id: String,
}

/// One container of the pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_state: Option<Terminated>,
    pub ready: bool,
    pub started: bool,
    pub restart_count: u32,
    /// The current instance's log file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_path: Option<String>,
    /// The previous instance's log file (`berth logs --previous`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_log_path: Option<String>,
    pub probes: Vec<ProbeView>,
}

/// The last result of one probe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeView {
    /// liveness, readiness or startup.
    pub kind: String,
    /// Success, Failure or Unknown (the result after thresholds).
    pub result: String,
    /// Whether the last run passed, and how many runs in a row did the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ok: Option<bool>,
    pub consecutive: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_at: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub successes: u64,
    pub failures: u64,
}

/// Something that happened to the pod (kubelet's events).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub at: i64,
    /// Normal or Warning.
    #[serde(rename = "type")]
    pub kind: String,
    pub reason: String,
    pub message: String,
    /// The container it is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// A status file that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The status file of pod `namespace/name` in `dir`.
pub fn status_path(dir: &Path, namespace: &str, name: &str) -> PathBuf {
    dir.join(format!("{namespace}_{name}.json"))
}

/// Writes `value` as JSON to `path` atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StatusError> {
    let json = serde_json::to_vec_pretty(value).map_err(|source| StatusError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let tmp = path.with_extension("json.tmp");
    let io = |op| {
        move |source| StatusError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut f = std::fs::File::create(&tmp).map_err(io("create"))?;
    f.write_all(&json).map_err(io("write"))?;
    f.sync_all().map_err(io("fsync"))?;
    std::fs::rename(&tmp, path).map_err(io("rename"))
}

/// Reads a JSON file written by [`write_json`].
fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, StatusError> {
    let text = std::fs::read(path).map_err(|source| StatusError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| StatusError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a pod status file.
pub fn read(path: &Path) -> Result<PodStatus, StatusError> {
    read_json(path)
}

/// Every pod status in `dir` (files that do not parse are skipped: one
/// may be mid-replace), sorted by namespace and name.
pub fn read_all(dir: &Path) -> Vec<PodStatus> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PodStatus> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.contains('_'))
        })
        .filter_map(|p| read(&p).ok())
        .collect();
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    out
}

/// What berthd's kubelet tells the CLI about itself:
/// `<state>/kubelet/manager.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagerInfo {
    /// The directory of pod manifests berthd keeps running.
    pub manifest_dir: PathBuf,
    /// Files that could not be loaded, with the error.
    pub errors: Vec<FileError>,
}

/// A manifest file that the manager rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileError {
    pub file: PathBuf,
    pub error: String,
}

/// Reads the manager file.
pub fn read_manager(path: &Path) -> Result<ManagerInfo, StatusError> {
    read_json(path)
}

/// The manager file in the kubelet's status `dir`.
pub fn manager_path(dir: &Path) -> PathBuf {
    dir.join("manager.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_listing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = PodStatus {
            name: "web".into(),
            namespace: "default".into(),
            phase: "Running".into(),
            ..Default::default()
        };
        s.conditions.push(Condition {
            kind: "Ready".into(),
            status: true,
            ..Default::default()
        });
        s.containers.push(ContainerView {
            name: "c".into(),
            state: State::Terminated(Terminated {
                exit_code: 1,
                reason: "Error".into(),
                ..Default::default()
            }),
            restart_count: 2,
            ..Default::default()
        });
        let p = status_path(dir.path(), "default", "web");
        write_json(&p, &s).unwrap();
        write_json(&manager_path(dir.path()), &ManagerInfo::default()).unwrap();
        assert_eq!(read(&p).unwrap(), s);
        let all = read_all(dir.path());
        assert_eq!(all.len(), 1, "manager.json is not a pod");
        assert!(all[0].ready());
        assert_eq!(all[0].restarts(), 2);
        assert!(all[0].container("c").is_some());
    }
}
