//! Static pods: keeps the pods of every manifest file in a directory
//! running. The directory is polled every second; a file is read again only
//! when its size or mtime changed. A new pod gets a worker; a pod whose
//! spec changed (new uid or container hashes) is stopped gracefully and
//! started again from the new spec; a pod whose ConfigMaps/Secrets changed
//! only gets its volume files rewritten in place; a pod whose file went is
//! stopped gracefully and removed. Files whose name starts with `.` and
//! files that are not `.yaml`, `.yml` or `.json` are ignored. A file that
//! does not load keeps its previous pods (the error goes to the manager
//! file and the log).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::manifest::{self, PlanOptions, PodPlan};

use super::status::{self, FileError, ManagerInfo};
use super::worker::{self, Command, WorkerEnv};

/// The sandbox label that marks berthd's static pods.
pub const STATIC_POD_LABEL: &str = "io.berth.static-pod";

/// How often the directory is scanned.
pub const POLL: Duration = Duration::from_secs(1);

/// Whether the manager reads `name`.
pub fn is_manifest_name(name: &str) -> bool {
    !name.starts_with('.')
        && [".yaml", ".yml", ".json"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// What tells a changed file: inode (a file replaced by rename), size, mtime.
type Stamp = (u64, u64, Option<SystemTime>);

/// One file's last load.
struct FileState {
    stamp: Stamp,
    plans: Vec<PodPlan>,
}

struct Running {
    plan: PodPlan,
    tx: mpsc::UnboundedSender<Command>,
    join: JoinHandle<()>,
}

/// The static pod manager.
pub struct Manager {
    dir: PathBuf,
    opts: PlanOptions,
    env: Arc<WorkerEnv>,
    files: BTreeMap<PathBuf, FileState>,
    errors: BTreeMap<PathBuf, String>,
    pods: HashMap<(String, String), Running>,
    /// Workers stopping (removed pods), until they end: a pod that comes
    /// back meanwhile starts after its old worker is done.
    stopping: HashMap<(String, String), JoinHandle<()>>,
}

/// Whether the plans differ in more than their volume file contents.
fn spec_changed(old: &PodPlan, new: &PodPlan) -> bool {
    let strip = |p: &PodPlan| {
        let mut p = p.clone();
        p.volumes.clear();
        p
    };
    old.uid != new.uid || strip(old) != strip(new)
}

impl Manager {
    pub fn new(dir: PathBuf, opts: PlanOptions, env: Arc<WorkerEnv>) -> Self {
        Self {
            dir,
            opts,
            env,
            files: BTreeMap::new(),
            errors: BTreeMap::new(),
            pods: HashMap::new(),
            stopping: HashMap::new(),
        }
    }

    /// Removes the sandboxes (and pod directories) of static pods a
    /// previous berthd ran that no manifest holds any more; the others are
    /// adopted by their workers.
    async fn remove_orphans(&mut self) {
        let mut cri = self.env.cri.clone();
        let selector = [(STATIC_POD_LABEL.to_string(), "true".to_string())].into();
        let listed = cri
            .runtime
            .list_pod_sandbox(berth_proto::v1::ListPodSandboxRequest {
                filter: Some(berth_proto::v1::PodSandboxFilter {
                    label_selector: selector,
                    ..Default::default()
                }),
            })
            .await;
        for sb in listed.map(|r| r.into_inner().items).unwrap_or_default() {
            let uid = sb
                .labels
                .get(crate::manifest::labels::POD_UID)
                .cloned()
                .unwrap_or_default();
            if self.pods.values().any(|r| r.plan.uid == uid) {
                continue;
            }
            tracing::info!("kubelet: removing orphaned sandbox {} (uid {uid})", sb.id);
            let _ = cri
                .runtime
                .remove_pod_sandbox(berth_proto::v1::RemovePodSandboxRequest {
                    pod_sandbox_id: sb.id.clone(),
                })
                .await;
            if !uid.is_empty() && !uid.contains('/') && !uid.starts_with('.') {
                let _ = super::volumes::teardown(&self.opts.pods_dir.join(&uid));
            }
        }
    }

    /// Scans forever (stale status files of a previous run go first; after
    /// the first scan, orphaned sandboxes).
    pub async fn run(mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.env.status_dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        self.scan();
        self.remove_orphans().await;
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.scan();
        }
    }

    fn stamp(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        m.is_file().then(|| (m.ino(), m.len(), m.modified().ok()))
    }

    /// One scan: reload changed files, then reconcile the workers.
    pub fn scan(&mut self) {
        let mut present = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                if name.to_str().is_some_and(is_manifest_name) {
                    present.push(e.path());
                }
            }
        }
        present.sort();
        self.files.retain(|p, _| present.contains(p));
        self.errors.retain(|p, _| present.contains(p));
        for path in present {
            let Some(stamp) = Self::stamp(&path) else {
                continue;
            };
            if self.files.get(&path).is_some_and(|f| f.stamp == stamp) {
                continue;
            }
            match manifest::load_file(&path, &self.opts) {
                Ok(plans) => {
                    self.errors.remove(&path);
                    self.files.insert(path, FileState { stamp, plans });
                }
                Err(e) => {
                    tracing::warn!("{}: {e}", path.display());
                    self.errors.insert(path.clone(), e.to_string());
                    // Keep the pods it had; do not read it again until it changes.
                    let plans = self
                        .files
                        .remove(&path)
                        .map(|f| f.plans)
                        .unwrap_or_default();
                    self.files.insert(path, FileState { stamp, plans });
                }
            }
        }
        self.reconcile();
        self.write_info();
    }

    fn reconcile(&mut self) {
        let mut desired: HashMap<(String, String), (PodPlan, PathBuf)> = HashMap::new();
        for (path, f) in &self.files {
            for p in &f.plans {
                let key = (p.namespace.clone(), p.name.clone());
                if let Some((_, first)) = desired.get(&key) {
                    tracing::warn!(
                        "{}: pod {}/{} is already defined in {}; ignored",
                        path.display(),
                        key.0,
                        key.1,
                        first.display()
                    );
                    continue;
                }
                desired.insert(key, (p.clone(), path.clone()));
            }
        }
        let gone: Vec<_> = self
            .pods
            .keys()
            .filter(|k| !desired.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(r) = self.pods.remove(&key) {
                tracing::info!("pod {}/{}: manifest removed, stopping", key.0, key.1);
                let _ = r.tx.send(Command::Stop);
                self.stopping.insert(key, r.join);
            }
        }
        self.stopping.retain(|_, j| !j.is_finished());
        for (key, (plan, source)) in desired {
            match self.pods.remove(&key) {
                None => {
                    tracing::info!(
                        "pod {}/{}: starting from {}",
                        key.0,
                        key.1,
                        source.display()
                    );
                    let after = self.stopping.remove(&key);
                    self.start(key, plan, source, after);
                }
                Some(r) if spec_changed(&r.plan, &plan) => {
                    tracing::info!("pod {}/{}: spec changed, restarting", key.0, key.1);
                    let _ = r.tx.send(Command::Stop);
                    self.start(key, plan, source, Some(r.join));
                }
                Some(mut r) => {
                    if r.plan != plan {
                        let _ = r.tx.send(Command::Refresh(Box::new(plan.clone())));
                        r.plan = plan;
                    }
                    self.pods.insert(key, r);
                }
            }
        }
    }

    fn start(
        &mut self,
        key: (String, String),
        plan: PodPlan,
        source: PathBuf,
        after: Option<JoinHandle<()>>,
    ) {
        let mut run = plan.clone();
        run.sandbox
            .labels
            .insert(STATIC_POD_LABEL.into(), "true".into());
        let (tx, join) = worker::spawn(run, source, self.env.clone(), after);
        self.pods.insert(key, Running { plan, tx, join });
    }

    fn write_info(&self) {
        let info = ManagerInfo {
            manifest_dir: self.dir.clone(),
            errors: self
                .errors
                .iter()
                .map(|(file, error)| FileError {
                    file: file.clone(),
                    error: error.clone(),
                })
                .collect(),
        };
        let path = status::manager_path(&self.env.status_dir);
        if status::read_manager(&path).ok().as_ref() != Some(&info) {
            if let Err(e) = status::write_json(&path, &info) {
                tracing::warn!("{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names() {
        assert!(is_manifest_name("web.yaml"));
        assert!(is_manifest_name("a.yml"));
        assert!(is_manifest_name("pod.json"));
        assert!(!is_manifest_name(".web.yaml.tmp"));
        assert!(!is_manifest_name(".hidden.yaml"));
        assert!(!is_manifest_name("notes.txt"));
        assert!(!is_manifest_name("web.yaml~"));
    }

    #[test]
    fn only_volume_contents_is_not_a_spec_change() {
        let text = |data: &str| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata: {{k: {data}}}\n---\n\
                 apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  \
                 - {{name: a, image: x}}\n  volumes:\n  - {{name: v, configMap: {{name: c}}}}\n"
            )
        };
        let o = PlanOptions::default();
        let a = manifest::load(&text("one"), "f", &o).unwrap().remove(0);
        let b = manifest::load(&text("two"), "f", &o).unwrap().remove(0);
        assert_ne!(a, b);
        assert!(!spec_changed(&a, &b));
        let c = manifest::load(&text("one").replace("image: x", "image: y"), "f", &o)
            .unwrap()
            .remove(0);
        assert!(spec_changed(&a, &c));
    }
}
