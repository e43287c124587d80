//! What the streaming server asks of the runtime: run a command or attach to
//! a container with the client's streams, and dial a port inside a pod's
//! network namespace. berthd implements [`Backend`] over the pod monitors;
//! the server only moves bytes between the client and these streams.

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

pub use crate::streaming::resize::TerminalSize;

/// A stream that reads and writes (a trait alias).
pub trait AsyncReadWrite: AsyncRead + AsyncWrite {}

impl<T: AsyncRead + AsyncWrite + ?Sized> AsyncReadWrite for T {}

/// A connection the backend dialled for a port-forward.
pub type BoxedConn = Box<dyn AsyncReadWrite + Send + Unpin>;

/// A boxed reader of client input.
pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
/// A boxed writer towards the client.
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// The client's side of an exec or attach, as the request asked for it.
///
/// `stdin` ends (EOF or an error) when the client closes it or goes away;
/// writes to `stdout`/`stderr` fail once the client is gone. Dropping a
/// writer (or the whole `StreamIo`) ends that stream for the client.
/// `resize` yields terminal sizes (tty only, protocol v3 and later) and ends
/// with the connection.
pub struct StreamIo {
    pub tty: bool,
    pub stdin: Option<BoxRead>,
    pub stdout: Option<BoxWrite>,
    pub stderr: Option<BoxWrite>,
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
}

impl std::fmt::Debug for StreamIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamIo")
            .field("tty", &self.tty)
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("resize", &self.resize.is_some())
            .finish()
    }
}

/// Why the backend could not serve a stream. The message reaches the client
/// (the status on the error stream, or a port-forward's error stream).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// no such container or pod sandbox
    #[error("{0} not found")]
    NotFound(String),
    /// the container or sandbox is in a state that does not allow it
    #[error("{0}")]
    Unavailable(String),
    /// anything else
    #[error("{0}")]
    Failed(String),
}

/// The runtime side of exec, attach and port-forward.
pub trait Backend: Send + Sync + 'static {
    /// Runs `cmd` in the container with `io`; resolves to its exit code.
    fn exec(
        &self,
        container_id: String,
        cmd: Vec<String>,
        io: StreamIo,
    ) -> BoxFuture<'static, Result<i32, BackendError>>;

    /// Attaches `io` to the container's main process until it exits or the
    /// client leaves.
    fn attach(
        &self,
        container_id: String,
        io: StreamIo,
    ) -> BoxFuture<'static, Result<(), BackendError>>;

    /// A connected stream to `port` in the pod's network namespace.
    fn port_forward(
        &self,
        pod_sandbox_id: String,
        port: u16,
    ) -> BoxFuture<'static, Result<BoxedConn, BackendError>>;
}
