//! The CRI v1 wire protocol. The bindings come from the `k8s-cri` crate, never
//! hand-written, so that berth speaks exactly upstream's protocol.
