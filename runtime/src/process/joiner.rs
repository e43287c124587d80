//! The child side of `exec`: joins every namespace of a running container
//! (user first, mount last), takes the spec's process settings and execs. The
//! parent put it in the container's pid namespace and, on cgroup v2, its
//! cgroup at clone time; on v1 it enters the cgroup itself, first thing.

use std::{fs::File, os::fd::AsRawFd, path::PathBuf};

use nix::sched::CloneFlags;
use oci_spec::runtime::Process;

use crate::{
    cgroups::SelfJoin,
    console,
    error::{Error, Result},
    namespaces,
    process::{exec::Execve, finish::Finish, init::env_with_home, rlimits},
    seccomp,
    sync::{Msg, SyncSocket},
};

/// What the exec child needs, prepared by the parent before the clone.
pub struct JoinArgs<'a> {
    /// The process to run.
    pub process: &'a Process,
    /// The container's namespaces to enter (those that differ from ours).
    pub joins: Vec<(CloneFlags, File)>,
    /// The container's seccomp filter.
    pub seccomp: Option<seccomp::Program>,
    /// The fds 3..3+N that stay open.
    pub preserve_fds: u32,
    /// Fds to install as stdin, stdout and stderr.
    pub stdio: Option<[std::os::fd::RawFd; 3]>,
    /// On cgroup v1: the child enters the container's cgroup itself.
    pub cgroup_join: Option<SelfJoin>,
    /// Whether the container has its own user namespace.
    pub in_user_ns: bool,
    /// The child's end of the sync channel.
    pub sync: SyncSocket,
}

/// Runs the exec child; returns an exit code only when it failed.
pub fn run(a: JoinArgs<'_>) -> i32 {
    let err = match prepare(&a) {
        Ok(execve) => Finish {
            process: a.process,
            seccomp: a.seccomp.as_ref(),
            preserve_fds: a.preserve_fds,
            setgroups_allowed: !a.in_user_ns,
            execve: &execve,
        }
        .exec(),
        Err(e) => e,
    };
    let _ = a.sync.send(&Msg::Failed(err.to_string()));
    127
}

fn prepare(a: &JoinArgs<'_>) -> Result<Execve> {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    a.sync.expect(&Msg::Go(vec![]), "go")?;
    if let Some(j) = &a.cgroup_join {
        j.join().map_err(Error::Init)?;
    }
    if let Some(fds) = a.stdio {
        super::install_stdio(fds)?;
    }
    for (flag, file) in &a.joins {
        namespaces::setns(file, *flag, &PathBuf::from(namespaces::proc_name(*flag)))?;
    }
    let p = a.process;
    if p.terminal().unwrap_or(false) {
        let (master, slave) = console::open_pty(&PathBuf::from("/dev/pts/ptmx"))
            .or_else(|_| console::open_pty(&PathBuf::from("/dev/ptmx")))?;
        if let Some(b) = p.console_size() {
            console::set_size(master.as_raw_fd(), b.height() as u16, b.width() as u16)?;
        }
        a.sync
            .send_with_fd(&Msg::PtyMaster, Some(master.as_raw_fd()))?;
        console::make_controlling(&slave)?;
    }
    let cwd = p.cwd();
    std::env::set_current_dir(cwd)
        .map_err(|e| Error::spec("process.cwd", format!("{}: {e}", cwd.display())))?;
    if let Some(r) = p.rlimits() {
        rlimits::apply(r)?;
    }
    if let Some(adj) = p.oom_score_adj() {
        rlimits::apply_oom_score_adj(adj)?;
    }
    let env = env_with_home(p.env().clone().unwrap_or_default(), p.user().uid());
    Execve::prepare(&p.args().clone().unwrap_or_default(), &env)
}
