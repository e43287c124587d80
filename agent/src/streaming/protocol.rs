//! The Kubernetes streaming subprotocol names, what each remote-command
//! version adds, the negotiation rule shared by the SPDY and WebSocket
//! upgrades (the first protocol in the client's order that the server
//! supports), and the HTTP/1.1 serialisation of an upgrade response.

use http::{HeaderMap, Response};

/// Remote command (exec/attach), version 1: stdin/stdout/stderr and an
/// error stream carrying plain text.
pub const REMOTE_COMMAND_V1: &str = "channel.k8s.io";
/// Version 2: stream creation is signalled differently; still text errors.
pub const REMOTE_COMMAND_V2: &str = "v2.channel.k8s.io";
/// Version 3: adds the terminal resize stream.
pub const REMOTE_COMMAND_V3: &str = "v3.channel.k8s.io";
/// Version 4: the error stream carries a JSON `metav1.Status` with the exit code.
pub const REMOTE_COMMAND_V4: &str = "v4.channel.k8s.io";
/// Version 5 (WebSocket only): adds the stream close message.
pub const REMOTE_COMMAND_V5: &str = "v5.channel.k8s.io";
/// Port forwarding over SPDY.
pub const PORT_FORWARD_V1: &str = "portforward.k8s.io";

/// What berth's SPDY remote-command endpoint accepts, newest first.
pub const SPDY_REMOTE_COMMAND: &[&str] = &[
    REMOTE_COMMAND_V4,
    REMOTE_COMMAND_V3,
    REMOTE_COMMAND_V2,
    REMOTE_COMMAND_V1,
];
/// What berth's SPDY port-forward endpoint accepts.
pub const SPDY_PORT_FORWARD: &[&str] = &[PORT_FORWARD_V1];

/// A remote-command protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RemoteCommandVersion {
    V1,
    V2,
    V3,
    V4,
    V5,
}

impl RemoteCommandVersion {
    /// The version a subprotocol name stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            REMOTE_COMMAND_V1 => Self::V1,
            REMOTE_COMMAND_V2 => Self::V2,
            REMOTE_COMMAND_V3 => Self::V3,
            REMOTE_COMMAND_V4 => Self::V4,
            REMOTE_COMMAND_V5 => Self::V5,
            _ => return None,
        })
    }

    /// The subprotocol name.
    pub fn name(self) -> &'static str {
        match self {
            Self::V1 => REMOTE_COMMAND_V1,
            Self::V2 => REMOTE_COMMAND_V2,
            Self::V3 => REMOTE_COMMAND_V3,
            Self::V4 => REMOTE_COMMAND_V4,
            Self::V5 => REMOTE_COMMAND_V5,
        }
    }

    /// Whether the client may send terminal sizes on a resize stream.
    pub fn has_resize(self) -> bool {
        self >= Self::V3
    }

    /// Whether the error stream carries a JSON status (else plain text).
    pub fn json_status(self) -> bool {
        self >= Self::V4
    }

    /// Whether streams can be closed one by one (WebSocket close message).
    pub fn has_close(self) -> bool {
        self >= Self::V5
    }
}

/// The first protocol in the client's order that the server also supports.
pub fn negotiate<'s, 'c>(
    client: impl IntoIterator<Item = &'c str>,
    server: &[&'s str],
) -> Option<&'s str> {
    client
        .into_iter()
        .find_map(|c| server.iter().find(|s| **s == c).copied())
}

/// Every value of `name` in `headers`, with comma-separated lists split and
/// items trimmed (clients send either form).
pub fn header_list<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// Whether the `Connection` header names the `upgrade` option.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    header_list(headers, "connection")
        .iter()
        .any(|v| v.eq_ignore_ascii_case("upgrade"))
}

/// The HTTP/1.1 wire form of a response head and its body, for servers that
/// write the upgrade reply on the raw connection.
pub fn http1_bytes<B: AsRef<[u8]>>(response: &Response<B>) -> Vec<u8> {
    let status = response.status();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
    .into_bytes();
    for (name, value) in response.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let body = response.body().as_ref();
    if !status.is_informational() && !response.headers().contains_key("content-length") {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn versions() {
        for v in [
            RemoteCommandVersion::V1,
            RemoteCommandVersion::V2,
            RemoteCommandVersion::V3,
            RemoteCommandVersion::V4,
            RemoteCommandVersion::V5,
        ] {
            assert_eq!(RemoteCommandVersion::from_name(v.name()), Some(v));
        }
        assert!(!RemoteCommandVersion::V2.has_resize());
        assert!(RemoteCommandVersion::V3.has_resize());
        assert!(!RemoteCommandVersion::V3.json_status());
        assert!(RemoteCommandVersion::V4.json_status());
        assert!(!RemoteCommandVersion::V4.has_close());
        assert!(RemoteCommandVersion::V5.has_close());
        assert_eq!(RemoteCommandVersion::from_name("v6.channel.k8s.io"), None);
    }

    #[test]
    fn client_order_wins() {
        assert_eq!(
            negotiate(
                ["v2.channel.k8s.io", "v4.channel.k8s.io"],
                SPDY_REMOTE_COMMAND
            ),
            Some(REMOTE_COMMAND_V2)
        );
        assert_eq!(negotiate(["v9.channel.k8s.io"], SPDY_REMOTE_COMMAND), None);
        assert_eq!(negotiate([], SPDY_PORT_FORWARD), None);
    }

    #[test]
    fn header_lists_and_connection() {
        let mut h = HeaderMap::new();
        h.append(
            "x-stream-protocol-version",
            HeaderValue::from_static("v4.channel.k8s.io"),
        );
        h.append(
            "x-stream-protocol-version",
            HeaderValue::from_static("v3.channel.k8s.io, v2.channel.k8s.io"),
        );
        assert_eq!(
            header_list(&h, "X-Stream-Protocol-Version"),
            [
                "v4.channel.k8s.io",
                "v3.channel.k8s.io",
                "v2.channel.k8s.io"
            ]
        );
        assert!(!wants_upgrade(&h));
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(wants_upgrade(&h));
    }

    #[test]
    fn http1_serialisation() {
        let r = Response::builder()
            .status(101)
            .header("upgrade", "SPDY/3.1")
            .body(Vec::new())
            .unwrap();
        assert_eq!(
            http1_bytes(&r),
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: SPDY/3.1\r\n\r\n"
        );
        let r = Response::builder().status(403).body("no").unwrap();
        assert_eq!(
            http1_bytes(&r),
            b"HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\n\r\nno"
        );
    }
}
