//! What berthd keeps on disk about each pod and container, so that a restart
//! (or `kill -9`) loses nothing: `<root>/pods/<pod>/sandbox.json` and
//! `<root>/containers/<ctr>/container.json`, each written atomically and
//! fsynced. The CRI configs are stored as their protobuf encoding (base64),
//! exactly as kubelet sent them.

use std::path::{Path, PathBuf};

use berth_proto::v1::{ContainerConfig, PodSandboxConfig};
use serde::{Deserialize, Serialize};

use super::error::{DaemonError, Result};
use crate::monitor::records::write_durable;

/// The record's file name in a pod directory.
pub const SANDBOX_RECORD: &str = "sandbox.json";
/// The record's file name in a container directory.
pub const CONTAINER_RECORD: &str = "container.json";

/// Where a pod is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxPhase {
    /// RunPodSandbox has begun and not finished (a crash here is cleaned up
    /// on restart).
    Creating,
    /// Its pause process runs.
    Ready,
    /// Stopped, or its pause process is gone.
    NotReady,
}

/// A pod sandbox as berthd persists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxRecord {
    /// The sandbox id (64 hex digits).
    pub id: String,
    /// The RunPodSandbox config.
    #[serde(with = "proto_base64")]
    pub config: PodSandboxConfig,
    /// The requested runtime handler.
    #[serde(default)]
    pub runtime_handler: String,
    /// Creation time, ns since the epoch.
    pub created_at: i64,
    /// Its phase.
    pub phase: SandboxPhase,
    /// The pinned network namespace (`None`: host network).
    pub netns: Option<PathBuf>,
    /// Pod IPs, primary first.
    #[serde(default)]
    pub ips: Vec<String>,
    /// The pod cgroup (cgroupfs path).
    pub pod_cgroup: String,
    /// The pause process.
    pub pause_pid: Option<i32>,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerPhase {
    /// CreateContainer has begun and not finished.
    Creating,
    /// Created, not started.
    Created,
    /// Its process runs.
    Running,
    /// Its process has exited (or was lost while berthd was down).
    Exited,
}

/// A container as berthd persists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The container id (64 hex digits).
    pub id: String,
    /// Its pod's id.
    pub pod_id: String,
    /// The CreateContainer config (its resources updated by
    /// UpdateContainerResources).
    #[serde(with = "proto_base64")]
    pub config: ContainerConfig,
    /// The image as resolved: its id (`sha256:...`).
    pub image_id: String,
    /// The image reference CRI reports as `image_ref` (a repo digest when
    /// the image has one, else its id).
    pub image_ref: String,
    /// Creation time, ns since the epoch.
    pub created_at: i64,
    /// The absolute path of its CRI log.
    pub log_path: PathBuf,
    /// Its phase.
    pub phase: ContainerPhase,
    /// Its init's host pid (0 before create finished).
    #[serde(default)]
    pub pid: i32,
    /// Start time, ns (0: not started).
    #[serde(default)]
    pub started_at: i64,
    /// Exit time, ns (0: not exited).
    #[serde(default)]
    pub finished_at: i64,
    /// Exit code.
    #[serde(default)]
    pub exit_code: i32,
    /// CRI reason: Completed, Error, OOMKilled, or Unknown.
    #[serde(default)]
    pub reason: String,
    /// CRI message.
    #[serde(default)]
    pub message: String,
    /// The signal StopContainer sends first (the image's StopSignal).
    #[serde(default = "default_stop_signal")]
    pub stop_signal: i32,
}

fn default_stop_signal() -> i32 {
    libc::SIGTERM
}

/// Writes `value` as JSON to `dir/name`, durably.
pub fn save<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<()> {
    let data = serde_json::to_vec(value).map_err(|e| DaemonError::Internal(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(DaemonError::io("create", dir))?;
    write_durable(&dir.join(name), &data).map_err(DaemonError::from)
}

/// Reads `dir/name`; `None` if it does not exist.
pub fn load<T: for<'de> Deserialize<'de>>(dir: &Path, name: &str) -> Result<Option<T>> {
    let path = dir.join(name);
    match std::fs::read(&path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| DaemonError::Internal(format!("parse {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DaemonError::io("read", path)(e)),
    }
}

/// Serde for a protobuf message as base64 of its binary encoding.
mod proto_base64 {
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    use prost::Message;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<M: Message, S: Serializer>(m: &M, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(m.encode_to_vec()))
    }

    pub fn deserialize<'de, M: Message + Default, D: Deserializer<'de>>(
        d: D,
    ) -> Result<M, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = STANDARD.decode(text).map_err(D::Error::custom)?;
        M::decode(bytes.as_slice()).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::v1::PodSandboxMetadata;

    #[test]
    fn a_record_round_trips_with_its_config() {
        let dir = tempfile::tempdir().unwrap();
        let rec = SandboxRecord {
            id: "abc".into(),
            config: PodSandboxConfig {
                metadata: Some(PodSandboxMetadata {
                    name: "web".into(),
                    uid: "u1".into(),
                    namespace: "default".into(),
                    attempt: 2,
                }),
                hostname: "web-0".into(),
                ..Default::default()
            },
            runtime_handler: String::new(),
            created_at: 42,
            phase: SandboxPhase::Ready,
            netns: Some("/run/berth/netns/abc".into()),
            ips: vec!["10.88.0.2".into()],
            pod_cgroup: "/berth-pods/abc".into(),
            pause_pid: Some(7),
        };
        save(dir.path(), SANDBOX_RECORD, &rec).unwrap();
        let back: SandboxRecord = load(dir.path(), SANDBOX_RECORD).unwrap().unwrap();
        assert_eq!(back, rec);
        assert!(load::<SandboxRecord>(dir.path(), "missing.json")
            .unwrap()
            .is_none());
    }
}
