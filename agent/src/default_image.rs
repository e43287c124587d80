//! berth's built-in default image, `berth.local/busybox:latest`: one layer
//! made from the host's static busybox (Debian's busybox-static), its
//! applets as hard links, and minimal `/etc/passwd` and `/etc/group`. berthd
//! imports it at start when it is missing, so a fresh node runs a pod with
//! no registry at all.

use std::path::Path;

use berth_fixtures::image::{ImageSpec, Layer};

use crate::images::{Image, ImageError, ImageStore};

/// The default image's name.
pub const DEFAULT_IMAGE: &str = "berth.local/busybox:latest";

/// Where the static busybox comes from.
const BUSYBOX: &str = "/bin/busybox";

/// Imports the default image into `store` unless it is there already.
/// `Ok(None)` when the host has no busybox to build it from.
pub fn ensure(store: &ImageStore) -> Result<Option<Image>, ImageError> {
    if let Some(image) = store.status(DEFAULT_IMAGE)? {
        return Ok(Some(image));
    }
    if !Path::new(BUSYBOX).exists() {
        return Ok(None);
    }
    let tmp = tempfile::tempdir().map_err(|e| ImageError::Io {
        op: "create temp dir",
        path: std::env::temp_dir(),
        source: e,
    })?;
    let archive = tmp.path().join("default-image.tar");
    let io = |op| {
        let archive = archive.clone();
        move |source| ImageError::Io {
            op,
            path: archive,
            source,
        }
    };
    let layer = Layer::busybox().map_err(io("read busybox for"))?;
    ImageSpec::new(vec![layer])
        .write_oci_archive(&archive, DEFAULT_IMAGE)
        .map_err(io("write"))?;
    let mut images = store.import(&archive)?;
    Ok(images.pop())
}
