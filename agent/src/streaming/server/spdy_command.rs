//! Remote commands over SPDY: the client opens one stream per standard
//! stream (`streamtype` error, stdin, stdout, stderr, and resize for a tty
//! from v3 on); the server waits for the ones the request implies, within
//! the creation timeout, and refuses others. The streams the server never
//! writes (stdin, resize) are half-closed in the reply (what kubelet's v1
//! handler does to stdin, for every version).

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::AsyncWriteExt;

use super::command::{CommandStreams, CommandTransport};
use crate::streaming::protocol::RemoteCommandVersion;
use crate::streaming::spdy::stream_kind::{command_stream, CommandStream};
use crate::streaming::spdy::{Headers, Incoming, RstStatus, Session, StreamWriter};

/// How long the final status and GOAWAY may take to leave.
const FINISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Which standard streams a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Why the streams could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StreamSetupError {
    /// the client did not open every stream in time
    #[error("timed out waiting for client to create streams (missing: {0})")]
    Timeout(String),
    /// the client left first
    #[error("connection closed while waiting for client to create streams")]
    Closed,
}

struct SpdyTransport {
    session: Session,
    error: StreamWriter,
}

impl CommandTransport for SpdyTransport {
    fn disconnected(&self) -> BoxFuture<'static, ()> {
        let session = self.session.clone();
        Box::pin(async move { session.closed().await })
    }

    fn finish(self: Box<Self>, status: Option<Vec<u8>>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let SpdyTransport { session, mut error } = *self;
            let done = async {
                if let Some(status) = status {
                    let _ = error.write_all(&status).await;
                }
                let _ = error.shutdown().await;
                drop(error);
                session.close().await;
            };
            if tokio::time::timeout(FINISH_TIMEOUT, done).await.is_err() {
                tracing::debug!("spdy remote command: client did not take the final status");
            }
        })
    }
}

/// Waits for the client's streams and returns them.
pub(crate) async fn accept_streams(
    session: Session,
    mut incoming: Incoming,
    version: RemoteCommandVersion,
    wanted: Wanted,
    timeout: Duration,
) -> Result<CommandStreams, StreamSetupError> {
    let resize_wanted = wanted.tty && version.has_resize();
    let mut error = None;
    let mut stdin = None;
    let mut stdout = None;
    let mut stderr = None;
    let mut resize = None;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let missing: Vec<&str> = [
            (error.is_none(), "error"),
            (wanted.stdin && stdin.is_none(), "stdin"),
            (wanted.stdout && stdout.is_none(), "stdout"),
            (wanted.stderr && stderr.is_none(), "stderr"),
            (resize_wanted && resize.is_none(), "resize"),
        ]
        .into_iter()
        .filter_map(|(m, name)| m.then_some(name))
        .collect();
        if missing.is_empty() {
            break;
        }
        let next = tokio::time::timeout_at(deadline, incoming.accept()).await;
        let stream = match next {
            Err(_) => return Err(StreamSetupError::Timeout(missing.join(", "))),
            Ok(None) => return Err(StreamSetupError::Closed),
            Ok(Some(s)) => s,
        };
        let kind = match command_stream(stream.headers()) {
            Ok(k) => k,
            Err(e) => {
                tracing::debug!(error = %e, "spdy remote command: refusing a stream");
                stream.refuse(RstStatus::RefusedStream);
                continue;
            }
        };
        let slot_free = match kind {
            CommandStream::Error => error.is_none(),
            CommandStream::Stdin => wanted.stdin && stdin.is_none(),
            CommandStream::Stdout => wanted.stdout && stdout.is_none(),
            CommandStream::Stderr => wanted.stderr && stderr.is_none(),
            CommandStream::Resize => resize_wanted && resize.is_none(),
        };
        if !slot_free {
            tracing::debug!(?kind, "spdy remote command: refusing an unexpected stream");
            stream.refuse(RstStatus::RefusedStream);
            continue;
        }
        // The server never writes on stdin and resize: half-close at once.
        let read_only = matches!(kind, CommandStream::Stdin | CommandStream::Resize);
        let (reader, writer) = stream.reply_with(Headers::new(), read_only).split();
        match kind {
            CommandStream::Error => error = Some(writer),
            CommandStream::Stdin => stdin = Some(reader),
            CommandStream::Stdout => stdout = Some(writer),
            CommandStream::Stderr => stderr = Some(writer),
            CommandStream::Resize => resize = Some(reader),
        }
    }
    // Streams opened from now on are refused (nobody accepts them).
    drop(incoming);
    let error = error.ok_or(StreamSetupError::Closed)?;
    Ok(CommandStreams {
        version,
        tty: wanted.tty,
        stdin: stdin.map(|s| Box::new(s) as _),
        stdout: stdout.map(|s| Box::new(s) as _),
        stderr: stderr.map(|s| Box::new(s) as _),
        resize: resize.map(|s| Box::new(s) as _),
        transport: Box::new(SpdyTransport { session, error }),
    })
}
