//! SPDY/3.1 for the streaming server: frames and their codec, header blocks
//! with SPDY's zlib dictionary, flow control, the async session, and the
//! HTTP upgrade.

pub mod codec;
pub mod dictionary;
pub mod flow;
pub mod frame;
pub mod header_block;
pub mod session;
pub mod stream_kind;
pub mod upgrade;

pub use codec::{CodecError, Decoded, FrameDecoder, FrameEncoder};
pub use frame::{Frame, FrameError, GoAwayStatus, RstStatus};
pub use header_block::Headers;
pub use session::{
    Config, Incoming, IncomingStream, Role, Session, SessionError, Stream, StreamReader,
    StreamWriter,
};

#[cfg(test)]
mod parser_robustness;
#[cfg(test)]
mod session_tests;
