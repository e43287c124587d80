//! The Kubernetes channel protocols over WebSocket: every message starts
//! with a channel byte (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize), or a
//! channel digit with base64 text in the base64 variants; v5 adds a close
//! message. Port-forward uses two channels per port. Pure functions in
//! `channel`, `port_forward` and `upgrade`; the connection in `conn`, its
//! channels as byte streams in `mux`, SPDY tunnelled in binary messages in
//! `tunnel`.

pub mod channel;
pub mod conn;
pub mod mux;
pub mod port_forward;
pub mod tunnel;
pub mod upgrade;

pub use channel::{ChannelError, ChannelMessage, Encoding};
pub use conn::{ChannelConn, ChannelReceiver, ChannelSender, ConnError};
pub use upgrade::{accept, Accepted, UpgradeError, WsProtocol};
