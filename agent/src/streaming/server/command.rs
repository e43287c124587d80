//! Remote-command (exec and attach) semantics, the same over SPDY and
//! WebSocket: the transport hands over the streams the request asked for
//! ([`CommandStreams`]), the backend runs with them, and when it is done the
//! status goes out on the error stream (a JSON `metav1.Status` from v4 on,
//! text for failures before) and the connection ends. A client that goes
//! away ends the backend's streams; a backend that still has not returned
//! after a grace period is cancelled.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::backend::{Backend, BackendError, BoxRead, BoxWrite, StreamIo};
use crate::streaming::protocol::RemoteCommandVersion;
use crate::streaming::resize::ResizeDecoder;
use crate::streaming::status::{error_stream_message, CommandOutcome};

/// Terminal sizes queued for a backend that is slow to take them.
const RESIZE_QUEUE: usize = 8;

/// What a transport does around the backend's run.
pub(crate) trait CommandTransport: Send {
    /// Resolves once the client has gone away.
    fn disconnected(&self) -> BoxFuture<'static, ()>;
    /// After the backend: lets its output leave, writes `status` (if any) on
    /// the error stream, and ends the connection.
    fn finish(self: Box<Self>, status: Option<Vec<u8>>) -> BoxFuture<'static, ()>;
}

/// The client's streams for one exec or attach.
pub(crate) struct CommandStreams {
    pub version: RemoteCommandVersion,
    pub tty: bool,
    pub stdin: Option<BoxRead>,
    pub stdout: Option<BoxWrite>,
    pub stderr: Option<BoxWrite>,
    /// Raw resize messages (tty, v3 and later).
    pub resize: Option<BoxRead>,
    pub transport: Box<dyn CommandTransport>,
}

/// Which remote command to run.
#[derive(Debug, Clone)]
pub(crate) enum Command {
    Exec {
        container_id: String,
        cmd: Vec<String>,
    },
    Attach {
        container_id: String,
    },
}

/// Runs `command` on `backend` with `streams`, then reports its outcome.
pub(crate) async fn serve(
    backend: Arc<dyn Backend>,
    command: Command,
    streams: CommandStreams,
    disconnect_grace: Duration,
) {
    let CommandStreams {
        version,
        tty,
        stdin,
        stdout,
        stderr,
        resize,
        transport,
    } = streams;
    let (resize_rx, resize_task) = match resize {
        Some(raw) => {
            let (tx, rx) = mpsc::channel(RESIZE_QUEUE);
            (Some(rx), Some(tokio::spawn(decode_resizes(raw, tx))))
        }
        None => (None, None),
    };
    let io = StreamIo {
        tty,
        stdin,
        stdout,
        stderr,
        resize: resize_rx,
    };
    let what = match &command {
        Command::Exec { container_id, .. } => format!("exec in container {container_id}"),
        Command::Attach { container_id } => format!("attach to container {container_id}"),
    };
    let run: BoxFuture<'static, Result<i32, BackendError>> = match command {
        Command::Exec { container_id, cmd } => backend.exec(container_id, cmd, io),
        Command::Attach { container_id } => {
            let attach = backend.attach(container_id, io);
            Box::pin(async move { attach.await.map(|()| 0) })
        }
    };
    let outcome = run_until_gone(run, transport.disconnected(), disconnect_grace).await;
    if let Some(task) = resize_task {
        task.abort();
    }
    let outcome = match outcome {
        Some(Ok(code)) => CommandOutcome::Exited(code),
        Some(Err(e)) => {
            tracing::debug!(%what, error = %e, "remote command failed");
            CommandOutcome::Failed(format!("error executing command in container: {e}"))
        }
        None => {
            tracing::debug!(%what, "client went away; remote command cancelled");
            CommandOutcome::Failed("client disconnected".into())
        }
    };
    transport
        .finish(error_stream_message(version, &outcome))
        .await;
}

/// The backend's result, or `None` if the client left and the backend did
/// not return within `grace` after that (it is then dropped).
async fn run_until_gone<T>(
    mut run: BoxFuture<'static, T>,
    gone: BoxFuture<'static, ()>,
    grace: Duration,
) -> Option<T> {
    tokio::select! {
        r = &mut run => return Some(r),
        () = gone => {}
    }
    tokio::time::timeout(grace, run).await.ok()
}

/// Decodes the resize stream into sizes for the backend until either ends.
async fn decode_resizes(
    mut raw: BoxRead,
    tx: mpsc::Sender<crate::streaming::resize::TerminalSize>,
) {
    let mut decoder = ResizeDecoder::new();
    let mut buf = [0u8; 512];
    loop {
        let n = match raw.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        match decoder.feed(&buf[..n]) {
            Ok(sizes) => {
                for size in sizes {
                    if tx.send(size).await.is_err() {
                        return;
                    }
                }
            }
            // kubelet stops reading resizes at the first bad message.
            Err(e) => {
                tracing::debug!(error = %e, "bad terminal resize message; ignoring the rest");
                return;
            }
        }
    }
}
