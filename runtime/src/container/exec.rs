//! `exec`: a new process in a running container. It joins the container's
//! namespaces (only those that differ from ours: each setns costs), its cgroup
//! at clone time on v2, and runs with the given process spec.

use std::{
    fs::File,
    os::fd::{AsRawFd, OwnedFd, RawFd},
    path::PathBuf,
};

use nix::sched::CloneFlags;
use oci_spec::runtime::Process;

use crate::{
    bundle,
    cgroups::CgroupManager,
    console,
    error::{Error, Result},
    namespaces,
    process::{clone, joiner},
    seccomp,
    state::{StateRoot, Status},
    sync::{self, Msg},
};

use super::{reap, write_pid_file, PidNsForChildren};

/// runc's `exec` options.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// The process to run.
    pub process: Process,
    /// Where to write its pid.
    pub pid_file: Option<PathBuf>,
    /// Where to send the pty master when the process has a terminal.
    pub console_socket: Option<PathBuf>,
    /// Extra fds passed on.
    pub preserve_fds: u32,
    /// Fds to become the process's stdin, stdout and stderr (default: ours).
    pub stdio: Option<[RawFd; 3]>,
}

/// A started exec process; the caller is its parent and reaps it.
#[derive(Debug)]
pub struct Execed {
    /// Host pid.
    pub pid: i32,
    /// The pty master, when it has a terminal and no console socket was given.
    pub pty_master: Option<OwnedFd>,
}

/// Runs `opts.process` in container `id`. Single-threaded callers only.
pub fn exec(root: &StateRoot, id: &str, opts: &ExecOptions) -> Result<Execed> {
    super::verb(exec_inner(root, id, opts))
}

fn exec_inner(root: &StateRoot, id: &str, opts: &ExecOptions) -> Result<Execed> {
    bundle::check_process(&opts.process)?;
    let st = root.load(id)?;
    let status = st.status(root);
    if !matches!(status, Status::Running | Status::Created) {
        return Err(Error::WrongState {
            id: id.into(),
            status: status.to_string(),
            op: "exec",
        });
    }
    let init = st.pid;
    let mut joins = Vec::new();
    for flag in namespaces::JOIN_ORDER {
        if !namespaces::same_as_self(init, flag) {
            let p = format!("/proc/{init}/ns/{}", namespaces::proc_name(flag));
            joins.push((flag, File::open(&p).map_err(|e| Error::io("open", p, e))?));
        }
    }
    let in_user_ns = joins.iter().any(|(f, _)| *f == CloneFlags::CLONE_NEWUSER);
    let cgroup = CgroupManager::new(Some(&st.cgroup_path), id)?;
    let seccomp = st
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(seccomp::compile)
        .transpose()?;
    let (parent, child) = sync::pair()?;
    let cgroup_fd = cgroup.v2_dir_fd();
    // The child joins before it enters the container's (user) namespaces.
    let cgroup_join = cgroup.self_join();
    let parent_moves = cgroup_fd.is_none() && cgroup_join.is_none();
    let pid = {
        let _pidns = if namespaces::same_as_self(init, CloneFlags::CLONE_NEWPID) {
            None
        } else {
            Some(PidNsForChildren::enter(&PathBuf::from(format!(
                "/proc/{init}/ns/pid"
            )))?)
        };
        let args = joiner::JoinArgs {
            process: &opts.process,
            joins,
            seccomp,
            cgroup_join,
            preserve_fds: opts.preserve_fds,
            stdio: opts.stdio,
            in_user_ns,
            sync: child,
        };
        clone::spawn(
            CloneFlags::empty(),
            cgroup_fd.as_ref().map(|f| f.as_raw_fd()),
            move || joiner::run(args),
        )?
    };
    match finish(&parent, &cgroup, parent_moves, pid, opts) {
        Ok(pty_master) => Ok(Execed { pid, pty_master }),
        Err(e) => {
            // SAFETY: kill and reap our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reap(pid);
            Err(e)
        }
    }
}

fn finish(
    parent: &sync::SyncSocket,
    cgroup: &CgroupManager,
    add_to_cgroup: bool,
    pid: i32,
    opts: &ExecOptions,
) -> Result<Option<OwnedFd>> {
    if add_to_cgroup {
        cgroup.add_process(pid)?;
    }
    parent.send(&Msg::Go(Vec::new()))?;
    let mut pty_master = None;
    // The child's end is close-on-exec: EOF means execve succeeded.
    loop {
        match parent.recv()? {
            None => break,
            Some((Msg::PtyMaster, Some(fd))) => {
                pty_master = console::route_master(fd, opts.console_socket.as_deref())?
            }
            Some((Msg::Failed(m), _)) => return Err(Error::Init(m)),
            Some((m, _)) => return Err(Error::Init(format!("unexpected {m:?} during exec"))),
        }
    }
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, pid)?;
    }
    Ok(pty_master)
}
