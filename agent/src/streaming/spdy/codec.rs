//! The SPDY frame codec over bytes: an incremental parser that takes whatever
//! part of the stream has arrived and answers "need more", "a frame" or a
//! protocol error (never a panic), with a cap on frame size checked as soon as
//! the 8-byte header is in; and the matching encoder. Each owns one direction's
//! header compression context.

use bytes::{Buf, Bytes, BytesMut};

use super::frame::{Frame, FrameError, FrameHeader, HEADER_LEN};
use super::header_block::{HeaderBlockError, HeaderCompressor, HeaderDecompressor};

/// Default cap on a frame's payload (DATA frames are further bounded by the
/// flow-control window, control frames by this).
pub const DEFAULT_MAX_FRAME_LEN: usize = 1 << 20;
/// Default cap on a decompressed header block.
pub const DEFAULT_MAX_HEADER_BLOCK: usize = 256 << 10;

/// Errors that end a connection: after one, the byte stream cannot be trusted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// a frame header announces more than the cap
    #[error("frame of {len} bytes exceeds the {max}-byte cap")]
    FrameTooLarge { len: usize, max: usize },
    /// a frame is malformed
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// The outcome of one parse step.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// At least this many more bytes are needed.
    NeedMore(usize),
    /// A frame, and how many bytes of the input it used.
    Frame(Frame, usize),
}

/// Parses frames from received bytes.
pub struct FrameDecoder {
    inflate: HeaderDecompressor,
    max_frame_len: usize,
}

impl FrameDecoder {
    /// A decoder with the default caps.
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_FRAME_LEN, DEFAULT_MAX_HEADER_BLOCK)
    }

    /// A decoder with explicit caps on frame payloads and header blocks.
    pub fn with_limits(max_frame_len: usize, max_header_block: usize) -> Self {
        Self {
            inflate: HeaderDecompressor::new(max_header_block),
            max_frame_len,
        }
    }

    /// Parses one frame from the start of `buf` without consuming it.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Decoded, CodecError> {
        let Some(header) = FrameHeader::parse(buf) else {
            return Ok(Decoded::NeedMore(HEADER_LEN - buf.len()));
        };
        let len = header.length();
        if len > self.max_frame_len {
            return Err(CodecError::FrameTooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        let total = HEADER_LEN + len;
        let Some(payload) = buf.get(HEADER_LEN..total) else {
            return Ok(Decoded::NeedMore(total - buf.len()));
        };
        let frame = Frame::decode(header, Bytes::copy_from_slice(payload), &mut self.inflate)?;
        Ok(Decoded::Frame(frame, total))
    }

    /// Takes one frame off the front of `buf` if a whole one is there. DATA
    /// payloads are split off the buffer without copying.
    pub fn decode_buf(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        let Some(header) = FrameHeader::parse(buf) else {
            return Ok(None);
        };
        let len = header.length();
        if len > self.max_frame_len {
            return Err(CodecError::FrameTooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        if buf.len() < HEADER_LEN + len {
            buf.reserve(HEADER_LEN + len - buf.len());
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let payload = buf.split_to(len).freeze();
        Ok(Some(Frame::decode(header, payload, &mut self.inflate)?))
    }
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes frames as bytes.
pub struct FrameEncoder {
    deflate: HeaderCompressor,
}

impl FrameEncoder {
    /// An encoder with a fresh compression context.
    pub fn new() -> Result<Self, HeaderBlockError> {
        Ok(Self {
            deflate: HeaderCompressor::new()?,
        })
    }

    /// Appends `frame` to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), FrameError> {
        frame.encode(&mut self.deflate, out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{GoAwayStatus, RstStatus, Setting};
    use super::super::header_block::Headers;
    use super::*;

    pub(crate) fn sample_frames() -> Vec<Frame> {
        let h = |t: &str| Headers::new().with("streamtype", t).with("requestid", "0");
        vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                slot: 0,
                fin: false,
                unidirectional: false,
                headers: h("stdout"),
            },
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: Headers::new(),
            },
            Frame::Data {
                stream_id: 1,
                fin: false,
                data: Bytes::from_static(b"0123456789"),
            },
            Frame::Settings {
                clear: false,
                entries: vec![Setting {
                    flags: 0,
                    id: 7,
                    value: 1 << 17,
                }],
            },
            Frame::Ping { id: 1 },
            Frame::Headers {
                stream_id: 1,
                fin: true,
                headers: h("stderr"),
            },
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 10,
            },
            Frame::SynStream {
                stream_id: 3,
                associated_to: 0,
                priority: 3,
                slot: 0,
                fin: true,
                unidirectional: false,
                headers: h("error"),
            },
            Frame::RstStream {
                stream_id: 3,
                status: RstStatus::Cancel,
            },
            Frame::GoAway {
                last_good_stream_id: 3,
                status: GoAwayStatus::Ok,
            },
        ]
    }

    pub(crate) fn encode_all(frames: &[Frame]) -> Vec<u8> {
        let mut enc = FrameEncoder::new().unwrap();
        let mut wire = Vec::new();
        for f in frames {
            enc.encode(f, &mut wire).unwrap();
        }
        wire
    }

    #[test]
    fn whole_buffer() {
        let frames = sample_frames();
        let wire = encode_all(&frames);
        let mut dec = FrameDecoder::new();
        let mut at = 0;
        let mut got = Vec::new();
        while at < wire.len() {
            match dec.decode(&wire[at..]).unwrap() {
                Decoded::Frame(f, used) => {
                    got.push(f);
                    at += used;
                }
                Decoded::NeedMore(n) => panic!("needs {n} more at {at}"),
            }
        }
        assert_eq!(got, frames);
        assert_eq!(dec.decode(&[]).unwrap(), Decoded::NeedMore(8));
    }

    #[test]
    fn fed_byte_by_byte() {
        let frames = sample_frames();
        let wire = encode_all(&frames);
        let mut dec = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in &wire {
            buf.extend_from_slice(&[b]);
            while let Some(f) = dec.decode_buf(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(got, frames);
    }

    #[test]
    fn need_more_counts_are_exact() {
        let wire = encode_all(&sample_frames()[2..3]);
        let mut dec = FrameDecoder::new();
        for cut in 0..wire.len() {
            let want = if cut < 8 { 8 - cut } else { wire.len() - cut };
            assert_eq!(dec.decode(&wire[..cut]).unwrap(), Decoded::NeedMore(want));
        }
    }

    #[test]
    fn size_cap_is_checked_from_the_header() {
        let mut dec = FrameDecoder::with_limits(100, 1000);
        let header = [0, 0, 0, 1, 0, 0, 0, 101];
        assert_eq!(
            dec.decode(&header),
            Err(CodecError::FrameTooLarge { len: 101, max: 100 })
        );
        let mut buf = BytesMut::from(&header[..]);
        assert!(dec.decode_buf(&mut buf).is_err());
    }
}
