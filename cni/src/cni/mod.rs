//! Pod networking through standard CNI plugins (spec 1.0.0).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::NetError;
use crate::record::{PodRecord, Records};
use crate::types::{PodNetworkRequest, PodNetworkStatus};

/// What a later DEL needs to undo an ADD.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CniAttachment {}

/// The CNI backend.
#[derive(Debug)]
pub(crate) struct CniNetwork {
    conf_dir: PathBuf,
    bin_dirs: Vec<PathBuf>,
    timeout: Duration,
}

impl CniNetwork {
    pub fn new(conf_dir: PathBuf, bin_dirs: Vec<PathBuf>, timeout: Duration) -> Self {
        CniNetwork { conf_dir, bin_dirs, timeout }
    }
    pub fn status(&self) -> Result<(), String> {
        Err("cni not implemented".into())
    }
    pub async fn setup(&self, _records: &Records, req: &PodNetworkRequest) -> Result<PodNetworkStatus, NetError> {
        Err(NetError::NotConfigured(req.id.clone()))
    }
    pub async fn teardown(&self, _records: &Records, _record: &PodRecord) -> Result<(), NetError> {
        Ok(())
    }
}
