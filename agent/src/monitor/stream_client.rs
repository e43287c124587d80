//! berthd's side of streaming sessions (`exec -it`, `attach`): each session
//! is a connection of its own to `monitor.sock`. One request goes out; its
//! reply brings the session's fds (`SCM_RIGHTS`), so berthd pumps bytes
//! straight to and from the process and the monitor does no framing. The
//! connection then waits for the session's last line: the exec's exit code,
//! or the attached container's exit. Dropping a session closes every fd it
//! holds and its connection (which ends an attach); no task is left behind.

use std::{
    io::IoSliceMut,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    path::{Path, PathBuf},
};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use serde::de::DeserializeOwned;
use tokio::{
    io::{AsyncWriteExt, Interest},
    net::UnixStream,
};

pub use super::protocol::{AttachRequest, ExecStreamRequest};
pub use super::stream_io::{PipeReader, PipeWriter, Pty, PtyResizer};
use super::{
    error::{MonitorError, Result},
    protocol::{
        AttachReply, ExecStreamReply, Request, RequestEnvelope, Response, SessionEnd, SessionFd,
    },
    stream_io::ResizeFd,
    SOCKET_NAME,
};

/// The most fds one reply carries (with room to spare: a truncated control
/// message would lose fds).
const MAX_FDS: usize = 8;
/// The longest line accepted from the monitor.
const MAX_LINE: usize = 1 << 20;

/// A session's (stdin, stdout, stderr) pipes, each present when asked for.
pub type SessionPipes = (Option<PipeWriter>, Option<PipeReader>, Option<PipeReader>);

/// A streaming exec: the process's stdio and, later, its exit code.
#[derive(Debug)]
pub struct ExecSession {
    /// The process's host pid.
    pub pid: i32,
    /// Its stdin (when asked for, without tty).
    pub stdin: Option<PipeWriter>,
    /// Its stdout (when asked for, without tty).
    pub stdout: Option<PipeReader>,
    /// Its stderr (when asked for, without tty).
    pub stderr: Option<PipeReader>,
    /// Its terminal (with tty): input, output and resize.
    pub pty: Option<Pty>,
    conn: SessionConn,
    exit_code: Option<i32>,
}

impl ExecSession {
    /// Takes the pipes (none with a pty).
    pub fn take_pipes(&mut self) -> SessionPipes {
        (self.stdin.take(), self.stdout.take(), self.stderr.take())
    }

    /// Waits until the monitor has reaped the process; its exit code (128 +
    /// signal when killed by a signal). Cancel-safe; again after it returned,
    /// the same code.
    pub async fn wait(&mut self) -> Result<i32> {
        if let Some(code) = self.exit_code {
            return Ok(code);
        }
        let end = self.conn.end().await?;
        let code = end.exit_code.ok_or_else(|| {
            MonitorError::Remote(
                end.error
                    .unwrap_or_else(|| "exec ended without a code".into()),
            )
        })?;
        self.exit_code = Some(code);
        Ok(code)
    }
}

/// Runs `req.args` in container `req.id` of the pod whose monitor listens
/// in `run_dir`, with its stdio handed to us. The process keeps running if
/// the session is dropped (it then reads EOF, gets EPIPE or SIGHUP); the
/// monitor reaps it.
pub async fn exec_stream(run_dir: &Path, req: &ExecStreamRequest) -> Result<ExecSession> {
    let mut conn = SessionConn::connect(run_dir).await?;
    let (reply, fds): (ExecStreamReply, _) = conn.request(Request::ExecStream(req.clone())).await?;
    let mut s = ExecSession {
        pid: reply.pid,
        stdin: None,
        stdout: None,
        stderr: None,
        pty: None,
        conn,
        exit_code: None,
    };
    for (name, fd) in pair_fds(&reply.fds, fds, &s.conn.socket)? {
        let wrap = |e| MonitorError::io("register exec fd from", &s.conn.socket, e);
        match name {
            SessionFd::Stdin => s.stdin = Some(PipeWriter::new(fd).map_err(wrap)?),
            SessionFd::Stdout => s.stdout = Some(PipeReader::new(fd).map_err(wrap)?),
            SessionFd::Stderr => s.stderr = Some(PipeReader::new(fd).map_err(wrap)?),
            SessionFd::Pty => s.pty = Some(Pty::new(fd).map_err(wrap)?),
            SessionFd::Resize => return Err(unexpected_fd(name, "exec")),
        }
    }
    Ok(s)
}

/// An attach to a running container's stdio.
#[derive(Debug)]
pub struct AttachSession {
    /// The container has a terminal: its output is all on `stdout`, input
    /// is terminal input, and [`AttachSession::resize`] works.
    pub tty: bool,
    /// Input to the container's stdin (when asked for and it has an open one).
    pub stdin: Option<PipeWriter>,
    /// A copy of its stdout (when asked for).
    pub stdout: Option<PipeReader>,
    /// A copy of its stderr (when asked for and it has no tty).
    pub stderr: Option<PipeReader>,
    id: String,
    resize_fd: Option<ResizeFd>,
    conn: SessionConn,
    exit_code: Option<i32>,
}

impl AttachSession {
    /// Takes the pipes.
    pub fn take_pipes(&mut self) -> SessionPipes {
        (self.stdin.take(), self.stdout.take(), self.stderr.take())
    }

    /// Sets the container's terminal size; an error for a container without one.
    pub fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        match &self.resize_fd {
            Some(fd) => fd.resize(cols, rows),
            None => Err(MonitorError::Arg {
                name: "resize",
                reason: format!("container {:?} has no terminal", self.id),
            }),
        }
    }

    /// Waits until the container has exited (its output was drained into
    /// the pipes first, which then read EOF). An error when the monitor
    /// dropped this client (too slow to read) or the connection closed.
    /// Cancel-safe.
    pub async fn wait_exit(&mut self) -> Result<()> {
        if self.exit_code.is_some() {
            return Ok(());
        }
        let end = self.conn.end().await?;
        match (end.exit_code, end.error) {
            (Some(code), _) => {
                self.exit_code = Some(code);
                Ok(())
            }
            (None, e) => Err(MonitorError::Remote(format!(
                "attach to {:?}: {}",
                self.id,
                e.unwrap_or_else(|| "ended without an exit".into())
            ))),
        }
    }

    /// The container's exit code, once [`AttachSession::wait_exit`] saw it.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }
}

/// Attaches to running container `req.id` of the pod whose monitor listens
/// in `run_dir`. Dropping the session detaches (with `stdin_once`, the first
/// attach with stdin closes the container's stdin as it ends).
pub async fn attach(run_dir: &Path, req: &AttachRequest) -> Result<AttachSession> {
    let mut conn = SessionConn::connect(run_dir).await?;
    let (reply, fds): (AttachReply, _) = conn.request(Request::Attach(req.clone())).await?;
    let mut s = AttachSession {
        tty: reply.tty,
        stdin: None,
        stdout: None,
        stderr: None,
        id: req.id.clone(),
        resize_fd: None,
        conn,
        exit_code: None,
    };
    for (name, fd) in pair_fds(&reply.fds, fds, &s.conn.socket)? {
        let wrap = |e| MonitorError::io("register attach fd from", &s.conn.socket, e);
        match name {
            SessionFd::Stdin => s.stdin = Some(PipeWriter::new(fd).map_err(wrap)?),
            SessionFd::Stdout => s.stdout = Some(PipeReader::new(fd).map_err(wrap)?),
            SessionFd::Stderr => s.stderr = Some(PipeReader::new(fd).map_err(wrap)?),
            SessionFd::Resize => s.resize_fd = Some(ResizeFd(fd)),
            SessionFd::Pty => return Err(unexpected_fd(name, "attach")),
        }
    }
    Ok(s)
}

fn unexpected_fd(name: SessionFd, op: &str) -> MonitorError {
    MonitorError::Remote(format!("{op} reply passed an unexpected {name:?} fd"))
}

/// The reply's fd names with the fds received, checked to match one to one.
fn pair_fds(
    names: &[SessionFd],
    fds: Vec<OwnedFd>,
    socket: &Path,
) -> Result<Vec<(SessionFd, OwnedFd)>> {
    if names.len() != fds.len() {
        return Err(MonitorError::Remote(format!(
            "{}: the reply names {} fds but {} came",
            socket.display(),
            names.len(),
            fds.len()
        )));
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(MonitorError::Remote(format!(
                "{}: the reply passes {n:?} twice",
                socket.display()
            )));
        }
    }
    Ok(names.iter().copied().zip(fds).collect())
}

/// A session's own connection: lines in, fds collected as they come.
#[derive(Debug)]
struct SessionConn {
    socket: PathBuf,
    stream: UnixStream,
    /// Bytes read, not yet a full line.
    buf: Vec<u8>,
}

impl SessionConn {
    async fn connect(run_dir: &Path) -> Result<Self> {
        let socket = run_dir.join(SOCKET_NAME);
        let stream = UnixStream::connect(&socket)
            .await
            .map_err(|e| MonitorError::io("connect", &socket, e))?;
        Ok(Self {
            socket,
            stream,
            buf: Vec::new(),
        })
    }

    /// Sends the session's request; its typed result and the fds that came
    /// with it. Events sent before the request was seen are skipped.
    async fn request<T: DeserializeOwned>(&mut self, body: Request) -> Result<(T, Vec<OwnedFd>)> {
        let mut line = serde_json::to_vec(&RequestEnvelope { req: 1, body })
            .map_err(|e| MonitorError::json("request", e))?;
        line.push(b'\n');
        self.stream
            .write_all(&line)
            .await
            .map_err(|e| MonitorError::io("write to", &self.socket, e))?;
        let mut fds = Vec::new();
        loop {
            let line = self.read_line(&mut fds).await?;
            let v: serde_json::Value = serde_json::from_slice(&line)
                .map_err(|e| MonitorError::json("session reply", e))?;
            if v.get("event").is_some() {
                continue;
            }
            let resp: Response =
                serde_json::from_value(v).map_err(|e| MonitorError::json("session reply", e))?;
            if let Some(e) = resp.error {
                return Err(MonitorError::Remote(e));
            }
            let result = serde_json::from_value(resp.result.unwrap_or_default())
                .map_err(|e| MonitorError::json("session reply", e))?;
            return Ok((result, fds));
        }
    }

    /// The session's last line.
    async fn end(&mut self) -> Result<SessionEnd> {
        let mut stray = Vec::new();
        let line = self.read_line(&mut stray).await?;
        serde_json::from_slice(&line).map_err(|e| MonitorError::json("session end", e))
    }

    /// The next line (without its newline); fds that come meanwhile go to
    /// `fds`. The connection closing first is [`MonitorError::Closed`].
    async fn read_line(&mut self, fds: &mut Vec<OwnedFd>) -> Result<Vec<u8>> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf[..nl].to_vec();
                self.buf.drain(..=nl);
                return Ok(line);
            }
            if self.buf.len() > MAX_LINE {
                return Err(MonitorError::Remote(format!(
                    "{}: over-long line from the monitor",
                    self.socket.display()
                )));
            }
            let mut chunk = [0u8; 4096];
            let fd = self.stream.as_raw_fd();
            let n = self
                .stream
                .async_io(Interest::READABLE, || recv_with_fds(fd, &mut chunk, fds))
                .await
                .map_err(|e| MonitorError::io("read from", &self.socket, e))?;
            if n == 0 {
                return Err(MonitorError::Closed(self.socket.clone()));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// One non-blocking `recvmsg`: bytes into `buf`, passed fds (close-on-exec)
/// onto `fds`.
fn recv_with_fds(fd: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> std::io::Result<usize> {
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<UnixAddr>(
        fd,
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
    )?;
    let bytes = msg.bytes;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(received) = c {
            for raw in received {
                // SAFETY: the kernel just installed this fd in our table for
                // this message; nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// berthd's streaming server holds sessions in spawned tasks.
    #[allow(dead_code)]
    fn sessions_and_their_futures_are_send(e: &mut ExecSession, a: &mut AttachSession) {
        fn is_send<T: Send>(_: T) {}
        is_send(exec_stream(Path::new("/"), &ExecStreamRequest::default()));
        is_send(attach(Path::new("/"), &AttachRequest::default()));
        is_send(e.wait());
        is_send(a.wait_exit());
    }

    #[test]
    fn fds_pair_with_names_one_to_one() {
        let null = || OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let p = Path::new("/x");
        let ok = pair_fds(
            &[SessionFd::Stdin, SessionFd::Stdout],
            vec![null(), null()],
            p,
        );
        assert_eq!(ok.unwrap().len(), 2);
        assert!(pair_fds(&[SessionFd::Stdin], vec![], p).is_err());
        let twice = pair_fds(&[SessionFd::Pty, SessionFd::Pty], vec![null(), null()], p);
        assert!(twice.is_err());
    }
}
