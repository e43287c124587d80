//! Remote commands over WebSocket: the channels the request implies are
//! open from the start (stdin 0, stdout 1, stderr 2, error 3, resize 4; no
//! negotiation), an empty message on the lowest output channel tells the
//! client the connection is up, as kubelet does, and v5 clients can close
//! stdin with a close message.

use futures_util::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::Role;

use super::command::{CommandStreams, CommandTransport};
use super::spdy_command::Wanted;
use crate::streaming::websocket::channel::{ERROR, RESIZE, STDERR, STDIN, STDOUT};
use crate::streaming::websocket::mux::Mux;
use crate::streaming::websocket::upgrade::WsProtocol;
use crate::streaming::websocket::ChannelConn;

struct WsTransport {
    mux: Mux,
}

impl CommandTransport for WsTransport {
    fn disconnected(&self) -> BoxFuture<'static, ()> {
        Box::pin(self.mux.disconnected())
    }

    fn finish(self: Box<Self>, status: Option<Vec<u8>>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut mux = self.mux;
            mux.drain().await;
            if let Some(status) = status {
                mux.send(ERROR, &status).await;
            }
            mux.close().await;
        })
    }
}

/// Opens the channels on an upgraded connection.
pub(crate) async fn open_streams<S>(io: S, protocol: WsProtocol, wanted: Wanted) -> CommandStreams
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = ChannelConn::new(io, protocol, Role::Server).await;
    let mut inputs = Vec::new();
    if wanted.stdin {
        inputs.push(STDIN);
    }
    if wanted.tty {
        inputs.push(RESIZE);
    }
    let (mut mux, mut readers) = Mux::start(conn, &inputs);
    let first = if wanted.stdout {
        STDOUT
    } else if wanted.stderr {
        STDERR
    } else {
        ERROR
    };
    mux.send(first, &[]).await;
    let stdout = wanted.stdout.then(|| mux.output(STDOUT));
    let stderr = wanted.stderr.then(|| mux.output(STDERR));
    CommandStreams {
        version: protocol.remote_command_version(),
        tty: wanted.tty,
        stdin: readers.remove(&STDIN).map(|r| Box::new(r) as _),
        stdout: stdout.map(|w| Box::new(w) as _),
        stderr: stderr.map(|w| Box::new(w) as _),
        resize: readers.remove(&RESIZE).map(|r| Box::new(r) as _),
        transport: Box::new(WsTransport { mux }),
    }
}
