//! The berth node agent: CRI server, pod and container state, image store.

pub mod images;
pub mod monitor;
pub mod spec;
