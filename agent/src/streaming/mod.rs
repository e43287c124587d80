//! The protocol core of berthd's streaming server (exec, attach and
//! port-forward for crictl and kubelet): SPDY/3.1 and WebSocket framing, the
//! Kubernetes subprotocol negotiation, and the remote-command status and
//! resize messages; the HTTP server that serves the CRI streaming URLs
//! (`server`) and a client for them (`client`). The process plumbing behind
//! the server is berthd's (`server::Backend`).

pub mod client;
pub mod protocol;
pub mod resize;
pub mod server;
pub mod spdy;
pub mod status;
pub mod websocket;
