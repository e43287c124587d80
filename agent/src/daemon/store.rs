//! berthd's in-memory view of every pod and container, served to the list
//! and status calls without touching the disk or the kernel, plus the name
//! reservations that keep (name, namespace, uid, attempt) unique.
//!
//! Each pod and container has its own async lock serialising its lifecycle
//! calls; there is no global lock. Lock order: a pod's before its
//! containers'.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio::sync::watch;

use super::error::{DaemonError, Result};
use super::records::{ContainerPhase, ContainerRecord, SandboxRecord};
use crate::monitor::MonitorClient;

/// Locks a std mutex, ignoring poisoning (the data are plain records).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One pod sandbox.
#[derive(Debug)]
pub struct Pod {
    /// Its id.
    pub id: String,
    /// Its record (the truth, persisted on every change).
    pub record: Mutex<SandboxRecord>,
    /// Serialises RunPodSandbox/Stop/Remove and container creation.
    pub op: tokio::sync::Mutex<()>,
    /// The connection to its monitor, while there is one.
    pub monitor: Mutex<Option<Arc<MonitorClient>>>,
    /// `<root>/pods/<id>`: records, pod files, the monitor's state.
    pub dir: PathBuf,
    /// `<state>/pods/<id>`: the monitor's socket.
    pub run_dir: PathBuf,
}

impl Pod {
    /// A copy of its record.
    pub fn snapshot(&self) -> SandboxRecord {
        lock(&self.record).clone()
    }

    /// Its monitor, or an error saying it has none.
    pub fn monitor(&self) -> Result<Arc<MonitorClient>> {
        lock(&self.monitor).clone().ok_or_else(|| {
            DaemonError::state(format!("pod sandbox {} has no running monitor", self.id))
        })
    }
}

/// One container.
#[derive(Debug)]
pub struct Container {
    /// Its id.
    pub id: String,
    /// Its pod's id.
    pub pod_id: String,
    /// Its record.
    pub record: Mutex<ContainerRecord>,
    /// Serialises Start/Stop/Remove/Update of this container.
    pub op: tokio::sync::Mutex<()>,
    /// Its phase, for waiting on an exit.
    pub phase: watch::Sender<ContainerPhase>,
    /// `<root>/containers/<id>`: bundle, rootfs, upper/work dirs, record.
    pub dir: PathBuf,
}

impl Container {
    /// A copy of its record.
    pub fn snapshot(&self) -> ContainerRecord {
        lock(&self.record).clone()
    }
}

/// Every pod and container, by id.
#[derive(Debug, Default)]
pub struct Store {
    pods: RwLock<HashMap<String, Arc<Pod>>>,
    containers: RwLock<HashMap<String, Arc<Container>>>,
    /// Name key → the id holding it.
    names: Mutex<HashMap<String, String>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// Finds `id` in `map`: the full id, or a unique prefix of one (crictl
/// shows and accepts truncated ids).
fn find<T>(map: &HashMap<String, Arc<T>>, id: &str) -> Option<Arc<T>> {
    if let Some(v) = map.get(id) {
        return Some(v.clone());
    }
    if id.is_empty() {
        return None;
    }
    let mut matches = map.iter().filter(|(k, _)| k.starts_with(id));
    match (matches.next(), matches.next()) {
        (Some((_, v)), None) => Some(v.clone()),
        _ => None,
    }
}

impl Store {
    /// Reserves `name` for `id`; fails if another id holds it.
    pub fn reserve_name(&self, kind: &'static str, name: &str, id: &str) -> Result<()> {
        let mut names = lock(&self.names);
        match names.get(name) {
            Some(owner) if owner != id => Err(DaemonError::NameTaken {
                kind,
                name: name.to_string(),
                owner: owner.clone(),
            }),
            _ => {
                names.insert(name.to_string(), id.to_string());
                Ok(())
            }
        }
    }

    /// Frees `name` if `id` holds it.
    pub fn release_name(&self, name: &str, id: &str) {
        let mut names = lock(&self.names);
        if names.get(name).is_some_and(|owner| owner == id) {
            names.remove(name);
        }
    }

    /// Adds a pod.
    pub fn add_pod(&self, pod: Arc<Pod>) {
        write(&self.pods).insert(pod.id.clone(), pod);
    }

    /// Forgets a pod.
    pub fn remove_pod(&self, id: &str) {
        write(&self.pods).remove(id);
    }

    /// The pod with this id or unique id prefix.
    pub fn pod(&self, id: &str) -> Option<Arc<Pod>> {
        find(&read(&self.pods), id)
    }

    /// The pod with this id or prefix, or NotFound.
    pub fn pod_or_err(&self, id: &str) -> Result<Arc<Pod>> {
        if id.is_empty() {
            return Err(DaemonError::invalid("pod_sandbox_id", "empty"));
        }
        self.pod(id).ok_or_else(|| DaemonError::no_pod(id))
    }

    /// Every pod.
    pub fn pods(&self) -> Vec<Arc<Pod>> {
        read(&self.pods).values().cloned().collect()
    }

    /// Adds a container.
    pub fn add_container(&self, c: Arc<Container>) {
        write(&self.containers).insert(c.id.clone(), c);
    }

    /// Forgets a container.
    pub fn remove_container(&self, id: &str) {
        write(&self.containers).remove(id);
    }

    /// The container with this id or unique id prefix.
    pub fn container(&self, id: &str) -> Option<Arc<Container>> {
        find(&read(&self.containers), id)
    }

    /// The container with this id or prefix, or NotFound.
    pub fn container_or_err(&self, id: &str) -> Result<Arc<Container>> {
        if id.is_empty() {
            return Err(DaemonError::invalid("container_id", "empty"));
        }
        self.container(id)
            .ok_or_else(|| DaemonError::no_container(id))
    }

    /// Every container.
    pub fn containers(&self) -> Vec<Arc<Container>> {
        read(&self.containers).values().cloned().collect()
    }

    /// The containers of pod `pod_id`.
    pub fn containers_of(&self, pod_id: &str) -> Vec<Arc<Container>> {
        read(&self.containers)
            .values()
            .filter(|c| c.pod_id == pod_id)
            .cloned()
            .collect()
    }
}

/// A fresh 64-hex-digit id (256 random bits, as containerd's ids).
pub fn new_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom(&mut bytes)?;
    Ok(hex::encode(bytes))
}

fn getrandom(buf: &mut [u8]) -> Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(DaemonError::io("read", "/dev/urandom"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_reserved_once() {
        let s = Store::default();
        s.reserve_name("pod sandbox", "web_default_u_0", "a")
            .unwrap();
        s.reserve_name("pod sandbox", "web_default_u_0", "a")
            .unwrap();
        let err = s
            .reserve_name("pod sandbox", "web_default_u_0", "b")
            .unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
        s.release_name("web_default_u_0", "b");
        assert!(s
            .reserve_name("pod sandbox", "web_default_u_0", "b")
            .is_err());
        s.release_name("web_default_u_0", "a");
        s.reserve_name("pod sandbox", "web_default_u_0", "b")
            .unwrap();
    }

    #[test]
    fn ids_are_found_by_unique_prefix() {
        let mut m = HashMap::new();
        m.insert("abc123".to_string(), Arc::new(1));
        m.insert("abd456".to_string(), Arc::new(2));
        assert_eq!(find(&m, "abc").as_deref(), Some(&1));
        assert_eq!(find(&m, "ab"), None);
        assert_eq!(find(&m, ""), None);
        assert_eq!(find(&m, "abd456").as_deref(), Some(&2));
        let id = new_id().unwrap();
        assert_eq!(id.len(), 64);
        assert_ne!(id, new_id().unwrap());
    }
}
