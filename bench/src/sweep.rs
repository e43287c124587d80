//! Last-resort cleanup after a daemon under test is gone: killing processes
//! it left, unmounting what it mounted under its directories, and removing
//! the cgroups its pods lived in. Every step is best effort and reports
//! what it could not undo.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long killed processes get to disappear.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Sends SIGKILL to every pid and waits (bounded) until they are gone or
/// zombies of someone else.
pub fn kill_all(pids: &[u32]) {
    for pid in pids {
        if let Ok(raw) = i32::try_from(*pid) {
            let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
        }
    }
    let deadline = Instant::now() + KILL_WAIT;
    while pids.iter().any(|pid| alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Lazily unmounts every mount point at or below `dir`, deepest first;
/// returns those that would not go.
pub fn unmount_under(dir: &Path) -> Vec<PathBuf> {
    let mut points = mounts_under(dir);
    // Deepest first, so that a parent is never busy with a child mount.
    points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
    points.dedup();
    let mut stuck = Vec::new();
    for point in points {
        if umount2(&point, MntFlags::MNT_DETACH).is_err() && mounts_under(&point).contains(&point) {
            stuck.push(point);
        }
    }
    stuck
}

/// Mount points at or below `dir`, from this process's mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|point| point.starts_with(dir))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_path(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|digits| {
            let text = std::str::from_utf8(digits).ok()?;
            u8::from_str_radix(text, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    PathBuf::from(String::from_utf8_lossy(&out).into_owned())
}

/// The directories of cgroup `relative` (e.g. `/berth-bench/containerd`)
/// in every mounted hierarchy: one on cgroup v2, one per v1 controller
/// mount on a v1 or hybrid host.
pub fn cgroup_dirs(relative: &str) -> Vec<PathBuf> {
    let relative = relative.trim_start_matches('/');
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.join(relative)];
    }
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| entry.path().join(relative))
        .collect();
    dirs.sort();
    dirs
}

/// Kills every process in cgroup `relative` and below, then removes the
/// cgroup directories, children first; returns the directories left.
pub fn remove_cgroup_tree(relative: &str) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for top in cgroup_dirs(relative) {
        if !top.exists() {
            continue;
        }
        let mut dirs = Vec::new();
        collect_dirs(&top, &mut dirs);
        let pids: Vec<u32> = dirs.iter().flat_map(|dir| cgroup_pids(dir)).collect();
        kill_all(&pids);
        dirs.sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
        for dir in dirs {
            if fs::remove_dir(&dir).is_err() && dir.exists() {
                left.push(dir);
            }
        }
    }
    left
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_path_buf());
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.filter_map(|entry| entry.ok()) {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                collect_dirs(&entry.path(), out);
            }
        }
    }
}

fn cgroup_pids(dir: &Path) -> Vec<u32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(
            unescape_mount_path(r"/tmp/a\040b\134c"),
            PathBuf::from("/tmp/a b\\c")
        );
        assert_eq!(unescape_mount_path(r"/x\0"), PathBuf::from(r"/x\0"));
    }

    #[test]
    fn own_process_is_alive_and_a_bogus_pid_is_not() {
        assert!(alive(std::process::id()));
        assert!(!alive(u32::MAX));
    }
}
