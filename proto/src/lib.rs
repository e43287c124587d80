//! The CRI v1 wire protocol. The bindings come from the `k8s-cri` crate, never
//! hand-written, so that berth speaks exactly upstream's protocol.
//!
//! `berth_proto::v1` holds the messages, `runtime_service_server` /
//! `image_service_server` the tonic servers and `*_client` the clients.

pub use k8s_cri::v1;
pub use k8s_cri::v1::{
    image_service_client, image_service_server, runtime_service_client, runtime_service_server,
};
