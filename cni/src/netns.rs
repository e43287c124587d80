//! Per-pod network namespaces: creating one pinned by a bind mount, removing
//! it, and running work (opening sockets, reading counters) inside it.
//!
//! A namespace is made by a short-lived thread that unshares its network
//! namespace, so berthd itself never leaves the host namespace. Pinning is a
//! bind mount of `/proc/thread-self/ns/net` on `<netns_dir>/<pod_id>`.
//! Inside the new namespace the thread turns off IPv6 duplicate-address
//! detection for every interface created later (`conf/default/accept_dad=0`),
//! so the pod's `eth0` never waits on DAD, and brings `lo` up.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::NetError;

/// Creates the pinned namespace for `pod_id` under `dir`; if it already
/// exists, returns its path unchanged.
pub(crate) fn create(dir: &Path, pod_id: &str) -> Result<PathBuf, NetError> {
    std::fs::create_dir_all(dir).map_err(|e| NetError::io("create netns dir", dir, e))?;
    let path = dir.join(pod_id);
    if is_pinned(&path) {
        return Ok(path);
    }
    match OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(NetError::io("create netns pin file", &path, e)),
    }
    let pinned = run_in_thread(&path, {
        let path = path.clone();
        move || unshare_and_pin(&path)
    });
    if pinned.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    pinned.map(|()| path)
}

/// Unmounts and deletes the pinned namespace; succeeds if it is already gone.
pub(crate) fn remove(path: &Path) -> Result<(), NetError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(source) => {
            return Err(NetError::Netns {
                op: "unmount",
                path: path.to_path_buf(),
                source,
            })
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetError::io("remove netns pin file", path, e)),
    }
}

/// Whether `path` is a bind mount of a namespace file.
pub(crate) fn is_pinned(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
        .unwrap_or(false)
}

/// Opens a pinned namespace file.
pub(crate) fn open(path: &Path) -> Result<File, NetError> {
    File::open(path).map_err(|e| NetError::io("open netns", path, e))
}

/// Runs `work` on a fresh thread that has joined the namespace at `path`.
/// Sockets opened by `work` stay bound to that namespace after it returns.
pub(crate) fn run_in<T, F>(path: &Path, work: F) -> Result<T, NetError>
where
    T: Send,
    F: FnOnce() -> Result<T, NetError> + Send,
{
    let ns = open(path)?;
    run_in_thread(path, move || {
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| NetError::Netns {
            op: "setns",
            path: path.to_path_buf(),
            source,
        })?;
        work()
    })
}

/// Runs `work` on a scoped thread so namespace changes die with the thread.
fn run_in_thread<T, F>(path: &Path, work: F) -> Result<T, NetError>
where
    T: Send,
    F: FnOnce() -> Result<T, NetError> + Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(work)
            .join()
            .map_err(|_| NetError::WorkerPanicked(path.display().to_string()))?
    })
}

fn unshare_and_pin(path: &Path) -> Result<(), NetError> {
    let ns_err = |op, source| NetError::Netns {
        op,
        path: path.to_path_buf(),
        source,
    };
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| ns_err("unshare", e))?;
    // The sysctl tree under /proc/sys/net follows the opener's namespace.
    let dad = Path::new("/proc/sys/net/ipv6/conf/default/accept_dad");
    if dad.exists() {
        crate::sysctl::write(dad, "0")?;
    }
    crate::loopback::bring_up().map_err(|e| ns_err("bring lo up", e))?;
    mount(
        Some("/proc/thread-self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| ns_err("bind mount", e))
}
