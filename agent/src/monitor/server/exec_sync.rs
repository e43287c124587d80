//! `exec_sync`: a process run in a container through the runtime's exec, its
//! stdout and stderr collected apart, killed at its deadline. The event loop
//! polls its pipes and replies once the monitor has reaped it.

use std::{
    os::fd::{AsRawFd, OwnedFd},
    time::{Duration, Instant},
};

use berth_runtime::StateRoot;

use super::{
    exec_spec,
    sys::{self, ReadOutcome},
};
use crate::monitor::{
    cri_log::Stream,
    error::Result,
    protocol::{ExecSyncRequest, ExecSyncResult},
};

/// Output kept per stream; the rest is read and dropped.
const MAX_OUTPUT: usize = 16 << 20;

/// A running exec_sync.
#[derive(Debug)]
pub struct ExecJob {
    /// The client connection waiting for the reply.
    pub conn: u64,
    /// The request number to answer.
    pub req: u64,
    /// The process's host pid.
    pub pid: i32,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    out: Vec<u8>,
    err: Vec<u8>,
    /// When to kill it.
    pub deadline: Option<Instant>,
    timed_out: bool,
    /// Its wait status, once reaped.
    pub status: Option<i32>,
}

/// Starts `r.args` in container `r.id` with the container's process as template.
pub fn start(root: &StateRoot, r: &ExecSyncRequest, conn: u64, req: u64) -> Result<ExecJob> {
    let null = sys::dev_null()?;
    let (out_r, out_w) = sys::pipe()?;
    let (err_r, err_w) = sys::pipe()?;
    let stdio = [null.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
    let execed = exec_spec::spawn(root, &r.id, &r.args, r.env.as_deref(), false, stdio)?;
    drop((null, out_w, err_w));
    sys::set_nonblocking(&out_r)?;
    sys::set_nonblocking(&err_r)?;
    Ok(ExecJob {
        conn,
        req,
        pid: execed.pid,
        stdout: Some(out_r),
        stderr: Some(err_r),
        out: Vec::new(),
        err: Vec::new(),
        deadline: (r.timeout_secs > 0)
            .then(|| Instant::now() + Duration::from_secs(r.timeout_secs)),
        timed_out: false,
        status: None,
    })
}

impl ExecJob {
    /// The pipes still open.
    pub fn pollable(&self) -> impl Iterator<Item = (Stream, i32)> + '_ {
        [
            (Stream::Stdout, self.stdout.as_ref()),
            (Stream::Stderr, self.stderr.as_ref()),
        ]
        .into_iter()
        .filter_map(|(s, fd)| Some((s, fd?.as_raw_fd())))
    }

    /// Reads what `stream` has now.
    pub fn pump(&mut self, stream: Stream, buf: &mut [u8]) {
        let (slot, keep) = match stream {
            Stream::Stdout => (&mut self.stdout, &mut self.out),
            Stream::Stderr => (&mut self.stderr, &mut self.err),
        };
        while let Some(fd) = slot.as_ref() {
            match sys::read(fd.as_raw_fd(), buf) {
                ReadOutcome::Data(n) => {
                    let room = MAX_OUTPUT.saturating_sub(keep.len()).min(n);
                    keep.extend_from_slice(&buf[..room]);
                }
                ReadOutcome::Empty => break,
                ReadOutcome::Closed => *slot = None,
            }
        }
    }

    /// Kills it if its deadline has passed.
    pub fn check_deadline(&mut self, now: Instant) {
        if self.status.is_none() && !self.timed_out && self.deadline.is_some_and(|d| d <= now) {
            self.timed_out = true;
            sys::kill_hard(self.pid);
        }
    }

    /// The reply, once reaped: drains the pipes first.
    pub fn finish(mut self, buf: &mut [u8], status: i32) -> ExecSyncResult {
        self.pump(Stream::Stdout, buf);
        self.pump(Stream::Stderr, buf);
        ExecSyncResult {
            exit_code: sys::decode_status(status).0,
            stdout: self.out,
            stderr: self.err,
            timed_out: self.timed_out,
        }
    }
}
