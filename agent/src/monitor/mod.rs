//! The per-pod monitor: one small single-threaded process per pod that is the
//! parent (and child subreaper) of the pod's pause process and containers,
//! holds their stdio, writes their CRI logs and records their exits on disk,
//! so that berthd can die and come back without losing a container.
//!
//! - [`protocol`]: the newline-delimited JSON messages on `monitor.sock`;
//! - [`client`]: spawning a monitor and talking to it (async, for berthd);
//! - [`records`]: what the monitor keeps on disk (`monitor.json`, `exit.json`);
//! - [`cri_log`]: the CRI log format writer;
//! - [`server`]: the monitor process itself (used by the `berth-monitor` binary);
//! - [`stream_client`]: streaming exec and attach sessions (fds passed to
//!   berthd), over the async fd types of [`stream_io`].
//!
//! berthd's side, in order: [`spawn`] a monitor per pod (it returns once the
//! monitor listens; the monitor is detached, so berthd may die), then
//! `start_pause`, `create`/`start` containers, and [`MonitorClient::subscribe`]
//! for `started`/`exited` events. After a berthd restart:
//! [`MonitorClient::connect`] to `<run-dir>/monitor.sock`, subscribe, then
//! `list` to reconcile. If the monitor itself is gone, [`records::read_pod`]
//! and [`records::read_exit`] still tell what ran and how it ended.

pub mod client;
pub mod cri_log;
mod error;
pub mod protocol;
pub mod records;
pub mod server;
pub mod stream_client;
pub mod stream_io;

pub use client::{spawn, MonitorClient, SpawnConfig};
pub use error::{MonitorError, Result};
pub use stream_client::{attach, exec_stream, AttachSession, ExecSession};

/// The socket's file name inside the pod's run directory.
pub const SOCKET_NAME: &str = "monitor.sock";
/// The monitor's own log (its stderr) inside the pod's run directory.
pub const LOG_NAME: &str = "monitor.log";
