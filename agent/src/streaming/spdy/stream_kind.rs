//! What a client-opened SPDY stream is for, from its SYN_STREAM headers:
//! `streamtype` is `stdin`, `stdout`, `stderr`, `error` or `resize` for
//! remote commands, and `data` or `error` with `port` and `requestid` for
//! port forwarding (one data and one error stream per forwarded connection,
//! paired by request id). SPDY header names are lowercase on the wire; the
//! lookup ignores case anyway.

use super::header_block::Headers;

/// The stream type header.
pub const STREAM_TYPE: &str = "streamtype";
/// The port-forward port header.
pub const PORT: &str = "port";
/// The port-forward request id header (pairs data and error streams).
pub const REQUEST_ID: &str = "requestid";

/// A remote-command stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandStream {
    Stdin,
    Stdout,
    Stderr,
    Error,
    Resize,
}

/// A port-forward stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStream {
    pub port: u16,
    pub request_id: String,
    /// `true` for the error stream, `false` for data.
    pub error: bool,
}

/// A stream whose headers do not say what it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamKindError {
    /// no `streamtype`
    #[error("stream has no streamtype header")]
    NoType,
    /// a `streamtype` this endpoint does not use
    #[error("unknown stream type {0:?}")]
    UnknownType(String),
    /// a port-forward stream without a usable `port`
    #[error("bad or missing port header {0:?}")]
    BadPort(String),
}

fn stream_type(headers: &Headers) -> Result<&str, StreamKindError> {
    headers.get(STREAM_TYPE).ok_or(StreamKindError::NoType)
}

/// Classifies a remote-command stream.
pub fn command_stream(headers: &Headers) -> Result<CommandStream, StreamKindError> {
    Ok(match stream_type(headers)? {
        "stdin" => CommandStream::Stdin,
        "stdout" => CommandStream::Stdout,
        "stderr" => CommandStream::Stderr,
        "error" => CommandStream::Error,
        "resize" => CommandStream::Resize,
        other => return Err(StreamKindError::UnknownType(other.to_owned())),
    })
}

/// Classifies a port-forward stream.
pub fn port_stream(headers: &Headers) -> Result<PortStream, StreamKindError> {
    let error = match stream_type(headers)? {
        "data" => false,
        "error" => true,
        other => return Err(StreamKindError::UnknownType(other.to_owned())),
    };
    let raw = headers.get(PORT).unwrap_or("");
    let port = raw
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| StreamKindError::BadPort(raw.to_owned()))?;
    Ok(PortStream {
        port,
        request_id: headers.get(REQUEST_ID).unwrap_or("").to_owned(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_streams() {
        for (t, k) in [
            ("stdin", CommandStream::Stdin),
            ("stdout", CommandStream::Stdout),
            ("stderr", CommandStream::Stderr),
            ("error", CommandStream::Error),
            ("resize", CommandStream::Resize),
        ] {
            assert_eq!(command_stream(&Headers::new().with("streamType", t)), Ok(k));
        }
        assert_eq!(
            command_stream(&Headers::new()),
            Err(StreamKindError::NoType)
        );
        assert_eq!(
            command_stream(&Headers::new().with("streamtype", "data")),
            Err(StreamKindError::UnknownType("data".into()))
        );
    }

    #[test]
    fn port_streams() {
        let h = Headers::new()
            .with("streamtype", "error")
            .with("port", "8080")
            .with("requestid", "3");
        assert_eq!(
            port_stream(&h),
            Ok(PortStream {
                port: 8080,
                request_id: "3".into(),
                error: true
            })
        );
        let h = Headers::new().with("streamtype", "data").with("port", "0");
        assert_eq!(port_stream(&h), Err(StreamKindError::BadPort("0".into())));
        let h = Headers::new().with("streamtype", "data");
        assert_eq!(
            port_stream(&h),
            Err(StreamKindError::BadPort(String::new()))
        );
    }
}
