//! Per-pod network namespaces: creating one pinned by a bind mount, removing
//! it, and running work (opening sockets, reading counters) inside it.
//!
//! A namespace is made by a short-lived thread that unshares its network
//! namespace, so berthd itself never leaves the host namespace. Pinning is a
//! bind mount of `/proc/thread-self/ns/net` on `<netns_dir>/<pod_id>`.
//! Inside the new namespace the thread turns off IPv6 duplicate-address
//! detection for every interface created later (`conf/default/accept_dad=0`),
//! so the pod's `eth0` never waits on DAD, and brings `lo` up.
//!
//! The namespace directory itself is made a shared mount (bound onto itself
//! first if needed), so unpinning a namespace also unmounts the copies that
//! mount namespaces created later (containers, helpers) inherited as slaves;
//! otherwise such a copy would keep the namespace alive after removal.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::NetError;

/// Creates `dir` and makes it a shared mount point.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), NetError> {
    std::fs::create_dir_all(dir).map_err(|e| NetError::io("create netns dir", dir, e))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| NetError::io("resolve netns dir", dir, e))?;
    let ns_err = |op, source| NetError::Netns {
        op,
        path: dir.clone(),
        source,
    };
    if !is_mount_point(&dir)? {
        mount(
            Some(&dir),
            &dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| ns_err("bind netns dir onto itself", e))?;
    }
    mount(
        None::<&str>,
        &dir,
        None::<&str>,
        MsFlags::MS_SHARED | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| ns_err("make netns dir shared", e))
}

/// Undoes `prepare_dir`'s bind mount (uninstall, tests); a directory that
/// is not mounted is fine.
pub(crate) fn release_dir(dir: &Path) -> Result<(), NetError> {
    match umount2(dir, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => Ok(()),
        Err(source) => Err(NetError::Netns {
            op: "unmount netns dir",
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Whether `path` (canonical) is a mount point, from /proc/self/mountinfo.
fn is_mount_point(path: &Path) -> Result<bool, NetError> {
    let info = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(info).map_err(|e| NetError::io("read", info, e))?;
    let wanted = path.as_os_str().as_encoded_bytes();
    Ok(text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|mount_point| unescape_mountinfo(mount_point) == wanted))
}

/// Decodes mountinfo's octal escapes (`\040` for a space, and so on).
fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| {
                let value = d.iter().fold(0u16, |acc, c| acc * 8 + u16::from(c - b'0'));
                u8::try_from(value).ok()
            });
        match (bytes[i], decoded) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Creates the pinned namespace for `pod_id` under `dir` (prepared by
/// `prepare_dir`); if it already exists, returns its path unchanged.
pub(crate) fn create(dir: &Path, pod_id: &str) -> Result<PathBuf, NetError> {
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

#[cfg(test)]
mod tests {
    #[test]
    fn unescapes_mountinfo_fields() {
        assert_eq!(super::unescape_mountinfo(r"/run/a\040b"), b"/run/a b");
        assert_eq!(super::unescape_mountinfo(r"/x\\y"), br"/x\\y");
        assert_eq!(super::unescape_mountinfo(r"/x\777"), br"/x\777");
        assert_eq!(super::unescape_mountinfo("/plain"), b"/plain");
    }
}
