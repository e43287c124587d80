//! The protocol core of berthd's streaming server (exec, attach and
//! port-forward for crictl and kubelet): SPDY/3.1 and WebSocket framing, the
//! Kubernetes subprotocol negotiation, and the remote-command status and
//! resize messages. The HTTP server and the process plumbing live elsewhere.

pub mod protocol;
pub mod resize;
pub mod spdy;
pub mod status;
pub mod websocket;
