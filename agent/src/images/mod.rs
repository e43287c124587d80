//! The image store (issue #3): pulling images from OCI registries (with
//! mirrors, auth and plain-HTTP hosts), importing OCI-layout and `docker
//! save` archives, keeping blobs by digest and layers unpacked once as
//! snapshots keyed by chain ID, garbage collection, and mounting a
//! container's rootfs as one overlay of its image's snapshots.
//!
//! The CRI ImageService and the `berth` CLI sit on top of [`ImageStore`].

mod content;
mod digest;
mod error;
mod import;
mod leases;
mod locks;
mod manifest;
mod metadata;
mod reference;
mod registry;
mod registry_config;
mod rootfs;
mod snapshots;
mod staging;
mod store;
mod unpack;
mod usage;

pub use digest::{chain_ids, Digest};
pub use error::ImageError;
pub use manifest::{Descriptor, Platform};
pub use metadata::Image;
pub use reference::Reference;
pub use registry::RegistryAuth;
pub use registry_config::{Endpoint, RegistryConfig};
pub use rootfs::{unmount_rootfs, RootfsMount};
pub use store::{ImageStore, DEFAULT_ROOT};
pub use unpack::{unpack_layer, Unpacked};
