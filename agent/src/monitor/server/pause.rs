//! The pod's pause process: a fork of the monitor (no exec, no rootfs) in the
//! pod's new IPC/UTS/pid namespaces that joins the pinned network namespace,
//! sets the hostname and the namespaced sysctls, then sleeps in `sigwait`,
//! reaping zombies as pid 1 of the pod's pid namespace. The pod cgroup is
//! created here; the pause process lives in its leaf `<pod cgroup>/pause`
//! (on cgroup v2 a cgroup holding processes cannot have children with
//! controllers, and the containers' cgroups go below the pod cgroup too).

use std::{
    fs::File,
    io::Read,
    os::fd::{AsRawFd, RawFd},
    path::PathBuf,
};

use berth_runtime::{
    cgroups::{CgroupManager, SelfJoin},
    process::clone,
};
use nix::sched::CloneFlags;

use super::{signals, sys};
use crate::monitor::{
    error::{MonitorError, Result},
    protocol::{PauseConfig, PidMode},
};

/// The pause process's cgroup, below the pod cgroup.
const PAUSE_LEAF: &str = "pause";

/// A running pause process.
#[derive(Debug)]
pub struct Pause {
    /// Its host pid.
    pub pid: i32,
    /// The pod cgroup (the pause process is in its `pause` leaf).
    pub cgroup: CgroupManager,
    /// Not yet reaped: its pid is still ours to signal.
    pub running: bool,
}

/// Creates the pod cgroup and starts the pause process in it.
pub fn start(cfg: &PauseConfig, pod_id: &str) -> Result<Pause> {
    let cgroup = CgroupManager::new(Some(&cfg.cgroup_path), pod_id)?;
    let leaf = CgroupManager::new(Some(&format!("{}/{PAUSE_LEAF}", cgroup.path())), pod_id)?;
    let sysctls = sysctl_files(cfg)?;
    cgroup.create()?;
    match leaf
        .create()
        .map_err(MonitorError::from)
        .and_then(|()| spawn(cfg, &leaf, &sysctls))
    {
        Ok(pid) => Ok(Pause {
            pid,
            cgroup,
            running: true,
        }),
        Err(e) => {
            if let Err(d) = cgroup.destroy() {
                eprintln!("berth-monitor: removing pod cgroup after a failed start: {d}");
            }
            Err(e)
        }
    }
}

/// The `/proc/sys` files for the pod's sysctls; refuses ones that are not
/// namespaced by a namespace the pod owns (they would change the host).
fn sysctl_files(cfg: &PauseConfig) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::with_capacity(cfg.sysctls.len());
    for (key, value) in &cfg.sysctls {
        let ipc = key.starts_with("kernel.shm")
            || key.starts_with("kernel.msg")
            || key == "kernel.sem"
            || key.starts_with("fs.mqueue.");
        let net = key.starts_with("net.");
        let allowed = (ipc && !cfg.ipc_host) || (net && cfg.netns.is_some());
        if !allowed || key.contains('/') || key.contains("..") {
            return Err(MonitorError::Pause(format!(
                "sysctl {key:?} is not namespaced in this pod"
            )));
        }
        out.push((
            PathBuf::from("/proc/sys").join(key.replace('.', "/")),
            value.clone(),
        ));
    }
    Ok(out)
}

fn spawn(cfg: &PauseConfig, cgroup: &CgroupManager, sysctls: &[(PathBuf, String)]) -> Result<i32> {
    let netns = cfg
        .netns
        .as_ref()
        .map(|p| File::open(p).map_err(|e| MonitorError::io("open netns", p, e)))
        .transpose()?;
    let mut flags = CloneFlags::empty();
    if !cfg.ipc_host {
        flags |= CloneFlags::CLONE_NEWIPC;
    }
    if !cfg.uts_host {
        flags |= CloneFlags::CLONE_NEWUTS;
    }
    if cfg.pid == PidMode::Pod {
        flags |= CloneFlags::CLONE_NEWPID;
    }
    let hostname = (!cfg.uts_host && !cfg.hostname.is_empty()).then_some(cfg.hostname.as_str());
    let (report_r, report_w) = sys::pipe()?;
    // v2: cloned into the cgroup; v1: the child enters it itself (no RCU
    // grace period under cgroup_mutex, see `berth_runtime::cgroups::SelfJoin`).
    let cgroup_fd = cgroup.v2_dir_fd();
    let join = cgroup.self_join();
    let report_fd = report_w.as_raw_fd();
    let pid = clone::spawn(flags, cgroup_fd.as_ref().map(|f| f.as_raw_fd()), || {
        child(join.as_ref(), netns.as_ref(), hostname, sysctls, report_fd)
    })?;
    drop(report_w);
    let fail = |msg: String| {
        sys::kill_and_reap(pid);
        Err(MonitorError::Pause(msg))
    };
    if cgroup_fd.is_none() && join.is_none() {
        if let Err(e) = cgroup.add_process(pid) {
            return fail(e.to_string());
        }
    }
    let mut msg = String::new();
    if let Err(e) = File::from(report_r).read_to_string(&mut msg) {
        return fail(format!("reading its setup report: {e}"));
    }
    if !msg.is_empty() {
        return fail(msg);
    }
    Ok(pid)
}

/// The pause process, after the clone.
fn child(
    join: Option<&SelfJoin>,
    netns: Option<&File>,
    hostname: Option<&str>,
    sysctls: &[(PathBuf, String)],
    report: RawFd,
) -> i32 {
    signals::reset_in_child();
    let waited = wait_set();
    // SAFETY: blocks the signals sigwait takes, on a set we own.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &waited, std::ptr::null_mut()) };
    let msg = match join
        .map_or(Ok(()), SelfJoin::join)
        .and_then(|()| setup(netns, hostname, sysctls))
    {
        Ok(()) => String::new(),
        Err(e) => e,
    };
    // SAFETY: write our report to the pipe, then close every inherited fd
    // but stdio (the monitor's sockets and pipes must not stay open here).
    unsafe {
        libc::write(report, msg.as_ptr().cast(), msg.len());
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        libc::prctl(libc::PR_SET_NAME, c"berth-pause".as_ptr(), 0, 0, 0);
    }
    if !msg.is_empty() {
        return 1;
    }
    // Nothing of the monitor's code runs here any more.
    berth_runtime::pages::release_code_pages();
    reap_forever(&waited)
}

fn setup(
    netns: Option<&File>,
    hostname: Option<&str>,
    sysctls: &[(PathBuf, String)],
) -> Result<(), String> {
    if let Some(ns) = netns {
        // SAFETY: setns on an fd we hold open.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(format!("setns netns: {}", std::io::Error::last_os_error()));
        }
    }
    if let Some(h) = hostname {
        nix::unistd::sethostname(h).map_err(|e| format!("sethostname {h:?}: {e}"))?;
    }
    for (path, value) in sysctls {
        std::fs::write(path, value.as_bytes())
            .map_err(|e| format!("sysctl {}: {e}", path.display()))?;
    }
    Ok(())
}

fn wait_set() -> libc::sigset_t {
    // SAFETY: an empty set filled by sigemptyset/sigaddset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Sleeps; reaps every zombie on SIGCHLD; leaves on SIGTERM or SIGINT.
fn reap_forever(set: &libc::sigset_t) -> i32 {
    loop {
        let mut sig = 0;
        // SAFETY: sigwait on a set of blocked signals.
        if unsafe { libc::sigwait(set, &mut sig) } != 0 {
            continue;
        }
        if sig != libc::SIGCHLD {
            return 0;
        }
        // SAFETY: reaping any child, without status.
        while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
    }
}
