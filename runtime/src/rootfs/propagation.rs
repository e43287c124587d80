//! Mount propagation: the names of propagation types, `linux.rootfsPropagation`,
//! changing a mount's propagation, and making the rootfs's parent mount
//! private so that pivot_root accepts it.

use std::path::Path;

use nix::mount::MsFlags;
use oci_spec::runtime::Spec;

use super::error::RootfsError;
use super::mountinfo;
use super::syscalls;

/// The mount(2) flags for a propagation name (`shared`, `rslave`, ...), or
/// `None` when the name is not a propagation type.
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    let rec = MsFlags::MS_REC;
    let flags = match name {
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | rec,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | rec,
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | rec,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | rec,
        _ => return None,
    };
    Some(flags)
}

/// The propagation `/` gets from `linux.rootfsPropagation`; `rslave` when unset.
pub fn root_propagation(spec: &Spec) -> Result<MsFlags, RootfsError> {
    let requested = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref());
    match requested {
        None | Some("") => Ok(MsFlags::MS_SLAVE | MsFlags::MS_REC),
        Some(name) => propagation_flag(name).ok_or_else(|| RootfsError::InvalidSpec {
            field: "linux.rootfsPropagation".into(),
            reason: format!("unknown propagation {name:?}"),
        }),
    }
}

/// Changes the propagation of the mount at `path` (`flags` is one of
/// `MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE`, `MS_UNBINDABLE`, maybe with `MS_REC`).
pub fn set_propagation(path: &Path, flags: MsFlags) -> Result<(), RootfsError> {
    syscalls::mount(
        None::<&Path>,
        path,
        None,
        flags,
        None,
        path,
        "set propagation",
    )
}

/// pivot_root refuses a new root whose parent mount is shared: makes the mount
/// that holds `rootfs` private when it is shared.
pub(crate) fn make_parent_private(rootfs: &Path) -> Result<(), RootfsError> {
    let mounts = mountinfo::read_self()?;
    let Some(parent) = mountinfo::containing_mount(&mounts, rootfs) else {
        return Ok(());
    };
    if parent.is_shared() {
        set_propagation(&parent.mount_point, MsFlags::MS_PRIVATE)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxBuilder, SpecBuilder};

    fn spec_with(propagation: Option<&str>) -> Spec {
        let mut linux = LinuxBuilder::default();
        if let Some(p) = propagation {
            linux = linux.rootfs_propagation(p.to_string());
        }
        SpecBuilder::default()
            .linux(linux.build().unwrap())
            .build()
            .unwrap()
    }

    #[test]
    fn names_map_to_flags() {
        assert_eq!(propagation_flag("private"), Some(MsFlags::MS_PRIVATE));
        assert_eq!(
            propagation_flag("runbindable"),
            Some(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC)
        );
        assert_eq!(propagation_flag("ro"), None);
        assert_eq!(propagation_flag("Shared"), None);
    }

    #[test]
    fn root_propagation_defaults_to_rslave() {
        let rslave = MsFlags::MS_SLAVE | MsFlags::MS_REC;
        assert_eq!(root_propagation(&spec_with(None)).unwrap(), rslave);
        assert_eq!(root_propagation(&spec_with(Some(""))).unwrap(), rslave);
        assert_eq!(
            root_propagation(&spec_with(Some("rprivate"))).unwrap(),
            MsFlags::MS_PRIVATE | MsFlags::MS_REC
        );
    }

    #[test]
    fn unknown_root_propagation_names_the_field() {
        let err = root_propagation(&spec_with(Some("sideways"))).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("linux.rootfsPropagation"), "{msg}");
        assert!(msg.contains("sideways"), "{msg}");
    }
}
