//! Channel multiplexing for the Kubernetes WebSocket protocols, as pure
//! functions. Binary protocols (`channel.k8s.io`, `v4.channel.k8s.io`,
//! `v5.channel.k8s.io`) prefix each binary message with the channel number;
//! base64 ones (`base64.channel.k8s.io`, `v4.base64.channel.k8s.io`) send text
//! messages of the channel digit and the base64 payload. Under v5 a binary
//! message `[255, channel]` closes that channel's stream (as end-of-file).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Remote-command channel numbers.
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// The v5 close-stream marker.
pub const CLOSE: u8 = 255;

/// How messages carry their payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Binary messages, channel byte first.
    Binary,
    /// Text messages, channel digit first, then base64.
    Base64,
}

/// A decoded channel message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelMessage {
    /// Bytes for a channel.
    Data { channel: u8, payload: Vec<u8> },
    /// v5: the peer closed its side of a channel.
    Close { channel: u8 },
}

/// A message that does not follow the channel protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// a message without a channel
    #[error("empty websocket message: no channel")]
    Empty,
    /// a v5 close message of the wrong length
    #[error("close message of {0} bytes, want 2")]
    BadClose(usize),
    /// a close message on a protocol without them
    #[error("close message on a protocol before v5")]
    CloseNotSupported,
    /// a base64 message whose channel is not a digit
    #[error("base64 message with channel {0:?}")]
    BadChannelDigit(char),
    /// a base64 payload that does not decode
    #[error("base64 payload: {0}")]
    Base64(String),
    /// a text message on a binary protocol, or binary on a base64 one
    #[error("{0} message on a {1:?} protocol")]
    WrongKind(&'static str, Encoding),
}

/// A binary message for `channel`.
pub fn binary(channel: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 1);
    out.push(channel);
    out.extend_from_slice(payload);
    out
}

/// A base64 text message for `channel` (channels 0 to 9).
pub fn base64_text(channel: u8, payload: &[u8]) -> String {
    let mut out = String::with_capacity(payload.len() * 4 / 3 + 4);
    out.push(char::from(b'0' + channel % 10));
    STANDARD.encode_string(payload, &mut out);
    out
}

/// The v5 message closing `channel`.
pub fn close(channel: u8) -> [u8; 2] {
    [CLOSE, channel]
}

/// Decodes a binary message; `close_supported` is true under v5.
pub fn decode_binary(msg: &[u8], close_supported: bool) -> Result<ChannelMessage, ChannelError> {
    let (&channel, payload) = msg.split_first().ok_or(ChannelError::Empty)?;
    if channel == CLOSE && close_supported {
        return match payload {
            [channel] => Ok(ChannelMessage::Close { channel: *channel }),
            _ => Err(ChannelError::BadClose(msg.len())),
        };
    }
    Ok(ChannelMessage::Data {
        channel,
        payload: payload.to_vec(),
    })
}

/// Decodes a base64 text message.
pub fn decode_base64(msg: &str) -> Result<ChannelMessage, ChannelError> {
    let mut chars = msg.chars();
    let first = chars.next().ok_or(ChannelError::Empty)?;
    let channel = first
        .to_digit(10)
        .ok_or(ChannelError::BadChannelDigit(first))? as u8;
    let payload = STANDARD
        .decode(chars.as_str())
        .map_err(|e| ChannelError::Base64(e.to_string()))?;
    Ok(ChannelMessage::Data { channel, payload })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_round_trip() {
        let m = binary(STDOUT, b"hello");
        assert_eq!(m, b"\x01hello");
        assert_eq!(
            decode_binary(&m, false).unwrap(),
            ChannelMessage::Data {
                channel: STDOUT,
                payload: b"hello".to_vec()
            }
        );
        assert_eq!(
            decode_binary(&[STDIN], true).unwrap(),
            ChannelMessage::Data {
                channel: STDIN,
                payload: vec![]
            }
        );
        assert_eq!(decode_binary(&[], true), Err(ChannelError::Empty));
    }

    #[test]
    fn v5_close() {
        assert_eq!(close(STDIN), [255, 0]);
        assert_eq!(
            decode_binary(&close(STDIN), true).unwrap(),
            ChannelMessage::Close { channel: STDIN }
        );
        assert_eq!(decode_binary(&[255], true), Err(ChannelError::BadClose(1)));
        assert_eq!(
            decode_binary(&[255, 0, 1], true),
            Err(ChannelError::BadClose(3))
        );
        // Before v5, 255 is an ordinary channel number.
        assert_eq!(
            decode_binary(&[255, 0], false).unwrap(),
            ChannelMessage::Data {
                channel: 255,
                payload: vec![0]
            }
        );
    }

    #[test]
    fn base64_round_trip() {
        let m = base64_text(STDERR, b"oops\n");
        assert_eq!(m, "2b29wcwo=");
        assert_eq!(
            decode_base64(&m).unwrap(),
            ChannelMessage::Data {
                channel: STDERR,
                payload: b"oops\n".to_vec()
            }
        );
        assert_eq!(decode_base64("x"), Err(ChannelError::BadChannelDigit('x')));
        assert!(matches!(
            decode_base64("1%%%"),
            Err(ChannelError::Base64(_))
        ));
        assert_eq!(decode_base64(""), Err(ChannelError::Empty));
    }
}
