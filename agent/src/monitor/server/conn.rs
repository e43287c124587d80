//! One client connection: a non-blocking unix stream with a line-assembling
//! read buffer and a write buffer drained as the socket accepts data. A
//! connection that carries a streaming session gets its reply with fds
//! attached, then no events, and is closed once its last line is written.

use std::os::{
    fd::{AsRawFd, RawFd},
    unix::net::UnixStream,
};

use super::sys::{self, ReadOutcome};

/// The longest request line accepted.
const MAX_REQUEST: usize = 1 << 20;
/// A client that lets this much output pile up is dropped.
const MAX_PENDING_OUTPUT: usize = 64 << 20;

/// A connected client.
#[derive(Debug)]
pub struct Conn {
    /// Connection number (exec_sync replies find their client by it).
    pub id: u64,
    stream: UnixStream,
    /// Bytes read, not yet a full line.
    pub rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    /// Closed by the peer or dropped for an error.
    pub closed: bool,
    /// Carries an exec or attach session: no events, no more requests.
    pub session: bool,
    /// To be closed once its output is written.
    pub closing: bool,
}

impl Conn {
    /// Wraps an accepted stream (made non-blocking).
    pub fn new(id: u64, stream: UnixStream) -> std::io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(Self {
            id,
            stream,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            closed: false,
            session: false,
            closing: false,
        })
    }

    /// The socket fd.
    pub fn fd(&self) -> i32 {
        self.stream.as_raw_fd()
    }

    /// Whether output waits for the socket.
    pub fn wants_write(&self) -> bool {
        !self.wbuf.is_empty()
    }

    /// Reads what is available into `rbuf`.
    pub fn read_available(&mut self, buf: &mut [u8]) {
        loop {
            match sys::read(self.fd(), buf) {
                ReadOutcome::Data(n) => self.rbuf.extend_from_slice(&buf[..n]),
                ReadOutcome::Empty => break,
                ReadOutcome::Closed => {
                    self.closed = true;
                    break;
                }
            }
        }
        if self.rbuf.len() > MAX_REQUEST && !self.rbuf.contains(&b'\n') {
            eprintln!("berth-monitor: client {} sent an over-long line", self.id);
            self.closed = true;
        }
    }

    /// Queues one line (a newline is added) and writes what the socket takes.
    pub fn send_line(&mut self, line: &[u8]) {
        if self.closed {
            return;
        }
        self.wbuf.extend_from_slice(line);
        self.wbuf.push(b'\n');
        if self.wbuf.len() > MAX_PENDING_OUTPUT {
            eprintln!("berth-monitor: client {} does not read; dropped", self.id);
            self.closed = true;
            return;
        }
        self.flush();
    }

    /// Sends one line (a newline is added) with `fds` attached to its first
    /// byte. Fails, sending nothing, when earlier output still waits.
    pub fn send_line_with_fds(&mut self, line: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
        self.flush();
        if self.closed {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        if !self.wbuf.is_empty() {
            return Err(std::io::Error::other(
                "the connection has unsent output; a session needs a connection of its own",
            ));
        }
        let mut data = Vec::with_capacity(line.len() + 1);
        data.extend_from_slice(line);
        data.push(b'\n');
        let n = sys::send_with_fds(self.fd(), &data, fds)?;
        self.wbuf.extend_from_slice(&data[n..]);
        Ok(())
    }

    /// Sends a session's last line; the connection closes once it is written.
    pub fn finish_session(&mut self, line: &[u8]) {
        self.send_line(line);
        self.closing = true;
    }

    /// Whether the connection can go: closed, or closing with nothing left to write.
    pub fn done(&self) -> bool {
        self.closed || (self.closing && self.wbuf.is_empty())
    }

    /// Writes queued output until the socket would block.
    pub fn flush(&mut self) {
        let mut sent = 0;
        while sent < self.wbuf.len() {
            match sys::send(self.fd(), &self.wbuf[sent..]) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(_) => {
                    self.closed = true;
                    break;
                }
            }
        }
        self.wbuf.drain(..sent);
    }

    /// Writes all queued output, blocking (before the monitor exits).
    pub fn flush_blocking(&mut self) {
        if self.stream.set_nonblocking(false).is_ok() {
            self.flush();
        }
    }
}
