//! The processes the runtime starts inside a container: how they are cloned,
//! and everything applied to them between clone and `execve` (namespaces are in
//! `crate::namespaces`, the filesystem in `crate::rootfs`).

pub mod caps;
pub mod clone;
pub mod exec;
pub mod finish;
pub mod init;
pub mod joiner;
pub mod rlimits;
pub mod user;
