//! berthd's side of Exec, Attach and PortForward: the checks the CRI calls
//! make before a streaming URL is handed out, and the streaming server's
//! [`Backend`]. Exec and attach get the process's stdio from the pod's
//! monitor (a pty or pipes, passed as fds) and pump the client's streams
//! into it; port-forward dials the port on the pod's loopback from inside its
//! network namespace.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::records::{ContainerPhase, SandboxPhase};
use super::store::{Container, Pod};
use super::{Daemon, DaemonError, Result};
use crate::monitor::stream_client::{self, AttachRequest, ExecStreamRequest, SessionPipes};
use crate::streaming::server::{Backend, BackendError, BoxedConn, StreamIo, TerminalSize};

/// How long a port-forward waits for the pod's port to accept.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// After an exec's process exits, how long its output may still drain (a
/// background child that keeps the pipes open must not hold the session).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

impl Daemon {
    /// A container that exists and runs, and its pod: Exec and Attach need one.
    pub fn running_container(&self, id: &str) -> Result<(Arc<Container>, Arc<Pod>)> {
        let c = self.store.container_or_err(id)?;
        let phase = c.snapshot().phase;
        if phase != ContainerPhase::Running {
            return Err(DaemonError::state(format!(
                "container {} is {}, not running",
                c.id,
                super::containers::phase_name(phase)
            )));
        }
        let pod = self.store.pod_or_err(&c.pod_id)?;
        Ok((c, pod))
    }

    /// A pod sandbox that is ready: PortForward needs one.
    pub fn ready_sandbox(&self, id: &str) -> Result<Arc<Pod>> {
        let pod = self.store.pod_or_err(id)?;
        if pod.snapshot().phase != SandboxPhase::Ready {
            return Err(DaemonError::state(format!(
                "pod sandbox {} is not ready",
                pod.id
            )));
        }
        Ok(pod)
    }
}

/// The streaming server's view of the daemon.
#[derive(Debug, Clone)]
pub struct DaemonBackend {
    daemon: Arc<Daemon>,
}

impl DaemonBackend {
    /// Serves streams for `daemon`'s pods and containers.
    pub fn new(daemon: Arc<Daemon>) -> Self {
        Self { daemon }
    }
}

fn backend_error(e: DaemonError) -> BackendError {
    match e {
        DaemonError::NotFound { .. } => BackendError::NotFound(e.to_string()),
        DaemonError::WrongState { .. } => BackendError::Unavailable(e.to_string()),
        e => BackendError::Failed(e.to_string()),
    }
}

fn failed(what: &str) -> impl FnOnce(crate::monitor::MonitorError) -> BackendError + '_ {
    move |e| BackendError::Failed(format!("{what}: {e}"))
}

impl Backend for DaemonBackend {
    fn exec(
        &self,
        container_id: String,
        cmd: Vec<String>,
        io: StreamIo,
    ) -> BoxFuture<'static, std::result::Result<i32, BackendError>> {
        let daemon = self.daemon.clone();
        async move {
            let (c, pod) = daemon
                .running_container(&container_id)
                .map_err(backend_error)?;
            exec(&pod, &c, cmd, io).await
        }
        .boxed()
    }

    fn attach(
        &self,
        container_id: String,
        io: StreamIo,
    ) -> BoxFuture<'static, std::result::Result<(), BackendError>> {
        let daemon = self.daemon.clone();
        async move {
            let (c, pod) = daemon
                .running_container(&container_id)
                .map_err(backend_error)?;
            attach(&pod, &c, io).await
        }
        .boxed()
    }

    fn port_forward(
        &self,
        pod_sandbox_id: String,
        port: u16,
    ) -> BoxFuture<'static, std::result::Result<BoxedConn, BackendError>> {
        let daemon = self.daemon.clone();
        async move {
            let pod = daemon
                .ready_sandbox(&pod_sandbox_id)
                .map_err(backend_error)?;
            let netns = pod.snapshot().netns;
            let stream = tokio::task::spawn_blocking(move || {
                berth_cni::dial_localhost(netns.as_deref(), port, DIAL_TIMEOUT)
            })
            .await
            .map_err(|e| BackendError::Failed(format!("port-forward worker: {e}")))?
            .map_err(|e| BackendError::Failed(e.to_string()))?;
            let stream = stream
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpStream::from_std(stream))
                .map_err(|e| BackendError::Failed(format!("port-forward socket: {e}")))?;
            Ok(Box::new(stream) as BoxedConn)
        }
        .boxed()
    }
}

/// Runs `cmd` in container `c` with the client's streams; its exit code.
async fn exec(
    pod: &Pod,
    c: &Container,
    cmd: Vec<String>,
    io: StreamIo,
) -> std::result::Result<i32, BackendError> {
    let req = ExecStreamRequest {
        id: c.id.clone(),
        args: cmd,
        env: None,
        tty: io.tty,
        stdin: io.stdin.is_some(),
        stdout: io.stdout.is_some(),
        stderr: io.stderr.is_some() && !io.tty,
    };
    let mut session = stream_client::exec_stream(&pod.run_dir, &req)
        .await
        .map_err(failed("exec"))?;
    let mut io = io;
    let resize = io.resize.take();
    let (input, outputs, resizes) = match session.pty.take() {
        Some(pty) => {
            let resizer = pty.resizer();
            let (r, w) = tokio::io::split(pty);
            (
                io.stdin.take().map(|i| pump(i, w).boxed()),
                vec![io.stdout.take().map(|o| pump(r, o).boxed())],
                Some(apply_resizes(resize, move |s| {
                    resizer.resize(s.width, s.height)
                })),
            )
        }
        None => {
            let (input, outputs) = pipes(&mut io, session.take_pipes());
            (input, outputs, None)
        }
    };
    let outputs = futures_util::future::join_all(outputs.into_iter().flatten());
    let (exited, exit_seen) = tokio::sync::oneshot::channel::<()>();
    let waiting = async {
        let code = session.wait().await;
        let _ = exited.send(());
        code
    };
    // Output is copied while the process runs, and for a moment after it
    // exits: what it wrote is in the pipes by then.
    let draining = async {
        tokio::select! {
            _ = outputs => {}
            () = async {
                let _ = exit_seen.await;
                tokio::time::sleep(DRAIN_AFTER_EXIT).await;
            } => {}
        }
    };
    let code = alongside(async { tokio::join!(waiting, draining).0 }, input, resizes).await;
    code.map_err(failed("exec"))
}

/// Attaches the client's streams to container `c` until it exits or the
/// client leaves.
async fn attach(pod: &Pod, c: &Container, io: StreamIo) -> std::result::Result<(), BackendError> {
    let config = c.snapshot().config;
    let req = AttachRequest {
        id: c.id.clone(),
        stdin: io.stdin.is_some() && config.stdin,
        stdout: io.stdout.is_some(),
        stderr: io.stderr.is_some() && !config.tty,
    };
    let mut session = stream_client::attach(&pod.run_dir, &req)
        .await
        .map_err(failed("attach"))?;
    let mut io = io;
    let resize = io.resize.take();
    let has_outputs = io.stdout.is_some() || io.stderr.is_some();
    let (input, outputs) = pipes(&mut io, session.take_pipes());
    let outputs = futures_util::future::join_all(outputs.into_iter().flatten());
    // Outputs end (EOF) when the container exits or the monitor drops this
    // client, or with a write error when the client leaves; an attach with
    // stdin only ends when the client closes it.
    let (ended, input) = if has_outputs {
        (outputs.map(drop).boxed(), input)
    } else {
        (
            input.unwrap_or_else(|| std::future::ready(()).boxed()),
            None,
        )
    };
    let session = &session;
    let resizing = apply_resizes(resize.filter(|_| session.tty), move |size| {
        session.resize(size.width, size.height)
    });
    alongside(ended, input, Some(resizing)).await;
    Ok(())
}

/// The copies between the client's streams and the process's pipes, for
/// the streams both sides have: the input's, and the outputs'.
fn pipes(
    io: &mut StreamIo,
    (to_process, from_stdout, from_stderr): SessionPipes,
) -> (
    Option<BoxFuture<'static, ()>>,
    Vec<Option<BoxFuture<'static, ()>>>,
) {
    let input = io
        .stdin
        .take()
        .zip(to_process)
        .map(|(i, w)| pump(i, w).boxed());
    let outputs = vec![
        io.stdout
            .take()
            .zip(from_stdout)
            .map(|(o, r)| pump(r, o).boxed()),
        io.stderr
            .take()
            .zip(from_stderr)
            .map(|(o, r)| pump(r, o).boxed()),
    ];
    (input, outputs)
}

/// Copies `from` into `to` until EOF or an error, then shuts `to` down (the
/// client or the process sees the end of the stream).
async fn pump<R, W>(mut from: R, mut to: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let _ = tokio::io::copy(&mut from, &mut to).await;
    let _ = to.shutdown().await;
}

/// Applies each terminal size the client sends, until it stops sending
/// (at once when there is no resize stream).
fn apply_resizes<'a, F>(sizes: Option<mpsc::Receiver<TerminalSize>>, apply: F) -> BoxFuture<'a, ()>
where
    F: Fn(TerminalSize) -> crate::monitor::Result<()> + Send + Sync + 'a,
{
    async move {
        let Some(mut sizes) = sizes else { return };
        while let Some(size) = sizes.recv().await {
            if let Err(e) = apply(size) {
                tracing::debug!("terminal resize to {size:?}: {e}");
            }
        }
    }
    .boxed()
}

/// Runs `main` to completion while the client's input and resizes are fed
/// alongside it; those stop when `main` ends.
async fn alongside<T>(
    main: impl Future<Output = T>,
    input: Option<BoxFuture<'_, ()>>,
    resizes: Option<BoxFuture<'_, ()>>,
) -> T {
    let side = async {
        if let Some(i) = input {
            i.await;
        }
        std::future::pending::<()>().await
    };
    let resizes = async {
        if let Some(r) = resizes {
            r.await;
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        v = main => v,
        () = side => unreachable!("pending"),
        () = resizes => unreachable!("pending"),
    }
}
