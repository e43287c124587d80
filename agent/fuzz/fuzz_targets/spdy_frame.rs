//! Fuzzes the SPDY frame parser: any byte sequence must parse to frames,
//! "need more" or an error, from a slice and from a buffer, never panic.

#![no_main]

use berth_agent::streaming::spdy::codec::{Decoded, FrameDecoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut dec = FrameDecoder::with_limits(1 << 16, 1 << 16);
    let mut at = 0;
    while let Ok(Decoded::Frame(_, used)) = dec.decode(&data[at..]) {
        at += used;
    }
    let mut dec = FrameDecoder::with_limits(1 << 16, 1 << 16);
    let mut buf = bytes::BytesMut::from(data);
    while let Ok(Some(_)) = dec.decode_buf(&mut buf) {}
});
