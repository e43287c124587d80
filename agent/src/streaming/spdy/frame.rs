//! SPDY/3.1 frames: the 8-byte common header, every control frame berth
//! speaks (SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS,
//! WINDOW_UPDATE) and DATA, each with its flags, and their wire encoding.
//!
//! Header blocks are compressed and decompressed by the caller's per-direction
//! contexts ([`HeaderCompressor`], [`HeaderDecompressor`]), passed in, since
//! their state spans the whole connection. Unknown control frame types decode
//! to [`Frame::Unknown`] so that a session can ignore them, as the spec asks.

use bytes::Bytes;

use super::header_block::{HeaderBlockError, HeaderCompressor, HeaderDecompressor, Headers};

/// The protocol version in every control frame.
pub const VERSION: u16 = 3;
/// The size of the common frame header.
pub const HEADER_LEN: usize = 8;
/// The largest length the 24-bit length field can carry.
pub const MAX_LENGTH: usize = 0x00ff_ffff;
/// The largest stream id and window delta (31 bits).
pub const MAX_ID: u32 = 0x7fff_ffff;

/// FLAG_FIN on DATA, SYN_STREAM, SYN_REPLY and HEADERS.
pub const FLAG_FIN: u8 = 0x01;
/// FLAG_UNIDIRECTIONAL on SYN_STREAM.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// FLAG_SETTINGS_CLEAR_SETTINGS on SETTINGS.
pub const FLAG_SETTINGS_CLEAR: u8 = 0x01;

/// Control frame type numbers.
pub mod kind {
    pub const SYN_STREAM: u16 = 1;
    pub const SYN_REPLY: u16 = 2;
    pub const RST_STREAM: u16 = 3;
    pub const SETTINGS: u16 = 4;
    pub const PING: u16 = 6;
    pub const GOAWAY: u16 = 7;
    pub const HEADERS: u16 = 8;
    pub const WINDOW_UPDATE: u16 = 9;
}

/// SETTINGS ids.
pub mod setting {
    pub const UPLOAD_BANDWIDTH: u32 = 1;
    pub const DOWNLOAD_BANDWIDTH: u32 = 2;
    pub const ROUND_TRIP_TIME: u32 = 3;
    pub const MAX_CONCURRENT_STREAMS: u32 = 4;
    pub const CURRENT_CWND: u32 = 5;
    pub const DOWNLOAD_RETRANS_RATE: u32 = 6;
    pub const INITIAL_WINDOW_SIZE: u32 = 7;
    pub const CLIENT_CERTIFICATE_VECTOR_SIZE: u32 = 8;
}

/// Errors from decoding or encoding one frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// a control frame of another SPDY version
    #[error("unsupported SPDY version {0}")]
    UnsupportedVersion(u16),
    /// a payload of the wrong size for its type
    #[error("{frame} frame has a {len}-byte payload, {expected}")]
    BadLength {
        frame: &'static str,
        len: usize,
        expected: &'static str,
    },
    /// stream id 0 where a stream is required
    #[error("{0} frame on stream 0")]
    ZeroStream(&'static str),
    /// a WINDOW_UPDATE with a zero delta
    #[error("WINDOW_UPDATE for stream {0} with a zero delta")]
    ZeroDelta(u32),
    /// an id or delta above 31 bits when encoding
    #[error("{what} {value} does not fit in 31 bits")]
    Over31Bits { what: &'static str, value: u32 },
    /// a payload longer than the 24-bit length field when encoding
    #[error("{frame} payload of {len} bytes exceeds the 24-bit length field")]
    TooLong { frame: &'static str, len: usize },
    /// the header block failed
    #[error("{frame} header block: {source}")]
    HeaderBlock {
        frame: &'static str,
        source: HeaderBlockError,
    },
}

/// RST_STREAM status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RstStatus {
    ProtocolError,
    InvalidStream,
    RefusedStream,
    UnsupportedVersion,
    Cancel,
    InternalError,
    FlowControlError,
    StreamInUse,
    StreamAlreadyClosed,
    FrameTooLarge,
    /// A code this module does not name.
    Other(u32),
}

impl RstStatus {
    const TABLE: [(RstStatus, u32); 10] = [
        (RstStatus::ProtocolError, 1),
        (RstStatus::InvalidStream, 2),
        (RstStatus::RefusedStream, 3),
        (RstStatus::UnsupportedVersion, 4),
        (RstStatus::Cancel, 5),
        (RstStatus::InternalError, 6),
        (RstStatus::FlowControlError, 7),
        (RstStatus::StreamInUse, 8),
        (RstStatus::StreamAlreadyClosed, 9),
        (RstStatus::FrameTooLarge, 11),
    ];

    /// The wire code.
    pub fn code(self) -> u32 {
        match self {
            RstStatus::Other(c) => c,
            named => Self::TABLE
                .iter()
                .find(|(s, _)| *s == named)
                .map_or(0, |(_, c)| *c),
        }
    }

    /// The status for a wire code.
    pub fn from_code(code: u32) -> Self {
        Self::TABLE
            .iter()
            .find(|(_, c)| *c == code)
            .map_or(RstStatus::Other(code), |(s, _)| *s)
    }
}

/// GOAWAY status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoAwayStatus {
    Ok,
    ProtocolError,
    InternalError,
    /// A code this module does not name.
    Other(u32),
}

impl GoAwayStatus {
    /// The wire code.
    pub fn code(self) -> u32 {
        match self {
            GoAwayStatus::Ok => 0,
            GoAwayStatus::ProtocolError => 1,
            GoAwayStatus::InternalError => 2,
            GoAwayStatus::Other(c) => c,
        }
    }

    /// The status for a wire code.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => GoAwayStatus::Ok,
            1 => GoAwayStatus::ProtocolError,
            2 => GoAwayStatus::InternalError,
            c => GoAwayStatus::Other(c),
        }
    }
}

/// One SETTINGS entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// FLAG_SETTINGS_PERSIST_VALUE (1) / FLAG_SETTINGS_PERSISTED (2).
    pub flags: u8,
    /// The 24-bit id (see [`setting`]).
    pub id: u32,
    pub value: u32,
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    SynStream {
        stream_id: u32,
        associated_to: u32,
        /// 0 (highest) to 7.
        priority: u8,
        slot: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: RstStatus,
    },
    Settings {
        clear: bool,
        entries: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: GoAwayStatus,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        /// 0 for the session window.
        stream_id: u32,
        delta: u32,
    },
    /// A control frame type this module does not handle (CREDENTIAL, NOOP,
    /// or future types); sessions ignore it.
    Unknown {
        frame_type: u16,
        flags: u8,
        payload: Bytes,
    },
}

/// The common 8-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameHeader {
    Control {
        version: u16,
        frame_type: u16,
        flags: u8,
        length: usize,
    },
    Data {
        stream_id: u32,
        flags: u8,
        length: usize,
    },
}

impl FrameHeader {
    /// Parses the first 8 bytes of `buf`, if there are that many.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        let h: &[u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
        let word = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let flags = h[4];
        let length = usize::from(h[5]) << 16 | usize::from(h[6]) << 8 | usize::from(h[7]);
        Some(if word & 0x8000_0000 != 0 {
            FrameHeader::Control {
                version: ((word >> 16) & 0x7fff) as u16,
                frame_type: (word & 0xffff) as u16,
                flags,
                length,
            }
        } else {
            FrameHeader::Data {
                stream_id: word & MAX_ID,
                flags,
                length,
            }
        })
    }

    /// The payload length.
    pub fn length(&self) -> usize {
        match *self {
            FrameHeader::Control { length, .. } | FrameHeader::Data { length, .. } => length,
        }
    }
}

fn be32(p: &[u8], at: usize) -> u32 {
    // Callers check lengths first; a short slice reads as zeros.
    match p.get(at..at + 4) {
        Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        None => 0,
    }
}

fn exact(
    frame: &'static str,
    p: &[u8],
    len: usize,
    expected: &'static str,
) -> Result<(), FrameError> {
    if p.len() == len {
        Ok(())
    } else {
        Err(FrameError::BadLength {
            frame,
            len: p.len(),
            expected,
        })
    }
}

fn at_least(
    frame: &'static str,
    p: &[u8],
    len: usize,
    expected: &'static str,
) -> Result<(), FrameError> {
    if p.len() >= len {
        Ok(())
    } else {
        Err(FrameError::BadLength {
            frame,
            len: p.len(),
            expected,
        })
    }
}

fn stream(frame: &'static str, id: u32) -> Result<u32, FrameError> {
    let id = id & MAX_ID;
    if id == 0 {
        Err(FrameError::ZeroStream(frame))
    } else {
        Ok(id)
    }
}

fn headers(
    frame: &'static str,
    block: &[u8],
    z: &mut HeaderDecompressor,
) -> Result<Headers, FrameError> {
    z.decompress(block)
        .map_err(|source| FrameError::HeaderBlock { frame, source })
}

impl Frame {
    /// Decodes a frame from its header and complete payload. Header blocks go
    /// through `z`, and are inflated before any other check fails so that the
    /// connection's compression context stays in step.
    pub fn decode(
        header: FrameHeader,
        payload: Bytes,
        z: &mut HeaderDecompressor,
    ) -> Result<Frame, FrameError> {
        let (version, frame_type, flags) = match header {
            FrameHeader::Data {
                stream_id, flags, ..
            } => {
                return Ok(Frame::Data {
                    stream_id: stream("DATA", stream_id)?,
                    fin: flags & FLAG_FIN != 0,
                    data: payload,
                })
            }
            FrameHeader::Control {
                version,
                frame_type,
                flags,
                ..
            } => (version, frame_type, flags),
        };
        if version != VERSION {
            return Err(FrameError::UnsupportedVersion(version));
        }
        let p = &payload[..];
        let fin = flags & FLAG_FIN != 0;
        Ok(match frame_type {
            kind::SYN_STREAM => {
                at_least("SYN_STREAM", p, 10, "at least 10")?;
                let h = headers("SYN_STREAM", &p[10..], z)?;
                Frame::SynStream {
                    stream_id: stream("SYN_STREAM", be32(p, 0))?,
                    associated_to: be32(p, 4) & MAX_ID,
                    priority: p[8] >> 5,
                    slot: p[9],
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers: h,
                }
            }
            kind::SYN_REPLY => {
                at_least("SYN_REPLY", p, 4, "at least 4")?;
                let h = headers("SYN_REPLY", &p[4..], z)?;
                Frame::SynReply {
                    stream_id: stream("SYN_REPLY", be32(p, 0))?,
                    fin,
                    headers: h,
                }
            }
            kind::HEADERS => {
                at_least("HEADERS", p, 4, "at least 4")?;
                let h = headers("HEADERS", &p[4..], z)?;
                Frame::Headers {
                    stream_id: stream("HEADERS", be32(p, 0))?,
                    fin,
                    headers: h,
                }
            }
            kind::RST_STREAM => {
                exact("RST_STREAM", p, 8, "expected 8")?;
                Frame::RstStream {
                    stream_id: stream("RST_STREAM", be32(p, 0))?,
                    status: RstStatus::from_code(be32(p, 4)),
                }
            }
            kind::SETTINGS => {
                at_least("SETTINGS", p, 4, "at least 4")?;
                let count = be32(p, 0) as usize;
                if count.checked_mul(8).and_then(|n| n.checked_add(4)) != Some(p.len()) {
                    return Err(FrameError::BadLength {
                        frame: "SETTINGS",
                        len: p.len(),
                        expected: "4 + 8 per entry",
                    });
                }
                let entries = p[4..]
                    .chunks_exact(8)
                    .map(|e| Setting {
                        flags: e[0],
                        id: be32(e, 0) & 0x00ff_ffff,
                        value: be32(e, 4),
                    })
                    .collect();
                Frame::Settings {
                    clear: flags & FLAG_SETTINGS_CLEAR != 0,
                    entries,
                }
            }
            kind::PING => {
                exact("PING", p, 4, "expected 4")?;
                Frame::Ping { id: be32(p, 0) }
            }
            kind::GOAWAY => {
                exact("GOAWAY", p, 8, "expected 8")?;
                Frame::GoAway {
                    last_good_stream_id: be32(p, 0) & MAX_ID,
                    status: GoAwayStatus::from_code(be32(p, 4)),
                }
            }
            kind::WINDOW_UPDATE => {
                exact("WINDOW_UPDATE", p, 8, "expected 8")?;
                let stream_id = be32(p, 0) & MAX_ID;
                let delta = be32(p, 4) & MAX_ID;
                if delta == 0 {
                    return Err(FrameError::ZeroDelta(stream_id));
                }
                Frame::WindowUpdate { stream_id, delta }
            }
            frame_type => Frame::Unknown {
                frame_type,
                flags,
                payload,
            },
        })
    }

    /// The frame's name, for errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Data { .. } => "DATA",
            Frame::SynStream { .. } => "SYN_STREAM",
            Frame::SynReply { .. } => "SYN_REPLY",
            Frame::RstStream { .. } => "RST_STREAM",
            Frame::Settings { .. } => "SETTINGS",
            Frame::Ping { .. } => "PING",
            Frame::GoAway { .. } => "GOAWAY",
            Frame::Headers { .. } => "HEADERS",
            Frame::WindowUpdate { .. } => "WINDOW_UPDATE",
            Frame::Unknown { .. } => "unknown",
        }
    }

    /// Appends the wire form to `out`, compressing header blocks with `z`.
    pub fn encode(&self, z: &mut HeaderCompressor, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let name = self.name();
        let fin = |f: bool| if f { FLAG_FIN } else { 0 };
        let id31 = |what, value: u32| {
            if value > MAX_ID {
                Err(FrameError::Over31Bits { what, value })
            } else {
                Ok(value)
            }
        };
        let block = |z: &mut HeaderCompressor, h: &Headers| {
            z.compress(h).map_err(|source| FrameError::HeaderBlock {
                frame: name,
                source,
            })
        };
        let mut p = Vec::new();
        let (frame_type, flags) = match self {
            Frame::Data {
                stream_id,
                fin: f,
                data,
            } => {
                let sid = id31("stream id", *stream_id)?;
                return put(out, name, sid.to_be_bytes(), fin(*f), data);
            }
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                slot,
                fin: f,
                unidirectional,
                headers,
            } => {
                p.extend_from_slice(&id31("stream id", *stream_id)?.to_be_bytes());
                p.extend_from_slice(&id31("associated stream id", *associated_to)?.to_be_bytes());
                p.push((priority & 0x07) << 5);
                p.push(*slot);
                p.extend_from_slice(&block(z, headers)?);
                let uni = if *unidirectional {
                    FLAG_UNIDIRECTIONAL
                } else {
                    0
                };
                (kind::SYN_STREAM, fin(*f) | uni)
            }
            Frame::SynReply {
                stream_id,
                fin: f,
                headers,
            }
            | Frame::Headers {
                stream_id,
                fin: f,
                headers,
            } => {
                p.extend_from_slice(&id31("stream id", *stream_id)?.to_be_bytes());
                p.extend_from_slice(&block(z, headers)?);
                let t = if matches!(self, Frame::SynReply { .. }) {
                    kind::SYN_REPLY
                } else {
                    kind::HEADERS
                };
                (t, fin(*f))
            }
            Frame::RstStream { stream_id, status } => {
                p.extend_from_slice(&id31("stream id", *stream_id)?.to_be_bytes());
                p.extend_from_slice(&status.code().to_be_bytes());
                (kind::RST_STREAM, 0)
            }
            Frame::Settings { clear, entries } => {
                p.extend_from_slice(&(entries.len() as u32).to_be_bytes());
                for e in entries {
                    p.extend_from_slice(
                        &((u32::from(e.flags) << 24) | (e.id & 0x00ff_ffff)).to_be_bytes(),
                    );
                    p.extend_from_slice(&e.value.to_be_bytes());
                }
                (kind::SETTINGS, if *clear { FLAG_SETTINGS_CLEAR } else { 0 })
            }
            Frame::Ping { id } => {
                p.extend_from_slice(&id.to_be_bytes());
                (kind::PING, 0)
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                p.extend_from_slice(
                    &id31("last good stream id", *last_good_stream_id)?.to_be_bytes(),
                );
                p.extend_from_slice(&status.code().to_be_bytes());
                (kind::GOAWAY, 0)
            }
            Frame::WindowUpdate { stream_id, delta } => {
                p.extend_from_slice(&id31("stream id", *stream_id)?.to_be_bytes());
                p.extend_from_slice(&id31("window delta", *delta)?.to_be_bytes());
                (kind::WINDOW_UPDATE, 0)
            }
            Frame::Unknown {
                frame_type,
                flags,
                payload,
            } => {
                p.extend_from_slice(payload);
                (*frame_type, *flags)
            }
        };
        let word = 0x8000_0000 | u32::from(VERSION) << 16 | u32::from(frame_type);
        put(out, name, word.to_be_bytes(), flags, &p)
    }
}

fn put(
    out: &mut Vec<u8>,
    frame: &'static str,
    word: [u8; 4],
    flags: u8,
    payload: &[u8],
) -> Result<(), FrameError> {
    let len = payload.len();
    if len > MAX_LENGTH {
        return Err(FrameError::TooLong { frame, len });
    }
    out.reserve(HEADER_LEN + len);
    out.extend_from_slice(&word);
    out.push(flags);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(payload);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frame: Frame) -> Vec<u8> {
        let mut c = HeaderCompressor::new().unwrap();
        let mut d = HeaderDecompressor::new(1 << 16);
        let mut wire = Vec::new();
        frame.encode(&mut c, &mut wire).unwrap();
        let header = FrameHeader::parse(&wire).unwrap();
        assert_eq!(header.length(), wire.len() - HEADER_LEN);
        let back =
            Frame::decode(header, Bytes::copy_from_slice(&wire[HEADER_LEN..]), &mut d).unwrap();
        assert_eq!(back, frame);
        wire
    }

    fn hdrs() -> Headers {
        Headers::new()
            .with("streamtype", "error")
            .with("port", "8080")
    }

    #[test]
    fn data() {
        let wire = round_trip(Frame::Data {
            stream_id: 5,
            fin: true,
            data: Bytes::from_static(b"hello"),
        });
        assert_eq!(&wire[..8], &[0, 0, 0, 5, FLAG_FIN, 0, 0, 5]);
        round_trip(Frame::Data {
            stream_id: MAX_ID,
            fin: false,
            data: Bytes::new(),
        });
    }

    #[test]
    fn syn_stream() {
        let wire = round_trip(Frame::SynStream {
            stream_id: 3,
            associated_to: 1,
            priority: 7,
            slot: 2,
            fin: true,
            unidirectional: true,
            headers: hdrs(),
        });
        assert_eq!(&wire[..5], &[0x80, 3, 0, 1, FLAG_FIN | FLAG_UNIDIRECTIONAL]);
        assert_eq!(wire[16], 0xe0);
        assert_eq!(wire[17], 2);
    }

    #[test]
    fn syn_reply_and_headers() {
        let wire = round_trip(Frame::SynReply {
            stream_id: 1,
            fin: false,
            headers: hdrs(),
        });
        assert_eq!(&wire[..5], &[0x80, 3, 0, 2, 0]);
        let wire = round_trip(Frame::Headers {
            stream_id: 9,
            fin: true,
            headers: Headers::new(),
        });
        assert_eq!(&wire[..5], &[0x80, 3, 0, 8, FLAG_FIN]);
    }

    #[test]
    fn rst_stream() {
        for code in [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12] {
            let status = RstStatus::from_code(code);
            assert_eq!(status.code(), code);
            let wire = round_trip(Frame::RstStream {
                stream_id: 7,
                status,
            });
            assert_eq!(
                wire,
                [0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 7, 0, 0, 0, code as u8]
            );
        }
    }

    #[test]
    fn settings() {
        let wire = round_trip(Frame::Settings {
            clear: true,
            entries: vec![
                Setting {
                    flags: 0x04,
                    id: 0x03_0201,
                    value: 0x0a0b_0c0d,
                },
                Setting {
                    flags: 0,
                    id: setting::INITIAL_WINDOW_SIZE,
                    value: 1 << 20,
                },
            ],
        });
        assert_eq!(
            &wire[..16],
            &[0x80, 3, 0, 4, 1, 0, 0, 20, 0, 0, 0, 2, 4, 3, 2, 1]
        );
        round_trip(Frame::Settings {
            clear: false,
            entries: vec![],
        });
    }

    #[test]
    fn ping_goaway_window_update() {
        let wire = round_trip(Frame::Ping { id: 0x1234_5678 });
        assert_eq!(wire, [0x80, 3, 0, 6, 0, 0, 0, 4, 0x12, 0x34, 0x56, 0x78]);
        let wire = round_trip(Frame::GoAway {
            last_good_stream_id: MAX_ID,
            status: GoAwayStatus::InternalError,
        });
        assert_eq!(
            wire,
            [0x80, 3, 0, 7, 0, 0, 0, 8, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 2]
        );
        for s in [0, 1, 2, 9] {
            assert_eq!(GoAwayStatus::from_code(s).code(), s);
        }
        let wire = round_trip(Frame::WindowUpdate {
            stream_id: 0,
            delta: 0x10000,
        });
        assert_eq!(wire, [0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn unknown_control_frames_pass_through() {
        round_trip(Frame::Unknown {
            frame_type: 10,
            flags: 3,
            payload: Bytes::from_static(b"credential"),
        });
    }

    #[test]
    fn decode_a_published_syn_stream() {
        // A SPDY/3 SYN_STREAM test vector from another implementation:
        // stream 1, priority 4, headers {"bar": "foo", "foo": "bar"}.
        let wire: &[u8] = &[
            0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x27, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
            0x00, 0x00, 0x80, 0x00, 0x38, 0xea, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0xe5, 0x0e, 0x50,
            0xc2, 0x4b, 0x4a, 0x04, 0xe5, 0x0b, 0xe6, 0xb4, 0xfc, 0x7c, 0x24, 0x0a, 0x28, 0x08,
            0x00, 0x00, 0x00, 0xff, 0xff,
        ];
        let header = FrameHeader::parse(wire).unwrap();
        let mut d = HeaderDecompressor::new(4096);
        let frame = Frame::decode(header, Bytes::copy_from_slice(&wire[8..]), &mut d).unwrap();
        assert_eq!(
            frame,
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 4,
                slot: 0,
                fin: false,
                unidirectional: false,
                headers: Headers::new().with("bar", "foo").with("foo", "bar"),
            }
        );
    }

    #[test]
    fn decode_errors() {
        let mut d = HeaderDecompressor::new(4096);
        let mut dec = |wire: &[u8]| {
            let h = FrameHeader::parse(wire).unwrap();
            Frame::decode(h, Bytes::copy_from_slice(&wire[8..]), &mut d)
        };
        assert_eq!(
            dec(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]),
            Err(FrameError::UnsupportedVersion(2))
        );
        assert!(matches!(
            dec(&[0x80, 3, 0, 6, 0, 0, 0, 3, 0, 0, 1]),
            Err(FrameError::BadLength { frame: "PING", .. })
        ));
        assert_eq!(
            dec(&[0x80, 3, 0, 3, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(FrameError::ZeroStream("RST_STREAM"))
        );
        assert_eq!(
            dec(&[0x80, 3, 0, 9, 0, 0, 0, 8, 0, 0, 0, 1, 0x80, 0, 0, 0]),
            Err(FrameError::ZeroDelta(1))
        );
        assert!(matches!(
            dec(&[0x80, 3, 0, 4, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 7]),
            Err(FrameError::BadLength {
                frame: "SETTINGS",
                ..
            })
        ));
        assert_eq!(
            dec(&[0, 0, 0, 0, 0, 0, 0, 0]),
            Err(FrameError::ZeroStream("DATA"))
        );
        assert!(matches!(
            dec(&[0x80, 3, 0, 2, 0, 0, 0, 6, 0, 0, 0, 1, 9, 9]),
            Err(FrameError::HeaderBlock {
                frame: "SYN_REPLY",
                ..
            })
        ));
    }

    #[test]
    fn encode_errors() {
        let mut c = HeaderCompressor::new().unwrap();
        let mut out = Vec::new();
        let big = Frame::Data {
            stream_id: 1,
            fin: false,
            data: Bytes::from(vec![0; MAX_LENGTH + 1]),
        };
        assert!(matches!(
            big.encode(&mut c, &mut out),
            Err(FrameError::TooLong { .. })
        ));
        let bad = Frame::WindowUpdate {
            stream_id: 1,
            delta: 0x8000_0000,
        };
        assert!(matches!(
            bad.encode(&mut c, &mut out),
            Err(FrameError::Over31Bits { .. })
        ));
        assert!(out.is_empty());
    }
}
