//! berth's OCI runtime library: turns an OCI bundle into a running container.
//!
//! The verbs (`create`, `start`, `kill`, `delete`, `exec`, `state`) live in
//! [`container`]; each concern they need has a module of its own.

pub mod cgroups;
pub mod rootfs;
pub mod seccomp;
