//! A client for streaming URLs (what `Exec`, `Attach` and `PortForward`
//! return): exec and attach with stdin, stdout, stderr and terminal resizes,
//! ending with the command's exit code, and port-forward connections as
//! byte streams. Over SPDY/3.1 (any remote-command version) or WebSocket
//! (v4/v5 channels; port-forward also as SPDY tunnelled in WebSocket).
//! Used by the tests and by `berth exec`/`attach`/`port-forward`.
//!
//! `connect` does the HTTP upgrades, `command` the remote-command streams,
//! `port_forward` the forwarded connections.

mod command;
mod connect;
mod port_forward;

use std::io;

use tokio::sync::mpsc;

pub use crate::streaming::resize::TerminalSize;
pub use crate::streaming::server::backend::{BoxRead, BoxWrite};
pub use port_forward::{ForwardedConn, PortForwardSession};

/// How to reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Spdy,
    WebSocket,
}

/// The transport and the subprotocols to offer, in preference order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub transport: Transport,
    /// `X-Stream-Protocol-Version` (SPDY) or `Sec-WebSocket-Protocol`
    /// values; empty offers none (legacy servers, unnamed protocols).
    pub protocols: Vec<String>,
}

impl Options {
    /// SPDY offering v4 down to v1 (port-forward: `portforward.k8s.io`).
    pub fn spdy() -> Self {
        Self {
            transport: Transport::Spdy,
            protocols: Vec::new(),
        }
    }

    /// WebSocket offering v5 then v4 (port-forward: `v4.channel.k8s.io`).
    pub fn websocket() -> Self {
        Self {
            transport: Transport::WebSocket,
            protocols: Vec::new(),
        }
    }

    /// Offers exactly `protocols`.
    pub fn with_protocols(mut self, protocols: &[&str]) -> Self {
        self.protocols = protocols.iter().map(|p| p.to_string()).collect();
        self
    }
}

/// The local side of an exec or attach: which streams to open and where
/// their bytes go. A `None` stream is not requested.
#[derive(Default)]
pub struct CommandIo {
    pub tty: bool,
    pub stdin: Option<BoxRead>,
    pub stdout: Option<BoxWrite>,
    pub stderr: Option<BoxWrite>,
    /// Terminal sizes to send (tty, v3 and later).
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
}

/// Errors of the streaming client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// the URL cannot be used
    #[error("streaming url {url:?}: {reason}")]
    Url { url: String, reason: String },
    /// the TCP connection failed
    #[error("connecting to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    /// the server answered the upgrade with an error
    #[error("{url}: upgrade refused: HTTP {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    /// the server's reply is not a usable upgrade
    #[error("{url}: bad upgrade response: {reason}")]
    BadResponse { url: String, reason: String },
    /// the WebSocket handshake failed
    #[error("{url}: websocket handshake: {source}")]
    WebSocket {
        url: String,
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// a SPDY stream could not be opened
    #[error("opening a {what} stream: {source}")]
    Stream {
        what: String,
        source: crate::streaming::spdy::SessionError,
    },
    /// copying a stream failed
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        source: io::Error,
    },
    /// the server reported a failure other than an exit code
    #[error("remote command failed: {0}")]
    Remote(String),
    /// the status on the error stream does not parse
    #[error("bad status on the error stream: {0}")]
    BadStatus(String),
}

/// Runs an exec URL; resolves to the command's exit code.
pub async fn exec(url: &str, options: &Options, io: CommandIo) -> Result<i32, ClientError> {
    command::run(url, options, io).await
}

/// Runs an attach URL; resolves when the container's process exits (its
/// exit status is not reported: 0) or the server ends the session.
pub async fn attach(url: &str, options: &Options, io: CommandIo) -> Result<(), ClientError> {
    command::run(url, options, io).await.map(|_| ())
}

/// Opens a WebSocket port-forward to `ports` (one connection each; the
/// ports are added to the URL's query).
pub async fn port_forward_websocket(
    url: &str,
    options: &Options,
    ports: &[u16],
) -> Result<Vec<ForwardedConn>, ClientError> {
    port_forward::websocket(url, options, ports).await
}
