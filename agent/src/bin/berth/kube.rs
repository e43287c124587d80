//! The CLI's view of berthd's kubelet: its status directory
//! (`<state>/kubelet`), the manifest directory it watches, finding a pod by
//! namespace and name, and checking a manifest file before handing it over
//! (every field error prefixed with the file's name).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use berth_agent::kubelet::status::{self, PodStatus};
use berth_agent::kubelet::{self, manager};
use berth_agent::manifest::{self, ManifestError, PlanOptions, PodPlan};

/// Where the kubelet's files are.
#[derive(Debug, Clone)]
pub struct Kube {
    pub status_dir: PathBuf,
}

impl Kube {
    pub fn new(state: &Path) -> Self {
        Self {
            status_dir: kubelet::status_dir(state),
        }
    }

    /// The manifest directory berthd watches.
    pub fn manifest_dir(&self) -> anyhow::Result<PathBuf> {
        let path = status::manager_path(&self.status_dir);
        let info = status::read_manager(&path).with_context(|| {
            format!(
                "berthd's pod manager is not running ({} is missing; is berthd running with this --state?)",
                path.display()
            )
        })?;
        Ok(info.manifest_dir)
    }

    /// Why berthd rejected `file`, if it did.
    pub fn file_error(&self, file: &Path) -> Option<String> {
        let info = status::read_manager(&status::manager_path(&self.status_dir)).ok()?;
        info.errors
            .into_iter()
            .find(|e| e.file == file)
            .map(|e| e.error)
    }

    /// Every manifest pod.
    pub fn pods(&self) -> Vec<PodStatus> {
        status::read_all(&self.status_dir)
    }

    /// The pod `namespace/name`, if berthd runs it.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodStatus> {
        status::read(&status::status_path(&self.status_dir, namespace, name)).ok()
    }

    /// Waits until none of `pods` has a status file (they are gone); false
    /// on timeout.
    pub async fn wait_gone(&self, pods: &[(String, String)], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = pods
                .iter()
                .any(|(ns, n)| status::status_path(&self.status_dir, ns, n).exists());
            if !left {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A manifest's error with the file's name on every line
/// (`pod.yaml: spec.containers[0].image: Required value`).
pub fn describe_error(file: &Path, e: &ManifestError) -> String {
    let name = file.display();
    match e {
        ManifestError::Invalid { object, errors } => {
            let mut out = format!("{name}: invalid {object}");
            for fe in errors.iter() {
                out.push_str(&format!("\n{name}: {fe}"));
            }
            out
        }
        ManifestError::Read { source, .. } => format!("{name}: {source}"),
        other => format!("{name}: {other}"),
    }
}

/// Loads and checks `file` as berthd would.
pub fn check_file(file: &Path) -> anyhow::Result<Vec<PodPlan>> {
    manifest::load_file(file, &PlanOptions::default())
        .map_err(|e| anyhow::anyhow!(describe_error(file, &e)))
}

/// Copies `file` into `dir` atomically (a hidden temporary file, then a
/// rename); the destination.
pub fn hand_over(file: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    let base = file
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a file name", file.display()))?;
    let base = if manager::is_manifest_name(base) {
        base.to_string()
    } else {
        format!("{}.yaml", base.trim_start_matches('.'))
    };
    let dest = dir.join(&base);
    let tmp = dir.join(format!(".{base}.tmp"));
    std::fs::copy(file, &tmp)
        .with_context(|| format!("copy {} to {}", file.display(), tmp.display()))?;
    std::fs::rename(&tmp, &dest).with_context(|| format!("rename to {}", dest.display()))?;
    Ok(dest)
}

/// The pod `namespace/name` berthd runs, or an error naming it.
pub fn need_pod(k: &Kube, namespace: &str, name: &str) -> anyhow::Result<PodStatus> {
    match k.pod(namespace, name) {
        Some(p) => Ok(p),
        None => bail!("pod {namespace}/{name} not found"),
    }
}
