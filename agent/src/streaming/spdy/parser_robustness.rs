//! The frame parser against hostile input, without a fuzzer: 100 000
//! deterministic pseudo-random byte strings, frame-shaped and not, and
//! mutations of valid frames. Every input must end in "need more", frames or
//! an error, never a panic. (`agent/fuzz` runs the same entry point under
//! libFuzzer where cargo-fuzz is available.)

use bytes::BytesMut;

use super::codec::{Decoded, FrameDecoder, FrameEncoder};
use super::frame::Frame;
use super::header_block::Headers;

/// xorshift64*: small, deterministic, good enough to spread inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Parses `input` to the end from a slice or from a buffer. Returns how
/// many frames came out.
fn parse_all(input: &[u8], from_buffer: bool) -> usize {
    let mut frames = 0;
    let mut dec = FrameDecoder::with_limits(1 << 16, 1 << 16);
    if from_buffer {
        let mut buf = BytesMut::from(input);
        while let Ok(Some(_)) = dec.decode_buf(&mut buf) {
            frames += 1;
        }
    } else {
        let mut at = 0;
        while let Ok(Decoded::Frame(_, used)) = dec.decode(&input[at..]) {
            frames += 1;
            at += used;
        }
    }
    frames
}

fn valid_stream() -> Vec<u8> {
    let mut enc = FrameEncoder::new().unwrap_or_else(|e| panic!("encoder: {e}"));
    let mut wire = Vec::new();
    let frames = [
        Frame::SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 2,
            slot: 0,
            fin: false,
            unidirectional: false,
            headers: Headers::new().with("streamtype", "data").with("port", "80"),
        },
        Frame::Data {
            stream_id: 1,
            fin: true,
            data: bytes::Bytes::from_static(b"GET / HTTP/1.0\r\n\r\n"),
        },
        Frame::SynReply {
            stream_id: 1,
            fin: false,
            headers: Headers::new().with("a", "b"),
        },
        Frame::Ping { id: 1 },
        Frame::WindowUpdate {
            stream_id: 0,
            delta: 5,
        },
    ];
    for f in &frames {
        f.encode_for_test(&mut enc, &mut wire);
    }
    wire
}

impl Frame {
    fn encode_for_test(&self, enc: &mut FrameEncoder, out: &mut Vec<u8>) {
        enc.encode(self, out)
            .unwrap_or_else(|e| panic!("encode {}: {e}", self.name()));
    }
}

#[test]
fn hundred_thousand_hostile_inputs_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let valid = valid_stream();
    assert_eq!(parse_all(&valid, false), 5);
    assert_eq!(parse_all(&valid, true), 5);
    let mut frames_seen = 0;
    for i in 0..100_000 {
        let input = match i % 4 {
            // Pure noise.
            0 => {
                let len = rng.below(96);
                rng.bytes(len)
            }
            // A plausible control header (version 3, a known type, a length
            // that may or may not match) over noise.
            1 => {
                let len = rng.below(64);
                let mut v = vec![0x80, 3, 0, 1 + rng.below(10) as u8, rng.next() as u8, 0, 0];
                v.push(if rng.below(2) == 0 {
                    len as u8
                } else {
                    rng.next() as u8
                });
                v.extend(rng.bytes(len));
                v
            }
            // A valid stream with a few bytes changed, inserted or removed.
            2 => {
                let mut v = valid.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(v.len());
                    match rng.below(3) {
                        0 => v[at] = rng.next() as u8,
                        1 => v.insert(at, rng.next() as u8),
                        _ => {
                            v.remove(at);
                        }
                    }
                }
                v
            }
            // A valid stream cut short or with noise after it.
            _ => {
                let mut v = valid.clone();
                if rng.below(2) == 0 {
                    v.truncate(rng.below(v.len()));
                } else {
                    let len = rng.below(32);
                    v.extend(rng.bytes(len));
                }
                v
            }
        };
        frames_seen += parse_all(&input, i % 8 >= 4);
    }
    // The mutated inputs still yield many frames: the generator exercises
    // decoding, not only rejection.
    assert!(frames_seen > 25_000, "only {frames_seen} frames decoded");
}
