//! The berth node agent: CRI server, pod and container state, image store.

pub mod spec;
