//! Attach sessions on one container. Its output is fanned out to every
//! attached client's pipes, never blocking the loop or the log: a client
//! whose pipe is full is dropped (its session ends with an error). Its stdin
//! is fed from the attached clients' pipes through a small buffer (the
//! container may read slowly); with `stdin_once` the container's stdin is
//! closed when the first attach that had stdin ends, after what it sent has
//! been written.
//!
//! The container's stdin is the write end of its stdin pipe, or for a tty
//! container a dup of its pty master: closing it then only stops forwarding
//! (a pty cannot be half-closed), as other runtimes do.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::sys::{self, ReadOutcome, WriteOutcome};
use crate::monitor::{
    cri_log::Stream,
    error::Result,
    protocol::{SessionEnd, SessionFd},
};

/// Pipe buffer asked for each attach output pipe, so that a client that
/// reads a burst a little late is not dropped.
const CLIENT_PIPE_SIZE: i32 = 1 << 20;
/// Stdin bytes held for a container that does not read them yet; clients'
/// pipes are not read while this is full.
const STDIN_BUF: usize = 64 * 1024;

/// One attached client: the monitor's ends of its pipes.
#[derive(Debug)]
pub struct Attacher {
    /// The session's connection.
    pub conn: u64,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    /// Read end of the client's stdin pipe.
    stdin: Option<OwnedFd>,
}

/// The client's ends of a new attach, to pass in its reply.
#[derive(Debug)]
pub struct ClientFds {
    /// The fds, in the order of `names`.
    pub fds: Vec<OwnedFd>,
    /// What each fd is.
    pub names: Vec<SessionFd>,
}

impl ClientFds {
    fn push(&mut self, name: SessionFd, fd: OwnedFd) {
        self.names.push(name);
        self.fds.push(fd);
    }
}

/// What the loop polls for a container's attach sessions.
#[derive(Debug, Clone, Copy)]
pub enum AttachPoll {
    /// A client's stdin pipe has data (connection id).
    ClientStdin(u64),
    /// The container's stdin takes data.
    Stdin,
}

/// Every attach session of one container and its stdin.
#[derive(Debug)]
pub struct Attachments {
    clients: Vec<Attacher>,
    /// The container's stdin; `None` when it has none or it was closed.
    stdin: Option<OwnedFd>,
    stdin_once: bool,
    /// Read from clients, not yet taken by the container.
    pending: Vec<u8>,
    /// `stdin_once` fired: close the stdin once `pending` is written.
    closing: bool,
    /// Sessions ended by the monitor, for their last line.
    ended: Vec<(u64, SessionEnd)>,
}

impl Attachments {
    /// Attachments over the container's stdin (non-blocking), if it has one.
    pub fn new(stdin: Option<OwnedFd>, stdin_once: bool) -> Self {
        Self {
            clients: Vec::new(),
            stdin,
            stdin_once,
            pending: Vec::new(),
            closing: false,
            ended: Vec::new(),
        }
    }

    /// Pipes for a new client: stdin only if the container's stdin is still
    /// open, each output only if the container has it. `resize` (a tty
    /// container's master dup) is passed on as is. Not attached until
    /// [`Attachments::push`].
    pub fn open(
        &self,
        conn: u64,
        want: [bool; 3],
        has_stderr: bool,
        resize: Option<OwnedFd>,
    ) -> Result<(Attacher, ClientFds)> {
        let [want_in, want_out, want_err] = want;
        let mut client = ClientFds {
            fds: Vec::new(),
            names: Vec::new(),
        };
        let mut a = Attacher {
            conn,
            stdout: None,
            stderr: None,
            stdin: None,
        };
        if want_in && self.stdin.is_some() && !self.closing {
            let (rd, wr) = sys::pipe()?;
            sys::set_nonblocking(&rd)?;
            a.stdin = Some(rd);
            client.push(SessionFd::Stdin, wr);
        }
        for (wanted, name) in [
            (want_out, SessionFd::Stdout),
            (want_err && has_stderr, SessionFd::Stderr),
        ] {
            if !wanted {
                continue;
            }
            let (rd, wr) = sys::pipe()?;
            sys::set_nonblocking(&wr)?;
            sys::set_pipe_size(&wr, CLIENT_PIPE_SIZE);
            match name {
                SessionFd::Stdout => a.stdout = Some(wr),
                _ => a.stderr = Some(wr),
            }
            client.push(name, rd);
        }
        if let Some(fd) = resize {
            client.push(SessionFd::Resize, fd);
        }
        Ok((a, client))
    }

    /// Attaches a client whose reply went out.
    pub fn push(&mut self, a: Attacher) {
        self.clients.push(a);
    }

    /// The fds to poll now and what for.
    pub fn pollable(&self) -> Vec<(AttachPoll, RawFd, i16)> {
        let Some(stdin) = &self.stdin else {
            return Vec::new();
        };
        if !self.pending.is_empty() {
            return vec![(AttachPoll::Stdin, stdin.as_raw_fd(), libc::POLLOUT)];
        }
        self.clients
            .iter()
            .filter_map(|c| {
                let fd = c.stdin.as_ref()?.as_raw_fd();
                Some((AttachPoll::ClientStdin(c.conn), fd, libc::POLLIN))
            })
            .collect()
    }

    /// Reads what client `conn` sent for stdin (up to the buffer's room) and
    /// passes it on.
    pub fn read_client_stdin(&mut self, conn: u64, buf: &mut [u8]) {
        let Some(c) = self.clients.iter_mut().find(|c| c.conn == conn) else {
            return;
        };
        let Some(fd) = c.stdin.as_ref() else { return };
        let room = STDIN_BUF.saturating_sub(self.pending.len()).min(buf.len());
        if room == 0 {
            return;
        }
        match sys::read(fd.as_raw_fd(), &mut buf[..room]) {
            ReadOutcome::Data(n) => self.pending.extend_from_slice(&buf[..n]),
            ReadOutcome::Empty => return,
            ReadOutcome::Closed => {
                c.stdin = None;
                self.stdin_ended();
            }
        }
        self.write_stdin();
    }

    /// Writes buffered stdin to the container; closes its stdin when asked
    /// to and everything is written, or when the container closed its end.
    pub fn write_stdin(&mut self) {
        let Some(fd) = &self.stdin else {
            self.pending.clear();
            return;
        };
        let mut sent = 0;
        let mut gone = false;
        while sent < self.pending.len() {
            match sys::write(fd.as_raw_fd(), &self.pending[sent..]) {
                WriteOutcome::Wrote(0) | WriteOutcome::Full => break,
                WriteOutcome::Wrote(n) => sent += n,
                WriteOutcome::Closed => {
                    gone = true;
                    break;
                }
            }
        }
        self.pending.drain(..sent);
        if gone || (self.closing && self.pending.is_empty()) {
            self.close_stdin();
        }
    }

    /// The container's stdin is closed for good: later attaches get none.
    fn close_stdin(&mut self) {
        self.stdin = None;
        self.pending = Vec::new();
        for c in &mut self.clients {
            c.stdin = None;
        }
    }

    /// An attach that had stdin ended (its stdin reached EOF, or the
    /// session went): with `stdin_once`, the container's stdin closes.
    fn stdin_ended(&mut self) {
        if self.stdin_once && self.stdin.is_some() {
            self.closing = true;
            if self.pending.is_empty() {
                self.close_stdin();
            }
        }
    }

    /// Copies output read from the container's `stream` to every client that
    /// asked for it. A full pipe drops its client; a closed one stops that
    /// stream for it.
    pub fn fan_out(&mut self, stream: Stream, data: &[u8]) {
        let mut slow = Vec::new();
        for c in &mut self.clients {
            let slot = match stream {
                Stream::Stdout => &mut c.stdout,
                Stream::Stderr => &mut c.stderr,
            };
            let Some(fd) = slot.as_ref() else { continue };
            match sys::write_all(fd.as_raw_fd(), data) {
                WriteOutcome::Wrote(_) => {}
                WriteOutcome::Full => slow.push(c.conn),
                WriteOutcome::Closed => *slot = None,
            }
        }
        for conn in slow {
            self.drop_client(
                conn,
                "the attach client did not read the container's output fast enough; dropped",
            );
        }
    }

    /// The container closed `stream`: its clients see EOF on it.
    pub fn stream_closed(&mut self, stream: Stream) {
        for c in &mut self.clients {
            match stream {
                Stream::Stdout => c.stdout = None,
                Stream::Stderr => c.stderr = None,
            }
        }
    }

    /// Ends client `conn`'s session from the monitor's side.
    fn drop_client(&mut self, conn: u64, why: &str) {
        if self.detach(conn) {
            self.ended.push((
                conn,
                SessionEnd {
                    exit_code: None,
                    error: Some(why.into()),
                },
            ));
        }
    }

    /// Forgets client `conn` (its connection closed); whether it was attached.
    pub fn detach(&mut self, conn: u64) -> bool {
        let Some(i) = self.clients.iter().position(|c| c.conn == conn) else {
            return false;
        };
        let c = self.clients.swap_remove(i);
        if c.stdin.is_some() {
            self.stdin_ended();
        }
        true
    }

    /// The container exited with `exit_code`, its output drained: every
    /// session ends (their pipes close) and the stdin is closed.
    pub fn end_all(&mut self, exit_code: i32) {
        for c in self.clients.drain(..) {
            self.ended.push((
                c.conn,
                SessionEnd {
                    exit_code: Some(exit_code),
                    error: None,
                },
            ));
        }
        self.close_stdin();
    }

    /// The sessions ended since the last call, for their last lines.
    pub fn take_ended(&mut self) -> Vec<(u64, SessionEnd)> {
        std::mem::take(&mut self.ended)
    }
}
