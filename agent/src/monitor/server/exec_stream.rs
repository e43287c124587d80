//! `exec_stream`: a process run in a container through the runtime's exec
//! (the container's namespaces, cgroup, user, capabilities, seccomp and
//! environment), with its stdio handed to the caller: a new pty whose slave
//! is its controlling terminal, or a pipe for each stream asked for (the
//! others are `/dev/null`). The monitor keeps none of its fds, only its pid:
//! it reaps it (whether the caller is still there or not) and sends the exit
//! code on the session's connection.

use std::os::fd::{AsRawFd, OwnedFd};

use berth_runtime::StateRoot;

use super::{exec_spec, sys};
use crate::monitor::{
    error::{MonitorError, Result},
    protocol::{ExecStreamRequest, SessionFd},
};

/// A running streaming exec.
#[derive(Debug)]
pub struct StreamExec {
    /// The process's host pid.
    pub pid: i32,
    /// The session's connection.
    pub conn: u64,
}

/// A started process and the caller's ends of its stdio.
#[derive(Debug)]
pub struct Started {
    /// Its host pid.
    pub pid: i32,
    /// The caller's fds, in the order of `names`.
    pub fds: Vec<OwnedFd>,
    /// What each fd is.
    pub names: Vec<SessionFd>,
}

/// Starts `r.args` in container `r.id`.
pub fn start(root: &StateRoot, r: &ExecStreamRequest) -> Result<Started> {
    if r.args.is_empty() {
        return Err(MonitorError::Arg {
            name: "args",
            reason: "exec_stream needs a command".into(),
        });
    }
    let null = sys::dev_null()?;
    let mut child: [Option<OwnedFd>; 3] = [None, None, None];
    let (mut fds, mut names) = (Vec::new(), Vec::new());
    if !r.tty {
        let wanted = [
            (r.stdin, SessionFd::Stdin),
            (r.stdout, SessionFd::Stdout),
            (r.stderr, SessionFd::Stderr),
        ];
        for (i, (want, name)) in wanted.into_iter().enumerate() {
            if !want {
                continue;
            }
            let (rd, wr) = sys::pipe()?;
            let (theirs, ours) = if name == SessionFd::Stdin {
                (rd, wr)
            } else {
                (wr, rd)
            };
            child[i] = Some(theirs);
            fds.push(ours);
            names.push(name);
        }
    }
    let raw = |i: usize| child[i].as_ref().unwrap_or(&null).as_raw_fd();
    let stdio = [raw(0), raw(1), raw(2)];
    let execed = exec_spec::spawn(root, &r.id, &r.args, r.env.as_deref(), r.tty, stdio)?;
    if r.tty {
        let Some(master) = execed.pty_master else {
            sys::kill_hard(execed.pid); // reaped by the loop as an unknown child
            return Err(MonitorError::Sys {
                op: format!("exec in {}: no pty master came back", r.id),
                source: std::io::ErrorKind::NotFound.into(),
            });
        };
        fds.push(master);
        names.push(SessionFd::Pty);
    }
    Ok(Started {
        pid: execed.pid,
        fds,
        names,
    })
}
