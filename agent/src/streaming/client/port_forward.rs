//! Port-forward from the client side. Over SPDY (or SPDY tunnelled in a
//! WebSocket) one [`PortForwardSession`] carries any number of connections
//! to any ports: each is a data and an error stream with the same request
//! id. Over WebSocket channels the ports are fixed at connect time, one
//! connection each, and every channel starts with its port number.

use std::any::Any;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use super::connect;
use super::{BoxRead, ClientError, Options, Transport};
use crate::streaming::protocol::{PORT_FORWARD_V1, REMOTE_COMMAND_V4};
use crate::streaming::server::backend::AsyncReadWrite;
use crate::streaming::spdy::stream_kind::{PORT, REQUEST_ID, STREAM_TYPE};
use crate::streaming::spdy::{self, Headers, Role, Session};
use crate::streaming::websocket::mux::Mux;
use crate::streaming::websocket::port_forward::{ChannelKind, PortChannels};
use crate::streaming::websocket::tunnel::{Tunnel, SPDY_PORT_FORWARD};
use crate::streaming::websocket::upgrade::{PORT_FORWARD, UNNAMED};
use crate::streaming::websocket::ChannelConn;

/// Largest error message kept from an error stream.
const MAX_ERROR: u64 = 64 << 10;

/// One forwarded connection: read and write it like a socket.
/// [`ForwardedConn::remote_error`] tells whether the server reported a
/// failure (a refused dial) on its error stream.
pub struct ForwardedConn {
    io: Pin<Box<dyn AsyncReadWrite + Send>>,
    /// The error stream's text so far, and whether it has ended.
    error: watch::Receiver<(String, bool)>,
    _keep: Arc<dyn Any + Send + Sync>,
}

impl ForwardedConn {
    /// Waits until the error stream carries a message or ends; the
    /// server's message, if any. (The server writes each message at once;
    /// a WebSocket error channel only ends with the connection.)
    pub async fn remote_error(&mut self) -> Option<String> {
        let state = self
            .error
            .wait_for(|(text, ended)| *ended || !text.is_empty())
            .await
            .map(|s| s.0.clone())
            .unwrap_or_default();
        (!state.is_empty()).then_some(state)
    }
}

fn read_error(mut stream: BoxRead) -> watch::Receiver<(String, bool)> {
    let (tx, rx) = watch::channel((String::new(), false));
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        let mut total = 0u64;
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    total += n as u64;
                    if total > MAX_ERROR {
                        break;
                    }
                    let chunk = String::from_utf8_lossy(&buf[..n]).into_owned();
                    tx.send_modify(|(text, _)| text.push_str(&chunk));
                }
            }
        }
        tx.send_modify(|(_, ended)| *ended = true);
    });
    rx
}

impl AsyncRead for ForwardedConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for ForwardedConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.as_mut().poll_shutdown(cx)
    }
}

/// A SPDY port-forward connection to the server.
pub struct PortForwardSession {
    session: Session,
    next_request: AtomicU64,
}

impl PortForwardSession {
    /// Upgrades `url`: SPDY with [`Transport::Spdy`], SPDY tunnelled in a
    /// WebSocket (`SPDY/3.1+portforward.k8s.io`) with
    /// [`Transport::WebSocket`].
    pub async fn connect(url: &str, options: &Options) -> Result<Self, ClientError> {
        let target = connect::parse(url)?;
        let session = match options.transport {
            Transport::Spdy => {
                let protocols = if options.protocols.is_empty() {
                    vec![PORT_FORWARD_V1.to_owned()]
                } else {
                    options.protocols.clone()
                };
                let (io, _) = connect::spdy(&target, &protocols).await?;
                Session::new(io, Role::Client, spdy::Config::default()).0
            }
            Transport::WebSocket => {
                let (ws, chosen) =
                    connect::websocket(&target, &[SPDY_PORT_FORWARD.to_owned()]).await?;
                if chosen.as_deref() != Some(SPDY_PORT_FORWARD) {
                    return Err(ClientError::BadResponse {
                        url: url.to_owned(),
                        reason: format!("server chose {chosen:?}, not {SPDY_PORT_FORWARD}"),
                    });
                }
                Session::new(Tunnel::new(ws), Role::Client, spdy::Config::default()).0
            }
        };
        Ok(Self {
            session,
            next_request: AtomicU64::new(0),
        })
    }

    /// Opens a connection to `port` in the pod.
    pub async fn open(&self, port: u16) -> Result<ForwardedConn, ClientError> {
        let id = self
            .next_request
            .fetch_add(1, Ordering::Relaxed)
            .to_string();
        let port_s = port.to_string();
        let headers = |kind: &str| {
            Headers::new()
                .with(STREAM_TYPE, kind)
                .with(PORT, &port_s)
                .with(REQUEST_ID, &id)
        };
        let stream_err = |what: &str| {
            let what = format!("port-forward {what} (port {port})");
            move |source| ClientError::Stream { what, source }
        };
        // Nothing is written on the error stream.
        let error = self
            .session
            .open_stream(headers("error"), true)
            .await
            .map_err(stream_err("error"))?;
        let data = self
            .session
            .open_stream(headers("data"), false)
            .await
            .map_err(stream_err("data"))?;
        let (error_rd, _) = error.split();
        Ok(ForwardedConn {
            io: Box::pin(data),
            error: read_error(Box::new(error_rd)),
            _keep: Arc::new(self.session.clone()),
        })
    }

    /// Ends the session (GOAWAY) and its connections.
    pub async fn close(self) {
        self.session.close().await;
    }
}

pub(super) async fn websocket(
    url: &str,
    options: &Options,
    ports: &[u16],
) -> Result<Vec<ForwardedConn>, ClientError> {
    let channels = PortChannels::new(ports.to_vec()).map_err(|e| ClientError::Url {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    let query: Vec<String> = ports.iter().map(|p| format!("port={p}")).collect();
    let sep = if url.contains('?') { '&' } else { '?' };
    let full = format!("{url}{sep}{}", query.join("&"));
    let target = connect::parse(&full)?;
    let protocols = if options.protocols.is_empty() {
        vec![REMOTE_COMMAND_V4.to_owned()]
    } else {
        options.protocols.clone()
    };
    let (ws, chosen) = connect::websocket(&target, &protocols).await?;
    let protocol = match chosen {
        None => UNNAMED,
        Some(name) => *PORT_FORWARD
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ClientError::BadResponse {
                url: url.to_owned(),
                reason: format!("server chose unknown protocol {name:?}"),
            })?,
    };
    let all: Vec<u8> = (0..ports.len())
        .flat_map(|i| {
            [
                channels.channel(i, ChannelKind::Data),
                channels.channel(i, ChannelKind::Error),
            ]
        })
        .flatten()
        .collect();
    let (mut mux, mut readers) = Mux::start(ChannelConn::from_stream(ws, protocol), &all);
    let mut conns = Vec::new();
    let mut writers = Vec::new();
    for i in 0..ports.len() {
        let (Some(data_ch), Some(error_ch)) = (
            channels.channel(i, ChannelKind::Data),
            channels.channel(i, ChannelKind::Error),
        ) else {
            continue;
        };
        writers.push(mux.output(data_ch));
        let (Some(data), Some(error)) = (readers.remove(&data_ch), readers.remove(&error_ch))
        else {
            continue;
        };
        conns.push((data, error));
    }
    let keep: Arc<dyn Any + Send + Sync> = Arc::new(mux);
    let mut out = Vec::new();
    for ((mut data, mut error), writer) in conns.into_iter().zip(writers) {
        // Each channel starts with its port number.
        let mut prefix = [0u8; 2];
        for (what, stream) in [("data", &mut data), ("error", &mut error)] {
            stream
                .read_exact(&mut prefix)
                .await
                .map_err(|source| ClientError::Io {
                    what: if what == "data" {
                        "reading the data channel's port"
                    } else {
                        "reading the error channel's port"
                    },
                    source,
                })?;
        }
        out.push(ForwardedConn {
            io: Box::pin(tokio::io::join(data, writer)),
            error: read_error(Box::new(error)),
            _keep: Arc::clone(&keep),
        });
    }
    Ok(out)
}
