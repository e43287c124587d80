//! Test and benchmark fixtures built from Debian's busybox-static: a minimal
//! rootfs (fresh or cached per machine), OCI bundles around it, and OCI image
//! layouts and archives (`image`), large seeded images for benchmarks
//! (`bulk`), and a local registry to push them to (`registry`).

mod bulk;
mod bundle;
mod busybox;
mod cache;
mod error;
mod etc_files;
pub mod image;
pub mod registry;
mod rootfs;
mod spec;

pub use bulk::{busybox_symlinked, BulkImage};
pub use bundle::{Bundle, CONFIG_FILE, ROOTFS_DIR};
pub use busybox::{Busybox, BUSYBOX_ENV, DEFAULT_BUSYBOX};
pub use cache::{cached_busybox_rootfs, CACHE_ENV, DEFAULT_CACHE_DIR};
pub use error::FixtureError;
pub use etc_files::{APP_EXTRA_GIDS, APP_GID, APP_UID, APP_USER, NOBODY_ID};
pub use rootfs::{busybox_rootfs, BUSYBOX_IN_ROOTFS};
pub use spec::{default_spec, FIXTURE_HOSTNAME};
