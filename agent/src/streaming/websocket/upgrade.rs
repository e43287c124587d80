//! The WebSocket upgrade for the Kubernetes channel protocols, as pure
//! functions over the request headers (RFC 6455 section 4.2): `Upgrade:
//! websocket`, `Connection: Upgrade`, `Sec-WebSocket-Version: 13` and a
//! 16-byte `Sec-WebSocket-Key`; the subprotocol is the first of the client's
//! `Sec-WebSocket-Protocol` list that the server supports. A client that
//! names none gets the unnamed binary protocol where the endpoint allows it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderMap, Response, StatusCode};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::channel::Encoding;
use crate::streaming::protocol::{
    header_list, negotiate, wants_upgrade, RemoteCommandVersion, REMOTE_COMMAND_V1,
    REMOTE_COMMAND_V4, REMOTE_COMMAND_V5,
};

/// A channel subprotocol and how it frames messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsProtocol {
    /// The `Sec-WebSocket-Protocol` name; empty for the unnamed protocol.
    pub name: &'static str,
    pub encoding: Encoding,
    /// Whether `[255, channel]` closes a channel (v5).
    pub close_supported: bool,
}

impl WsProtocol {
    /// The remote-command version this protocol stands for: its status
    /// format (JSON from v4 on) and whether channels close (v5).
    pub fn remote_command_version(&self) -> RemoteCommandVersion {
        match self.name {
            REMOTE_COMMAND_V5 => RemoteCommandVersion::V5,
            REMOTE_COMMAND_V4 | BASE64_V4 => RemoteCommandVersion::V4,
            _ => RemoteCommandVersion::V1,
        }
    }
}

const fn proto(name: &'static str, encoding: Encoding, close_supported: bool) -> WsProtocol {
    WsProtocol {
        name,
        encoding,
        close_supported,
    }
}

/// `base64.channel.k8s.io`.
pub const BASE64_V1: &str = "base64.channel.k8s.io";
/// `v4.base64.channel.k8s.io`.
pub const BASE64_V4: &str = "v4.base64.channel.k8s.io";

/// The unnamed protocol: binary channels, no close messages.
pub const UNNAMED: WsProtocol = proto("", Encoding::Binary, false);
/// What the remote-command endpoint accepts, newest first.
pub const REMOTE_COMMAND: &[WsProtocol] = &[
    proto(REMOTE_COMMAND_V5, Encoding::Binary, true),
    proto(REMOTE_COMMAND_V4, Encoding::Binary, false),
    proto(BASE64_V4, Encoding::Base64, false),
    proto(REMOTE_COMMAND_V1, Encoding::Binary, false),
    proto(BASE64_V1, Encoding::Base64, false),
];
/// What the port-forward endpoint accepts.
pub const PORT_FORWARD: &[WsProtocol] = &[
    proto(REMOTE_COMMAND_V4, Encoding::Binary, false),
    proto(BASE64_V4, Encoding::Base64, false),
];
/// The port-forward endpoint's protocols with the SPDY tunnel
/// (`SPDY/3.1+portforward.k8s.io`) first: a binary protocol whose messages
/// carry SPDY, not channels (see `tunnel`).
pub const PORT_FORWARD_WITH_TUNNEL: &[WsProtocol] = &[
    proto(super::tunnel::SPDY_PORT_FORWARD, Encoding::Binary, false),
    proto(REMOTE_COMMAND_V4, Encoding::Binary, false),
    proto(BASE64_V4, Encoding::Base64, false),
];

/// Why a WebSocket upgrade is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    /// not `Connection: Upgrade` + `Upgrade: websocket`
    #[error("not a websocket upgrade request")]
    NotWebSocket,
    /// another protocol version
    #[error("unsupported Sec-WebSocket-Version {0:?}, want 13")]
    Version(String),
    /// a missing or malformed key
    #[error("missing or malformed Sec-WebSocket-Key")]
    BadKey,
    /// no subprotocol in common
    #[error("requested protocol(s) are not supported: {client:?}; supports {server:?}")]
    NoCommonProtocol {
        client: Vec<String>,
        server: Vec<String>,
    },
}

impl UpgradeError {
    /// The HTTP reply for the refusal.
    pub fn response(&self) -> Response<String> {
        let mut builder = Response::builder().header("content-type", "text/plain; charset=utf-8");
        builder = match self {
            UpgradeError::Version(_) => builder
                .status(StatusCode::UPGRADE_REQUIRED)
                .header("sec-websocket-version", "13"),
            UpgradeError::NoCommonProtocol { .. } => builder.status(StatusCode::FORBIDDEN),
            _ => builder.status(StatusCode::BAD_REQUEST),
        };
        let body = format!("{self}\n");
        builder
            .body(body.clone())
            .unwrap_or_else(|_| Response::new(body))
    }
}

/// An accepted upgrade: the protocol and the 101 reply.
#[derive(Debug)]
pub struct Accepted {
    pub protocol: WsProtocol,
    pub response: Response<Vec<u8>>,
}

/// Checks a WebSocket upgrade request against `server` protocols;
/// `allow_unnamed` accepts clients that name no subprotocol.
pub fn accept(
    headers: &HeaderMap,
    server: &[WsProtocol],
    allow_unnamed: bool,
) -> Result<Accepted, UpgradeError> {
    let is_ws = header_list(headers, "upgrade")
        .iter()
        .any(|u| u.eq_ignore_ascii_case("websocket"));
    if !wants_upgrade(headers) || !is_ws {
        return Err(UpgradeError::NotWebSocket);
    }
    let version = header_list(headers, "sec-websocket-version");
    if version != ["13"] {
        return Err(UpgradeError::Version(version.join(",")));
    }
    let key = headers
        .get("sec-websocket-key")
        .and_then(|k| k.to_str().ok())
        .map(str::trim)
        .filter(|k| STANDARD.decode(k).is_ok_and(|raw| raw.len() == 16))
        .ok_or(UpgradeError::BadKey)?;
    let client = header_list(headers, "sec-websocket-protocol");
    let protocol = if client.is_empty() && allow_unnamed {
        UNNAMED
    } else {
        let names: Vec<&'static str> = server.iter().map(|p| p.name).collect();
        let chosen = negotiate(client.iter().copied(), &names).ok_or_else(|| {
            UpgradeError::NoCommonProtocol {
                client: client.iter().map(|s| s.to_string()).collect(),
                server: names.iter().map(|s| s.to_string()).collect(),
            }
        })?;
        *server
            .iter()
            .find(|p| p.name == chosen)
            .ok_or(UpgradeError::NotWebSocket)?
    };
    let mut builder = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()));
    if !protocol.name.is_empty() {
        builder = builder.header("sec-websocket-protocol", protocol.name);
    }
    let response = builder.body(Vec::new()).map_err(|_| UpgradeError::BadKey)?;
    Ok(Accepted { protocol, response })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn request(protocols: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("sec-websocket-version", HeaderValue::from_static("13"));
        // The sample nonce of RFC 6455 section 1.3.
        h.insert(
            "sec-websocket-key",
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        if let Some(p) = protocols {
            h.insert("sec-websocket-protocol", HeaderValue::from_static(p));
        }
        h
    }

    #[test]
    fn accepts_and_derives_the_key() {
        let a = accept(
            &request(Some("v5.channel.k8s.io, v4.channel.k8s.io")),
            REMOTE_COMMAND,
            false,
        )
        .unwrap();
        assert_eq!(a.protocol.name, "v5.channel.k8s.io");
        assert!(a.protocol.close_supported);
        let h = a.response.headers();
        assert_eq!(a.response.status(), 101);
        // RFC 6455's sample accept value for that nonce.
        assert_eq!(h["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(h["sec-websocket-protocol"], "v5.channel.k8s.io");
    }

    #[test]
    fn client_order_and_base64() {
        let a = accept(
            &request(Some("v4.base64.channel.k8s.io,v5.channel.k8s.io")),
            REMOTE_COMMAND,
            false,
        )
        .unwrap();
        assert_eq!(a.protocol.encoding, Encoding::Base64);
        let a = accept(&request(Some("v4.channel.k8s.io")), PORT_FORWARD, true).unwrap();
        assert_eq!(a.protocol.name, "v4.channel.k8s.io");
        assert!(!a.protocol.close_supported);
    }

    #[test]
    fn unnamed_protocol() {
        let a = accept(&request(None), PORT_FORWARD, true).unwrap();
        assert_eq!(a.protocol, UNNAMED);
        assert!(!a.response.headers().contains_key("sec-websocket-protocol"));
        assert!(matches!(
            accept(&request(None), REMOTE_COMMAND, false),
            Err(UpgradeError::NoCommonProtocol { .. })
        ));
    }

    #[test]
    fn refusals() {
        let err = accept(&request(Some("v5.channel.k8s.io")), PORT_FORWARD, true).unwrap_err();
        assert_eq!(err.response().status(), 403);
        let mut h = request(None);
        h.insert("sec-websocket-version", HeaderValue::from_static("8"));
        let err = accept(&h, PORT_FORWARD, true).unwrap_err();
        assert_eq!(err, UpgradeError::Version("8".into()));
        assert_eq!(err.response().headers()["sec-websocket-version"], "13");
        let mut h = request(None);
        h.insert("sec-websocket-key", HeaderValue::from_static("c2hvcnQ="));
        assert_eq!(
            accept(&h, PORT_FORWARD, true).unwrap_err(),
            UpgradeError::BadKey
        );
        let mut h = request(None);
        h.insert("upgrade", HeaderValue::from_static("SPDY/3.1"));
        assert_eq!(
            accept(&h, PORT_FORWARD, true).unwrap_err(),
            UpgradeError::NotWebSocket
        );
    }
}
