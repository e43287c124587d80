//! berthd's streaming server, as kubelet's: the CRI `Exec`, `Attach` and
//! `PortForward` calls store the request under a single-use token and return
//! a URL on this server (`/exec/<token>`, `/attach/<token>`,
//! `/portforward/<token>`); the client then upgrades an HTTP/1.1 connection
//! on it to SPDY/3.1 or WebSocket, and the [`Backend`] runs the command or
//! dials the port with the client's streams.
//!
//! Module map: `tokens` (the request cache), `http` (listener, routes,
//! upgrades), `command` (exec/attach over any transport) with `spdy_command`
//! and `ws_command` (how each transport provides the streams),
//! `port_forward` (both transports), `backend` (the trait berthd implements).

pub mod backend;
mod command;
mod http;
mod port_forward;
mod spdy_command;
pub mod tokens;
mod ws_command;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use berth_proto::v1 as cri;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use backend::{
    AsyncReadWrite, Backend, BackendError, BoxRead, BoxWrite, BoxedConn, StreamIo, TerminalSize,
};
pub use tokens::{Clock, ManualClock, SystemClock, TokenCache, TokenError};

/// A request waiting for its client behind a token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StoredRequest {
    Exec(cri::ExecRequest),
    Attach(cri::AttachRequest),
    PortForward(cri::PortForwardRequest),
}

/// Server settings; [`Config::default`] has kubelet's values.
#[derive(Clone)]
pub struct Config {
    /// The clock of the token cache.
    pub clock: Arc<dyn Clock>,
    /// How long a token stays valid.
    pub token_ttl: Duration,
    /// Tokens in flight at most.
    pub max_in_flight: usize,
    /// How long a SPDY client has to open its streams.
    pub stream_creation_timeout: Duration,
    /// How long a backend may go on after its client left before it is
    /// cancelled.
    pub disconnect_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            token_ttl: tokens::TOKEN_TTL,
            max_in_flight: tokens::MAX_IN_FLIGHT,
            // kubelet's DefaultStreamCreationTimeout.
            stream_creation_timeout: Duration::from_secs(30),
            disconnect_grace: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("token_ttl", &self.token_ttl)
            .field("max_in_flight", &self.max_in_flight)
            .field("stream_creation_timeout", &self.stream_creation_timeout)
            .field("disconnect_grace", &self.disconnect_grace)
            .finish_non_exhaustive()
    }
}

/// The running server.
pub struct StreamingServer {
    base_url: String,
    state: Arc<http::State>,
    shutdown: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl StreamingServer {
    /// Listens on `addr` (port 0 picks one) and spawns the accept loop.
    pub async fn bind(addr: SocketAddr, backend: Arc<dyn Backend>) -> std::io::Result<Self> {
        Self::bind_with(addr, backend, Config::default()).await
    }

    /// [`StreamingServer::bind`] with other settings.
    pub async fn bind_with(
        addr: SocketAddr,
        backend: Arc<dyn Backend>,
        config: Config,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("streaming server: bind {addr}: {e}"))
        })?;
        let local = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = Arc::new(http::State::new(backend, config, shutdown_rx));
        let accept = tokio::spawn(http::accept_loop(listener, Arc::clone(&state)));
        Ok(Self {
            base_url: format!("http://{local}"),
            state,
            shutdown,
            accept,
        })
    }

    /// The URL the streaming URLs start with, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Checks an Exec request as kubelet does and returns its URL.
    pub fn get_exec(&self, req: &cri::ExecRequest) -> Result<cri::ExecResponse, tonic::Status> {
        require(&req.container_id, "container_id")?;
        if req.cmd.is_empty() {
            return Err(invalid("cmd: must not be empty"));
        }
        check_streams(req.tty, req.stdin, req.stdout, req.stderr)?;
        let url = self.store("exec", StoredRequest::Exec(req.clone()))?;
        Ok(cri::ExecResponse { url })
    }

    /// Checks an Attach request as kubelet does and returns its URL.
    pub fn get_attach(
        &self,
        req: &cri::AttachRequest,
    ) -> Result<cri::AttachResponse, tonic::Status> {
        require(&req.container_id, "container_id")?;
        check_streams(req.tty, req.stdin, req.stdout, req.stderr)?;
        let url = self.store("attach", StoredRequest::Attach(req.clone()))?;
        Ok(cri::AttachResponse { url })
    }

    /// Checks a PortForward request and returns its URL.
    pub fn get_port_forward(
        &self,
        req: &cri::PortForwardRequest,
    ) -> Result<cri::PortForwardResponse, tonic::Status> {
        require(&req.pod_sandbox_id, "pod_sandbox_id")?;
        for (i, port) in req.port.iter().enumerate() {
            if !(1..=i32::from(u16::MAX)).contains(port) {
                return Err(invalid(&format!("port[{i}]: {port} is not a valid port")));
            }
        }
        let url = self.store("portforward", StoredRequest::PortForward(req.clone()))?;
        Ok(cri::PortForwardResponse { url })
    }

    fn store(&self, route: &str, request: StoredRequest) -> Result<String, tonic::Status> {
        let token = self.state.tokens.insert(request).map_err(|e| match e {
            TokenError::TooManyInFlight(_) => tonic::Status::resource_exhausted(e.to_string()),
            TokenError::Random(_) => tonic::Status::internal(e.to_string()),
        })?;
        Ok(format!("{}/{route}/{token}", self.base_url))
    }

    /// Stops accepting, ends every connection and waits (a bounded time)
    /// for their handlers.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        let _ = self.accept.await;
        self.state.stop_tasks().await;
    }
}

fn invalid(msg: &str) -> tonic::Status {
    tonic::Status::invalid_argument(msg.to_owned())
}

fn require(value: &str, field: &str) -> Result<(), tonic::Status> {
    if value.is_empty() {
        return Err(invalid(&format!("missing required {field}")));
    }
    Ok(())
}

fn check_streams(tty: bool, stdin: bool, stdout: bool, stderr: bool) -> Result<(), tonic::Status> {
    if tty && stderr {
        // A terminal has one output stream.
        return Err(invalid("tty and stderr cannot both be true"));
    }
    if !stdin && !stdout && !stderr {
        return Err(invalid("one of stdin, stdout, or stderr must be set"));
    }
    Ok(())
}
