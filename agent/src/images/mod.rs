//! The image store (issue #3): pulling images from OCI registries (with
//! mirrors, auth and plain-HTTP hosts), importing OCI-layout and `docker
//! save` archives, keeping blobs by digest and layers unpacked once as
//! snapshots keyed by chain ID, garbage collection, and mounting a
//! container's rootfs as one overlay of its image's snapshots.
//!
//! The CRI ImageService and the `berth` CLI sit on top of [`ImageStore`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), berth_agent::images::ImageError> {
//! use std::path::Path;
//! use berth_agent::images::{ImageStore, RegistryConfig, DEFAULT_ROOT};
//!
//! let store = ImageStore::open(Path::new(DEFAULT_ROOT), RegistryConfig::default())?;
//! let image = store.pull("busybox", None).await?; // docker.io/library/busybox:latest
//! let container_dir = Path::new("/run/berth/containers/c1");
//! let rootfs = store.prepare_rootfs(image.id.as_str(), container_dir, false)?;
//! // ... run the container with `rootfs.target` as its root ...
//! store.release_rootfs(container_dir)?;
//! store.remove("busybox")?; // idempotent; frees what no other image uses
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

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
pub use metadata::{Image, ImageUser};
pub use reference::Reference;
pub use registry::RegistryAuth;
pub use registry_config::{Endpoint, RegistryConfig};
pub use rootfs::{unmount_rootfs, RootfsMount};
pub use store::{ImageStore, DEFAULT_ROOT};
pub use unpack::{unpack_layer, Unpacked};
pub use usage::disk_usage;
