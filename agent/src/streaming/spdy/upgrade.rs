//! The HTTP/1.1 upgrade to SPDY/3.1, as pure functions over the request
//! headers: the request must carry `Connection: Upgrade` and
//! `Upgrade: SPDY/3.1`, and lists the subprotocols it speaks in
//! `X-Stream-Protocol-Version`. The reply is `101 Switching Protocols` naming
//! the chosen one, or `403 Forbidden` listing the accepted ones in
//! `X-Accepted-Stream-Protocol-Versions` when nothing matches.

use http::{HeaderMap, Response, StatusCode};

use crate::streaming::protocol::{header_list, negotiate, wants_upgrade};

/// The `Upgrade` token for SPDY/3.1.
pub const UPGRADE_TOKEN: &str = "SPDY/3.1";
/// The request header listing the client's subprotocols, and the response
/// header naming the chosen one.
pub const PROTOCOL_VERSION_HEADER: &str = "x-stream-protocol-version";
/// The response header listing the server's subprotocols after a refusal.
pub const ACCEPTED_VERSIONS_HEADER: &str = "x-accepted-stream-protocol-versions";

/// Why an upgrade is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    /// no `Connection: Upgrade`
    #[error("unable to upgrade: missing upgrade headers in request")]
    NotUpgrade,
    /// `Upgrade` names another protocol
    #[error("unable to upgrade: unsupported upgrade protocol {0:?}, want SPDY/3.1")]
    NotSpdy(String),
    /// no `X-Stream-Protocol-Version` and no legacy fallback
    #[error("unable to upgrade: X-Stream-Protocol-Version is required")]
    NoProtocol,
    /// nothing in common
    #[error("unable to upgrade: unable to negotiate protocol: client supports {client:?}, server accepts {server:?}")]
    NoCommonProtocol {
        client: Vec<String>,
        server: Vec<String>,
    },
}

impl UpgradeError {
    /// The HTTP reply for the refusal.
    pub fn response(&self) -> Response<String> {
        let status = match self {
            UpgradeError::NoCommonProtocol { .. } => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut builder = Response::builder()
            .status(status)
            .header("content-type", "text/plain; charset=utf-8");
        if let UpgradeError::NoCommonProtocol { server, .. } = self {
            for p in server {
                builder = builder.header(ACCEPTED_VERSIONS_HEADER, p.as_str());
            }
        }
        let body = format!("{self}\n");
        builder
            .body(body.clone())
            .unwrap_or_else(|_| Response::new(body))
    }
}

/// An accepted upgrade: the subprotocol and the 101 reply to send before
/// speaking SPDY on the connection.
#[derive(Debug)]
pub struct Accepted<'s> {
    pub protocol: &'s str,
    pub response: Response<Vec<u8>>,
}

/// Checks an upgrade request against the `server` subprotocols (in the
/// server's preference; the client's order decides). `legacy` is the
/// protocol assumed when the client names none (old clients did not
/// negotiate); `None` refuses such clients.
pub fn accept<'s>(
    headers: &HeaderMap,
    server: &[&'s str],
    legacy: Option<&'s str>,
) -> Result<Accepted<'s>, UpgradeError> {
    if !wants_upgrade(headers) {
        return Err(UpgradeError::NotUpgrade);
    }
    let upgrade = header_list(headers, "upgrade");
    if !upgrade
        .iter()
        .any(|u| u.eq_ignore_ascii_case(UPGRADE_TOKEN))
    {
        return Err(if upgrade.is_empty() {
            UpgradeError::NotUpgrade
        } else {
            UpgradeError::NotSpdy(upgrade.join(", "))
        });
    }
    let client = header_list(headers, PROTOCOL_VERSION_HEADER);
    let protocol = if client.is_empty() {
        legacy.ok_or(UpgradeError::NoProtocol)?
    } else {
        negotiate(client.iter().copied(), server).ok_or_else(|| UpgradeError::NoCommonProtocol {
            client: client.iter().map(|s| s.to_string()).collect(),
            server: server.iter().map(|s| s.to_string()).collect(),
        })?
    };
    let mut builder = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "Upgrade")
        .header("upgrade", UPGRADE_TOKEN);
    if !client.is_empty() {
        builder = builder.header(PROTOCOL_VERSION_HEADER, protocol);
    }
    let response = builder
        .body(Vec::new())
        .map_err(|_| UpgradeError::NotUpgrade)?;
    Ok(Accepted { protocol, response })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streaming::protocol::{
        http1_bytes, PORT_FORWARD_V1, REMOTE_COMMAND_V1, REMOTE_COMMAND_V3, SPDY_PORT_FORWARD,
        SPDY_REMOTE_COMMAND,
    };
    use http::HeaderValue;

    fn request(protocols: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("SPDY/3.1"));
        for p in protocols {
            h.append("X-Stream-Protocol-Version", HeaderValue::from_static(p));
        }
        h
    }

    #[test]
    fn accepts_the_clients_first_supported_protocol() {
        let h = request(&[
            "v5.channel.k8s.io",
            "v3.channel.k8s.io",
            "v4.channel.k8s.io",
        ]);
        let a = accept(&h, SPDY_REMOTE_COMMAND, None).unwrap();
        assert_eq!(a.protocol, REMOTE_COMMAND_V3);
        assert_eq!(a.response.status(), 101);
        let wire = String::from_utf8(http1_bytes(&a.response)).unwrap();
        assert_eq!(
            wire,
            "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: SPDY/3.1\r\n\
             x-stream-protocol-version: v3.channel.k8s.io\r\n\r\n"
        );
        let a = accept(&request(&["portforward.k8s.io"]), SPDY_PORT_FORWARD, None).unwrap();
        assert_eq!(a.protocol, PORT_FORWARD_V1);
    }

    #[test]
    fn legacy_clients_fall_back_or_are_refused() {
        let a = accept(&request(&[]), SPDY_REMOTE_COMMAND, Some(REMOTE_COMMAND_V1)).unwrap();
        assert_eq!(a.protocol, REMOTE_COMMAND_V1);
        assert!(!a.response.headers().contains_key(PROTOCOL_VERSION_HEADER));
        assert_eq!(
            accept(&request(&[]), SPDY_REMOTE_COMMAND, None).unwrap_err(),
            UpgradeError::NoProtocol
        );
    }

    #[test]
    fn refusals() {
        let err = accept(&request(&["v9.channel.k8s.io"]), SPDY_REMOTE_COMMAND, None).unwrap_err();
        let r = err.response();
        assert_eq!(r.status(), 403);
        let accepted: Vec<_> = r
            .headers()
            .get_all(ACCEPTED_VERSIONS_HEADER)
            .iter()
            .collect();
        assert_eq!(accepted.len(), 4);
        assert!(r.body().contains("client supports [\"v9.channel.k8s.io\"]"));

        let mut h = request(&["v4.channel.k8s.io"]);
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        assert_eq!(
            accept(&h, SPDY_REMOTE_COMMAND, None).unwrap_err(),
            UpgradeError::NotSpdy("websocket".into())
        );
        h.remove("connection");
        let err = accept(&h, SPDY_REMOTE_COMMAND, None).unwrap_err();
        assert_eq!(err, UpgradeError::NotUpgrade);
        assert_eq!(err.response().status(), 400);
    }
}
