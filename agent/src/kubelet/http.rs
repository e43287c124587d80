//! The HTTP GET that httpGet probes and hooks make from the host, as
//! kubelet's prober: HTTP/1.1, `Connection: close`, its `User-Agent:
//! kube-probe/<version>` and `Accept: */*` unless the headers set them, the
//! Host header from a `Host` entry or `host:port`; over TLS for HTTPS
//! (see [`super::tls`]). Only the status line is read: 200..400 is success.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The prober's User-Agent.
pub const USER_AGENT: &str = "kube-probe/1.37";

/// The request text for `GET path` to `host:port` with extra `headers`.
pub fn request(host: &str, port: u16, path: &str, headers: &[(String, String)]) -> String {
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut r = format!("GET {path} HTTP/1.1\r\n");
    if !has("host") {
        r.push_str(&format!("Host: {host_header}\r\n"));
    }
    if !has("user-agent") {
        r.push_str(&format!("User-Agent: {USER_AGENT}\r\n"));
    }
    if !has("accept") {
        r.push_str("Accept: */*\r\n");
    }
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("Connection: close\r\n\r\n");
    r
}

/// The status code of an HTTP response's first line.
pub fn status_code(head: &str) -> Option<u16> {
    let line = head.lines().next()?;
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Sends the request on `s` and reads the status code.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    request: &str,
) -> Result<u16, String> {
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    while !buf.contains(&b'\n') && buf.len() < 4096 {
        let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    status_code(&head).ok_or_else(|| "malformed HTTP response".to_string())
}

/// GETs `path` from `host:port` (over TLS when `https`) within `timeout`;
/// the status code.
pub async fn get(
    https: bool,
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<u16, String> {
    let work = async {
        let s = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("dial {host}:{port}: {e}"))?;
        let req = request(host, port, path, headers);
        if https {
            exchange(super::tls::connect(s, host).await?, &req).await
        } else {
            exchange(s, &req).await
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("timeout after {}s", timeout.as_secs_f32()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_headers() {
        let r = request(
            "10.0.0.2",
            8080,
            "/healthz",
            &[("X-Probe".into(), "1".into())],
        );
        assert!(r.starts_with("GET /healthz HTTP/1.1\r\nHost: 10.0.0.2:8080\r\n"));
        assert!(r.contains("User-Agent: kube-probe/1.37\r\n"));
        assert!(r.contains("X-Probe: 1\r\n"));
        assert!(r.ends_with("Connection: close\r\n\r\n"));
        let r = request("h", 1, "/", &[("Host".into(), "web".into())]);
        assert!(!r.contains("Host: h:1"));
        assert!(r.contains("Host: web\r\n"));
        assert!(request("fd00::1", 80, "/", &[]).contains("Host: [fd00::1]:80"));
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code("HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_code("HTTP/1.0 404\r\n"), Some(404));
        assert_eq!(status_code("SSH-2.0\r\n"), None);
    }

    #[tokio::test]
    async fn get_from_a_local_server() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 503 Unavailable\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let code = get(false, "127.0.0.1", port, "/x", &[], Duration::from_secs(5)).await;
        assert_eq!(code, Ok(503));
        assert!(server.await.unwrap().starts_with("GET /x HTTP/1.1"));
    }
}
