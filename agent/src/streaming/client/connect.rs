//! The client side of the upgrades: parse the `http://` URL, connect, and
//! either send the SPDY upgrade request and read the `101` head, or do the
//! WebSocket handshake; either way report the subprotocol the server chose.

use http::Uri;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::WebSocketStream;

use super::ClientError;
use crate::streaming::spdy::upgrade::{PROTOCOL_VERSION_HEADER, UPGRADE_TOKEN};

/// Largest response head read.
const MAX_HEAD: usize = 64 << 10;
/// Largest refusal body kept for the error.
const MAX_BODY: usize = 4 << 10;

/// Where a URL points.
pub(super) struct Target {
    pub url: String,
    pub authority: String,
    pub path: String,
}

pub(super) fn parse(url: &str) -> Result<Target, ClientError> {
    let bad = |reason: &str| ClientError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(bad(&format!("scheme {other:?} not supported (http only)"))),
        None => return Err(bad("no scheme")),
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    let authority = match authority.port_u16() {
        Some(_) => authority.to_string(),
        None => format!("{}:80", authority.host()),
    };
    let path = uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.to_string());
    Ok(Target {
        url: url.to_owned(),
        authority,
        path,
    })
}

async fn tcp(target: &Target) -> Result<TcpStream, ClientError> {
    let tcp = TcpStream::connect(&target.authority)
        .await
        .map_err(|source| ClientError::Connect {
            addr: target.authority.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// Upgrades to SPDY/3.1 offering `protocols`; returns the transport (with
/// whatever the server sent after the head) and the chosen protocol.
pub(super) async fn spdy(
    target: &Target,
    protocols: &[String],
) -> Result<(BufReader<TcpStream>, Option<String>), ClientError> {
    let mut io = BufReader::new(tcp(target).await?);
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: {UPGRADE_TOKEN}\r\n",
        target.path, target.authority
    );
    for p in protocols {
        request.push_str(&format!("X-Stream-Protocol-Version: {p}\r\n"));
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    let io_err = |what: &'static str| move |source| ClientError::Io { what, source };
    io.get_mut()
        .write_all(request.as_bytes())
        .await
        .map_err(io_err("sending the upgrade request"))?;
    let bad = |reason: String| ClientError::BadResponse {
        url: target.url.clone(),
        reason,
    };
    let mut status_line = String::new();
    io.read_line(&mut status_line)
        .await
        .map_err(io_err("reading the upgrade response"))?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("status line {:?}", status_line.trim_end())))?;
    let mut headers = Vec::new();
    let mut read = status_line.len();
    loop {
        let mut line = String::new();
        let n = io
            .read_line(&mut line)
            .await
            .map_err(io_err("reading the upgrade response"))?;
        read += n;
        if n == 0 || read > MAX_HEAD {
            return Err(bad("truncated or oversized response head".into()));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if status != 101 {
        let len = header("content-length")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(0)
            .min(MAX_BODY);
        let mut body = vec![0; len];
        let _ = io.read_exact(&mut body).await;
        return Err(ClientError::Refused {
            url: target.url.clone(),
            status,
            body: String::from_utf8_lossy(&body).trim_end().to_owned(),
        });
    }
    let upgrade = header("upgrade").unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case(UPGRADE_TOKEN) {
        return Err(bad(format!("upgraded to {upgrade:?}, not {UPGRADE_TOKEN}")));
    }
    Ok((io, header(PROTOCOL_VERSION_HEADER)))
}

/// Does the WebSocket handshake offering `protocols`; returns the socket and
/// the chosen protocol.
pub(super) async fn websocket(
    target: &Target,
    protocols: &[String],
) -> Result<(WebSocketStream<TcpStream>, Option<String>), ClientError> {
    let ws_url = format!("ws://{}{}", target.authority, target.path);
    let handshake = |source| ClientError::WebSocket {
        url: target.url.clone(),
        source: Box::new(source),
    };
    let mut request = ws_url.into_client_request().map_err(handshake)?;
    if !protocols.is_empty() {
        let value =
            http::HeaderValue::from_str(&protocols.join(", ")).map_err(|e| ClientError::Url {
                url: target.url.clone(),
                reason: format!("protocols: {e}"),
            })?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", value);
    }
    let (ws, response) = tokio_tungstenite::client_async(request, tcp(target).await?)
        .await
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(r) => ClientError::Refused {
                url: target.url.clone(),
                status: r.status().as_u16(),
                body: r
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).trim_end().to_owned())
                    .unwrap_or_default(),
            },
            other => handshake(other),
        })?;
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((ws, protocol))
}
