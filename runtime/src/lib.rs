//! berth's OCI runtime library: turns an OCI bundle into a running container.
//!
//! The verbs (`create`, `start`, `kill`, `delete`, `exec`, `state`, `list`)
//! live in [`container`]; each concern they need has a module of its own.

pub mod bundle;
pub mod cgroups;
pub mod console;
pub mod container;
pub mod error;
pub mod hooks;
pub mod namespaces;
pub mod pages;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod state;
pub mod sync;
pub mod time;

pub use error::{Error, Result};
pub use state::{ContainerState, StateRoot, Status};
