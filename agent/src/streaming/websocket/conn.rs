//! A WebSocket connection speaking a channel protocol, on the transport left
//! after the upgrade (tokio-tungstenite does the RFC 6455 framing, masking,
//! ping/pong and close handshake). Messages go out and come in as channel
//! messages; ping, pong and unknown frames are handled underneath.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::channel::{self, ChannelError, ChannelMessage, Encoding};
use super::upgrade::WsProtocol;

/// Largest message accepted from the peer.
pub const MAX_MESSAGE: usize = 1 << 20;

/// Errors of the channel connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// the WebSocket layer failed
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// the peer broke the channel protocol
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// a close message on a protocol before v5
    #[error("protocol {0:?} cannot close single channels")]
    CloseNotSupported(&'static str),
}

fn encode(protocol: &WsProtocol, ch: u8, payload: &[u8]) -> Message {
    match protocol.encoding {
        Encoding::Binary => Message::binary(channel::binary(ch, payload)),
        Encoding::Base64 => Message::text(channel::base64_text(ch, payload)),
    }
}

/// The channel message in one incoming WebSocket message, if it is one
/// (control frames are not).
fn decode(protocol: &WsProtocol, msg: Message) -> Result<Option<ChannelMessage>, ConnError> {
    Ok(match (msg, protocol.encoding) {
        (Message::Binary(b), Encoding::Binary) => {
            Some(channel::decode_binary(&b, protocol.close_supported)?)
        }
        (Message::Text(t), Encoding::Base64) => Some(channel::decode_base64(t.as_str())?),
        (Message::Binary(_), e) => return Err(ChannelError::WrongKind("binary", e).into()),
        (Message::Text(_), e) => return Err(ChannelError::WrongKind("text", e).into()),
        (Message::Close(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_), _) => None,
    })
}

/// A channel-protocol WebSocket connection.
pub struct ChannelConn<S> {
    ws: WebSocketStream<S>,
    protocol: WsProtocol,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ChannelConn<S> {
    /// Wraps the upgraded transport; `role` is `Server` in berthd and
    /// `Client` for test clients that did their own handshake.
    pub async fn new(io: S, protocol: WsProtocol, role: Role) -> Self {
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        Self {
            ws: WebSocketStream::from_raw_socket(io, role, Some(config)).await,
            protocol,
        }
    }

    /// Wraps a WebSocket whose handshake is done (a client that used
    /// tokio-tungstenite's handshake).
    pub fn from_stream(ws: WebSocketStream<S>, protocol: WsProtocol) -> Self {
        Self { ws, protocol }
    }

    /// The negotiated protocol.
    pub fn protocol(&self) -> WsProtocol {
        self.protocol
    }

    /// Sends `payload` on channel `ch`.
    pub async fn send(&mut self, ch: u8, payload: &[u8]) -> Result<(), ConnError> {
        Ok(self.ws.send(encode(&self.protocol, ch, payload)).await?)
    }

    /// Closes our side of channel `ch` (v5 only).
    pub async fn close_channel(&mut self, ch: u8) -> Result<(), ConnError> {
        if !self.protocol.close_supported {
            return Err(ConnError::CloseNotSupported(self.protocol.name));
        }
        Ok(self
            .ws
            .send(Message::binary(channel::close(ch).to_vec()))
            .await?)
    }

    /// The next channel message; `None` once the peer closes the connection.
    pub async fn recv(&mut self) -> Result<Option<ChannelMessage>, ConnError> {
        next(&mut self.ws, &self.protocol).await
    }

    /// Starts the closing handshake and flushes it.
    pub async fn close(&mut self) -> Result<(), ConnError> {
        match self.ws.close(None).await {
            Ok(()) | Err(tungstenite::Error::ConnectionClosed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Separate sending and receiving halves.
    pub fn split(self) -> (ChannelSender<S>, ChannelReceiver<S>) {
        let (sink, stream) = self.ws.split();
        (
            ChannelSender {
                sink,
                protocol: self.protocol,
            },
            ChannelReceiver {
                stream,
                protocol: self.protocol,
            },
        )
    }
}

async fn next<T>(stream: &mut T, protocol: &WsProtocol) -> Result<Option<ChannelMessage>, ConnError>
where
    T: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    loop {
        let Some(msg) = stream.next().await else {
            return Ok(None);
        };
        let msg = match msg {
            Ok(m) => m,
            Err(tungstenite::Error::ConnectionClosed) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // After a Close the next read sends our reply and then reports the
        // end, so keep reading.
        if let Some(m) = decode(protocol, msg)? {
            return Ok(Some(m));
        }
    }
}

/// The sending half.
pub struct ChannelSender<S> {
    sink: SplitSink<WebSocketStream<S>, Message>,
    protocol: WsProtocol,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ChannelSender<S> {
    /// Sends `payload` on channel `ch`.
    pub async fn send(&mut self, ch: u8, payload: &[u8]) -> Result<(), ConnError> {
        Ok(self.sink.send(encode(&self.protocol, ch, payload)).await?)
    }

    /// Closes our side of channel `ch` (v5 only).
    pub async fn close_channel(&mut self, ch: u8) -> Result<(), ConnError> {
        if !self.protocol.close_supported {
            return Err(ConnError::CloseNotSupported(self.protocol.name));
        }
        Ok(self
            .sink
            .send(Message::binary(channel::close(ch).to_vec()))
            .await?)
    }

    /// Sends a close frame.
    pub async fn close(&mut self) -> Result<(), ConnError> {
        match self.sink.close().await {
            Ok(()) | Err(tungstenite::Error::ConnectionClosed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The receiving half.
pub struct ChannelReceiver<S> {
    stream: SplitStream<WebSocketStream<S>>,
    protocol: WsProtocol,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ChannelReceiver<S> {
    /// The next channel message; `None` once the peer closes.
    pub async fn recv(&mut self) -> Result<Option<ChannelMessage>, ConnError> {
        next(&mut self.stream, &self.protocol).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::channel::{STDERR, STDIN, STDOUT};
    use super::super::port_forward::{port_prefix, ChannelKind, PortChannels};
    use super::super::upgrade::{accept, PORT_FORWARD, REMOTE_COMMAND};
    use super::*;
    use crate::streaming::protocol::http1_bytes;
    use http::{HeaderMap, HeaderName, HeaderValue};
    use std::time::Duration;
    use tokio::io::{duplex, AsyncBufReadExt, AsyncWriteExt, BufReader};

    async fn bounded<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(30), f)
            .await
            .expect("test timed out")
    }

    /// Reads an HTTP request head off `io` into a header map (test only).
    async fn read_request<S: AsyncRead + Unpin>(io: &mut BufReader<S>) -> (String, HeaderMap) {
        let mut line = String::new();
        io.read_line(&mut line).await.unwrap();
        let target = line.split(' ').nth(1).unwrap().to_owned();
        let mut headers = HeaderMap::new();
        loop {
            let mut line = String::new();
            io.read_line(&mut line).await.unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                return (target, headers);
            }
            let (k, v) = line.split_once(':').unwrap();
            headers.append(
                HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                HeaderValue::from_str(v.trim()).unwrap(),
            );
        }
    }

    #[tokio::test]
    async fn v5_exec_through_a_real_handshake() {
        bounded(async {
            let (a, b) = duplex(1 << 16);
            let server = tokio::spawn(async move {
                let mut io = BufReader::new(a);
                let (_, headers) = read_request(&mut io).await;
                let accepted = accept(&headers, REMOTE_COMMAND, false).unwrap();
                io.write_all(&http1_bytes(&accepted.response))
                    .await
                    .unwrap();
                let mut conn = ChannelConn::new(io, accepted.protocol, Role::Server).await;
                assert_eq!(conn.protocol().name, "v5.channel.k8s.io");
                // Echo stdin to stdout until stdin is closed, then report.
                let mut input = Vec::new();
                loop {
                    match conn.recv().await.unwrap().unwrap() {
                        ChannelMessage::Data {
                            channel: STDIN,
                            payload,
                        } => {
                            conn.send(STDOUT, &payload).await.unwrap();
                            input.extend(payload);
                        }
                        ChannelMessage::Close { channel: STDIN } => break,
                        other => panic!("unexpected {other:?}"),
                    }
                }
                conn.send(STDERR, b"done").await.unwrap();
                conn.close_channel(STDOUT).await.unwrap();
                conn.close().await.unwrap();
                assert_eq!(conn.recv().await.unwrap(), None);
                input
            });

            let mut request = "ws://localhost/exec?command=cat".into_client_request_for_test();
            request.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static("v5.channel.k8s.io, v4.channel.k8s.io"),
            );
            let (ws, response) = tokio_tungstenite::client_async(request, b).await.unwrap();
            assert_eq!(
                response.headers()["sec-websocket-protocol"],
                "v5.channel.k8s.io"
            );
            let (mut tx, mut rx) = ws.split();
            tx.send(Message::binary(channel::binary(STDIN, b"ab")))
                .await
                .unwrap();
            tx.send(Message::Ping(b"p".to_vec().into())).await.unwrap();
            tx.send(Message::binary(channel::binary(STDIN, b"cd")))
                .await
                .unwrap();
            tx.send(Message::binary(channel::close(STDIN).to_vec()))
                .await
                .unwrap();
            let mut seen = Vec::new();
            // Read on past the Close so that the reply goes out.
            while let Some(Ok(msg)) = rx.next().await {
                match msg {
                    Message::Binary(b) => seen.push(b.to_vec()),
                    Message::Pong(p) => assert_eq!(&p[..], b"p"),
                    Message::Close(_) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            assert_eq!(
                seen,
                [
                    b"\x01ab".to_vec(),
                    b"\x01cd".to_vec(),
                    b"\x02done".to_vec(),
                    vec![255, 1]
                ]
            );
            assert_eq!(server.await.unwrap(), b"abcd");
        })
        .await;
    }

    #[tokio::test]
    async fn port_forward_channels_and_prefixes() {
        bounded(async {
            let (a, b) = duplex(1 << 16);
            let ports = PortChannels::from_query("port=8080&port=22").unwrap();
            let server_ports = ports.clone();
            let server = tokio::spawn(async move {
                let conn = ChannelConn::new(a, PORT_FORWARD[0], Role::Server).await;
                let (mut tx, mut rx) = conn.split();
                for (i, port) in server_ports.ports().iter().enumerate() {
                    for kind in [ChannelKind::Data, ChannelKind::Error] {
                        let ch = server_ports.channel(i, kind).unwrap();
                        tx.send(ch, &port_prefix(*port)).await.unwrap();
                    }
                }
                // Data in on port 22's channel comes back on it.
                let ChannelMessage::Data { channel, payload } = rx.recv().await.unwrap().unwrap()
                else {
                    panic!("not data");
                };
                assert_eq!(server_ports.lookup(channel), Some((22, ChannelKind::Data)));
                tx.send(channel, &payload).await.unwrap();
                assert!(tx.close_channel(channel).await.is_err());
                tx.close().await.unwrap();
                assert_eq!(rx.recv().await.unwrap(), None);
            });
            let mut client = ChannelConn::new(b, PORT_FORWARD[0], Role::Client).await;
            for expect in [(0, 8080), (1, 8080), (2, 22), (3, 22)] {
                let msg = client.recv().await.unwrap().unwrap();
                assert_eq!(
                    msg,
                    ChannelMessage::Data {
                        channel: expect.0,
                        payload: port_prefix(expect.1).to_vec()
                    }
                );
            }
            client.send(2, b"SSH-2.0").await.unwrap();
            assert_eq!(
                client.recv().await.unwrap().unwrap(),
                ChannelMessage::Data {
                    channel: 2,
                    payload: b"SSH-2.0".to_vec()
                }
            );
            assert_eq!(client.recv().await.unwrap(), None);
            server.await.unwrap();
        })
        .await;
    }

    #[tokio::test]
    async fn base64_protocol_and_protocol_violations() {
        bounded(async {
            let (a, b) = duplex(1 << 16);
            let proto = REMOTE_COMMAND[2];
            assert_eq!(proto.encoding, Encoding::Base64);
            let server = tokio::spawn(async move {
                let mut conn = ChannelConn::new(a, proto, Role::Server).await;
                let first = conn.recv().await.unwrap().unwrap();
                conn.send(STDOUT, b"out").await.unwrap();
                let err = conn.recv().await.unwrap_err();
                (first, err.to_string())
            });
            let mut ws = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
            ws.send(Message::text("0aGk=")).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("1b3V0"));
            ws.send(Message::binary(vec![0, 1])).await.unwrap();
            let (first, err) = server.await.unwrap();
            assert_eq!(
                first,
                ChannelMessage::Data {
                    channel: STDIN,
                    payload: b"hi".to_vec()
                }
            );
            assert!(err.contains("binary message"), "{err}");
        })
        .await;
    }

    trait TestRequest {
        fn into_client_request_for_test(self) -> http::Request<()>;
    }

    impl TestRequest for &str {
        fn into_client_request_for_test(self) -> http::Request<()> {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            self.into_client_request().unwrap()
        }
    }
}
