//! Starting the monitor: the command line, detaching from the spawner (fork
//! once, new session, stdio to `/dev/null` and `<run-dir>/monitor.log`),
//! becoming a child subreaper and listening on the socket. The spawner's
//! child exits only after the monitor listens (or with the monitor's error).
//!
//! When `<run-dir>/monitor.cgroup` names a cgroup, the detached monitor
//! lives there: cloned into it on v2, entering it itself on v1 (berthd
//! writes the file; a move by berthd would wait for an RCU grace period
//! while holding the kernel's cgroup mutex, stalling the pod's own cgroup
//! work). A cgroup that cannot be used is logged, not fatal.

use std::{
    ffi::OsString,
    fs::{File, OpenOptions},
    io::{Read, Write},
    os::{fd::AsRawFd, unix::net::UnixListener},
    path::PathBuf,
};

use berth_runtime::{cgroups::CgroupManager, process::clone};
use nix::sched::CloneFlags;

use super::{sys, Monitor};
use crate::monitor::{
    error::{MonitorError, Result},
    LOG_NAME, SOCKET_NAME,
};

/// The monitor's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The pod id.
    pub pod_id: String,
    /// Persistent state (`/var/lib/berth/pods/<id>`).
    pub state_dir: PathBuf,
    /// Runtime files: the socket, the monitor's log (`/run/berth/pods/<id>`).
    pub run_dir: PathBuf,
    /// The OCI runtime's state root (`/run/berth/runtime`).
    pub runtime_root: PathBuf,
}

impl Config {
    /// The file in the run directory naming the monitor's cgroup.
    pub const CGROUP_FILE: &'static str = "monitor.cgroup";

    /// Parses `--pod-id ID --state-dir DIR --run-dir DIR --runtime-root DIR`.
    pub fn from_args(args: impl IntoIterator<Item = OsString>) -> Result<Self> {
        let (mut pod_id, mut state_dir, mut run_dir, mut runtime_root) = (None, None, None, None);
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let slot = match flag.to_str() {
                Some("--pod-id") => &mut pod_id,
                Some("--state-dir") => &mut state_dir,
                Some("--run-dir") => &mut run_dir,
                Some("--runtime-root") => &mut runtime_root,
                _ => {
                    return Err(MonitorError::Arg {
                        name: "flag",
                        reason: format!("unknown {flag:?}"),
                    })
                }
            };
            *slot = Some(it.next().ok_or_else(|| MonitorError::Arg {
                name: "flag",
                reason: format!("{flag:?} needs a value"),
            })?);
        }
        let need = |v: Option<OsString>, name: &'static str| {
            v.ok_or(MonitorError::Arg {
                name,
                reason: "is required".into(),
            })
        };
        let pod_id = need(pod_id, "--pod-id")?
            .into_string()
            .map_err(|_| MonitorError::Arg {
                name: "--pod-id",
                reason: "is not UTF-8".into(),
            })?;
        Ok(Self {
            pod_id,
            state_dir: need(state_dir, "--state-dir")?.into(),
            run_dir: need(run_dir, "--run-dir")?.into(),
            runtime_root: need(runtime_root, "--runtime-root")?.into(),
        })
    }

    /// The socket path.
    pub fn socket(&self) -> PathBuf {
        self.run_dir.join(SOCKET_NAME)
    }
}

/// The binary's main: returns the process exit code.
pub fn main() -> i32 {
    let cfg = match Config::from_args(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth-monitor: {e}");
            return 2;
        }
    };
    let (ready_r, ready_w) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("berth-monitor: {e}");
            return 1;
        }
    };
    let (cgroup, cgroup_note) = match own_cgroup(&cfg) {
        Ok(cg) => (cg, None),
        Err(e) => (None, Some(e)),
    };
    let cgroup_fd = cgroup.as_ref().and_then(CgroupManager::v2_dir_fd);
    let join = cgroup.as_ref().and_then(CgroupManager::self_join);
    let ready_r_fd = ready_r.as_raw_fd();
    let child = move || {
        // SAFETY: closes the child's copy of the parent's read end, which
        // nothing in the child owns.
        unsafe { libc::close(ready_r_fd) };
        let mut ready = File::from(ready_w);
        let note = join.as_ref().and_then(|j| j.join().err()).or(cgroup_note);
        match detach(&cfg) {
            Ok(mut monitor) => {
                if let Some(note) = note {
                    eprintln!("berth-monitor: staying in the spawner's cgroup: {note}");
                }
                // Startup code (the loader's relocations, argument parsing)
                // never runs again; container verbs give theirs back too.
                berth_runtime::pages::release_after_verbs(true);
                berth_runtime::pages::release_code_pages();
                let _ = ready.write_all(b"ok");
                drop(ready);
                match monitor.run() {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("berth-monitor: {e}");
                        1
                    }
                }
            }
            Err(e) => {
                let _ = write!(ready, "{e}");
                1
            }
        }
    };
    // Fork semantics: we are single-threaded (main, before any thread).
    let fd = cgroup_fd.as_ref().map(|f| f.as_raw_fd());
    if let Err(e) = clone::spawn(CloneFlags::empty(), fd, child) {
        eprintln!("berth-monitor: fork: {e}");
        return 1;
    }
    // Our write end went with the closure: EOF comes once the child has
    // reported, or is gone.
    let mut msg = String::new();
    let _ = File::from(ready_r).read_to_string(&mut msg);
    if msg == "ok" {
        0
    } else {
        eprintln!("berth-monitor: {msg}");
        1
    }
}

/// The cgroup named in `<run-dir>/monitor.cgroup`, created; `None` without
/// the file.
fn own_cgroup(cfg: &Config) -> std::result::Result<Option<CgroupManager>, String> {
    let file = cfg.run_dir.join(Config::CGROUP_FILE);
    let path = match std::fs::read_to_string(&file) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("read {}: {e}", file.display())),
    };
    let cgroup =
        CgroupManager::new(Some(path.trim()), "berth-monitors").map_err(|e| e.to_string())?;
    cgroup.create().map_err(|e| e.to_string())?;
    Ok(Some(cgroup))
}

/// Everything between the fork and the event loop.
fn detach(cfg: &Config) -> Result<Monitor> {
    // SAFETY: setsid and umask take no pointers.
    unsafe {
        libc::setsid();
        libc::umask(0o022);
    }
    std::env::set_current_dir("/").map_err(|e| MonitorError::io("chdir", "/", e))?;
    for dir in [&cfg.run_dir, &cfg.state_dir] {
        std::fs::create_dir_all(dir).map_err(|e| MonitorError::io("create", dir, e))?;
    }
    let log_path = cfg.run_dir.join(LOG_NAME);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| MonitorError::io("open", &log_path, e))?;
    let null = sys::dev_null()?;
    // SAFETY: dup2 onto our stdio of fds we hold; PR_SET_CHILD_SUBREAPER
    // takes an integer.
    let ok = unsafe {
        libc::dup2(null.as_raw_fd(), 0) >= 0
            && libc::dup2(log.as_raw_fd(), 1) >= 0
            && libc::dup2(log.as_raw_fd(), 2) >= 0
            && libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    };
    if !ok {
        return Err(MonitorError::last_os("stdio or subreaper setup"));
    }
    let socket = cfg.socket();
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        return Err(MonitorError::Arg {
            name: "--run-dir",
            reason: format!("a monitor already listens on {}", socket.display()),
        });
    }
    match std::fs::remove_file(&socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(MonitorError::io("remove stale", &socket, e))
        }
        _ => {}
    }
    let listener = UnixListener::bind(&socket).map_err(|e| MonitorError::io("bind", &socket, e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| MonitorError::io("set non-blocking", &socket, e))?;
    let monitor = Monitor::new(cfg.clone(), listener)?;
    eprintln!(
        "berth-monitor: pod {} monitor {} listening on {}",
        cfg.pod_id,
        std::process::id(),
        socket.display()
    );
    Ok(monitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn command_line() {
        let c = Config::from_args(args(
            "--pod-id p --state-dir /s --run-dir /r --runtime-root /rt",
        ))
        .unwrap();
        assert_eq!(c.pod_id, "p");
        assert_eq!(c.socket(), PathBuf::from("/r/monitor.sock"));
        assert!(Config::from_args(args("--pod-id p")).is_err());
        assert!(Config::from_args(args("--nope x")).is_err());
        assert!(Config::from_args(args("--pod-id")).is_err());
    }
}
