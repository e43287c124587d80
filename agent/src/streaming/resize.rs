//! Terminal resize messages (v3.channel.k8s.io and later): the client writes
//! a stream of JSON objects `{"Width":W,"Height":H}` on the resize stream or
//! channel. The decoder takes the bytes as they come and yields each
//! complete size; a partial object waits for more bytes.

use serde::{Deserialize, Serialize};

/// Largest partial message kept while waiting for the rest.
const MAX_PENDING: usize = 4096;

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// A malformed resize stream.
#[derive(Debug, thiserror::Error)]
pub enum ResizeError {
    /// not a terminal size object
    #[error("bad resize message: {0}")]
    Json(#[from] serde_json::Error),
    /// an object that never ends
    #[error("resize message longer than {MAX_PENDING} bytes")]
    TooLong,
}

/// Splits a byte stream into terminal sizes.
#[derive(Debug, Default)]
pub struct ResizeDecoder {
    pending: Vec<u8>,
}

impl ResizeDecoder {
    /// A decoder with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes and returns the sizes they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<TerminalSize>, ResizeError> {
        self.pending.extend_from_slice(bytes);
        let mut sizes = Vec::new();
        let mut used = 0;
        let mut iter =
            serde_json::Deserializer::from_slice(&self.pending).into_iter::<TerminalSize>();
        loop {
            match iter.next() {
                Some(Ok(size)) => {
                    sizes.push(size);
                    used = iter.byte_offset();
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => {
                    self.pending.clear();
                    return Err(e.into());
                }
                None => {
                    used = self.pending.len();
                    break;
                }
            }
        }
        self.pending.drain(..used);
        if self.pending.len() > MAX_PENDING {
            self.pending.clear();
            return Err(ResizeError::TooLong);
        }
        Ok(sizes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_split_messages() {
        let mut d = ResizeDecoder::new();
        let wire = br#"{"Width":80,"Height":24}{"Width":120,"Height":40}"#;
        assert_eq!(
            d.feed(wire).unwrap(),
            [
                TerminalSize {
                    width: 80,
                    height: 24
                },
                TerminalSize {
                    width: 120,
                    height: 40
                }
            ]
        );
        let mut got = Vec::new();
        for b in wire.iter() {
            got.extend(d.feed(&[*b]).unwrap());
        }
        assert_eq!(got.len(), 2);
        assert_eq!(
            serde_json::to_string(&got[0]).unwrap(),
            r#"{"Width":80,"Height":24}"#
        );
    }

    #[test]
    fn garbage_is_an_error_and_the_decoder_recovers() {
        let mut d = ResizeDecoder::new();
        assert!(d.feed(br#""wide""#).is_err());
        assert!(d.feed(br#"{"Width":-1,"Height":2}"#).is_err());
        assert_eq!(d.feed(b" \n").unwrap(), []);
        assert_eq!(d.feed(br#"{"Width":1,"Height":2}"#).unwrap().len(), 1);
        assert!(matches!(
            d.feed(&[b'{'; 5000]),
            Err(ResizeError::TooLong) | Err(ResizeError::Json(_))
        ));
    }
}
