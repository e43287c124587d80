//! Streaming sessions on the loop's side: starting an `exec_stream` or an
//! `attach` on the connection that asked (its reply carries the fds), and
//! ending sessions with their last line (the exec's exit code, the
//! container's exit, or why the monitor dropped the client).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use serde::Serialize;

use super::{exec_stream, Monitor};
use crate::monitor::{
    error::{MonitorError, Result},
    protocol::{
        AttachReply, AttachRequest, ExecStreamReply, ExecStreamRequest, Response, SessionEnd,
    },
};

impl Monitor {
    /// Starts a streaming exec for connection `conn`; answers `req`.
    pub(super) fn start_exec_stream(&mut self, conn: u64, req: u64, r: &ExecStreamRequest) {
        let started = self
            .session_conn_ok(conn)
            .and_then(|()| self.find(&r.id))
            .and_then(|_| exec_stream::start(&self.root, r));
        let s = match started {
            Ok(s) => s,
            Err(e) => return self.respond(conn, req, Err(e)),
        };
        let reply = ExecStreamReply {
            pid: s.pid,
            fds: s.names,
        };
        // Sent or not, our copies of the caller's ends close here: a process
        // whose caller never got them sees EOF/EPIPE/SIGHUP and ends.
        // Tracked either way: the loop reaps it; no connection has key 0.
        let sent = self.reply_with_fds(conn, req, &reply, &s.fds);
        let conn = if sent { conn } else { 0 };
        self.stream_execs
            .push(exec_stream::StreamExec { pid: s.pid, conn });
    }

    /// Attaches connection `conn` to a running container; answers `req`.
    pub(super) fn start_attach(&mut self, conn: u64, req: u64, r: &AttachRequest) {
        let opened = self.session_conn_ok(conn).and_then(|()| {
            let i = self.find(&r.id)?;
            Ok((i, self.containers[i].open_attach(conn, r)?))
        });
        let (i, (attacher, fds, tty)) = match opened {
            Ok(o) => o,
            Err(e) => return self.respond(conn, req, Err(e)),
        };
        let reply = AttachReply {
            tty,
            fds: fds.names,
        };
        if self.reply_with_fds(conn, req, &reply, &fds.fds) {
            self.containers[i].attach.push(attacher);
        }
    }

    /// A connection that already carries a session takes no other.
    fn session_conn_ok(&self, conn: u64) -> Result<()> {
        match self.conns.iter().find(|c| c.id == conn) {
            Some(c) if c.session => Err(MonitorError::Arg {
                name: "op",
                reason: "this connection already carries a session; open another".into(),
            }),
            _ => Ok(()),
        }
    }

    /// Sends `result` as the reply to `req` with `fds` attached and makes the
    /// connection a session's. Whether the caller got it.
    fn reply_with_fds(
        &mut self,
        conn: u64,
        req: u64,
        result: &impl Serialize,
        fds: &[OwnedFd],
    ) -> bool {
        let line = serde_json::to_value(result).and_then(|v| {
            serde_json::to_vec(&Response {
                req,
                result: Some(v),
                error: None,
            })
        });
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                self.respond(conn, req, Err(MonitorError::json("session reply", e)));
                return false;
            }
        };
        let Some(c) = self.conns.iter_mut().find(|c| c.id == conn) else {
            return false;
        };
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        match c.send_line_with_fds(&line, &raw) {
            Ok(()) => {
                c.session = true;
                true
            }
            Err(e) => {
                let err = MonitorError::Sys {
                    op: "send the session's fds".into(),
                    source: e,
                };
                self.respond(conn, req, Err(err));
                false
            }
        }
    }

    /// Sends a session's last line; its connection then closes.
    pub(super) fn end_session(&mut self, conn: u64, end: &SessionEnd) {
        let Some(c) = self.conns.iter_mut().find(|c| c.id == conn) else {
            return;
        };
        match serde_json::to_vec(end) {
            Ok(line) => c.finish_session(&line),
            Err(e) => eprintln!("berth-monitor: serialize session end: {e}"),
        }
    }

    /// Ends the attach sessions container `i` has finished.
    pub(super) fn end_attach_sessions(&mut self, i: usize) {
        for (conn, end) in self.containers[i].attach.take_ended() {
            self.end_session(conn, &end);
        }
    }

    /// A streaming exec process was reaped: its session gets the exit code.
    /// Whether `pid` was one.
    pub(super) fn stream_exec_exited(&mut self, pid: i32, status: i32) -> bool {
        let Some(i) = self.stream_execs.iter().position(|s| s.pid == pid) else {
            return false;
        };
        let s = self.stream_execs.swap_remove(i);
        let end = SessionEnd {
            exit_code: Some(super::sys::decode_status(status).0),
            error: None,
        };
        self.end_session(s.conn, &end);
        true
    }

    /// Detaches the attach clients whose connection closed.
    pub(super) fn detach_closed(&mut self) {
        let closed: Vec<u64> = self
            .conns
            .iter()
            .filter(|c| c.session && c.closed)
            .map(|c| c.id)
            .collect();
        for c in &mut self.containers {
            for &conn in &closed {
                c.attach.detach(conn);
            }
        }
    }
}
