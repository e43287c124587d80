//! Per-pod records: what was set up for a pod, so teardown can undo exactly
//! that, also after a berthd restart. One JSON file per pod under
//! `<state_dir>/pods/`, replaced atomically (write to a temp file, rename).

use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::NetError;
use crate::types::PortMapping;

/// Everything a pod's network consists of.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PodRecord {
    pub pod_id: String,
    pub netns: PathBuf,
    /// Host end of the pod's veth (built-in mode).
    #[serde(default)]
    pub host_veth: Option<String>,
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
    /// hostPort mappings installed in nftables (built-in mode).
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    /// What DEL needs to undo a CNI ADD (CNI mode).
    #[serde(default)]
    pub cni: Option<crate::cni::CniAttachment>,
}

/// The directory of pod records.
#[derive(Debug, Clone)]
pub(crate) struct Records {
    dir: PathBuf,
}

impl Records {
    pub fn open(state_dir: &Path) -> Result<Self, NetError> {
        let dir = state_dir.join("pods");
        std::fs::create_dir_all(&dir).map_err(|e| NetError::io("create records dir", &dir, e))?;
        Ok(Records { dir })
    }

    fn path(&self, pod_id: &str) -> PathBuf {
        self.dir.join(format!("{pod_id}.json"))
    }

    pub fn load(&self, pod_id: &str) -> Result<Option<PodRecord>, NetError> {
        let path = self.path(pod_id);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(NetError::io("read pod record", &path, e)),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| NetError::CorruptState {
                path,
                reason: e.to_string(),
            })
    }

    pub fn save(&self, record: &PodRecord) -> Result<(), NetError> {
        let path = self.path(&record.pod_id);
        let tmp = self.dir.join(format!(".{}.tmp", record.pod_id));
        let text = serde_json::to_vec(record).map_err(|e| NetError::CorruptState {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&tmp, text).map_err(|e| NetError::io("write pod record", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| NetError::io("rename pod record", &path, e))
    }

    pub fn remove(&self, pod_id: &str) -> Result<(), NetError> {
        let path = self.path(pod_id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(NetError::io("remove pod record", &path, e)),
        }
    }

    /// Ids of every pod with a record.
    pub fn pod_ids(&self) -> Result<Vec<String>, NetError> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(|e| NetError::io("list records", &self.dir, e))?;
        Ok(entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_suffix(".json")?;
                (!id.starts_with('.')).then(|| id.to_string())
            })
            .collect())
    }
}
