//! `process.capabilities`: the bounding set is trimmed while the process is
//! still root, the other four sets are set after the uid switch.

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use crate::error::{Error, Result};

/// The names in an OCI capability list, as `caps` values; names this kernel or
/// crate doesn't know are skipped, as other runtimes do.
fn to_set(list: &Option<Capabilities>) -> CapsHashSet {
    let mut set = CapsHashSet::new();
    for c in list.iter().flatten() {
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match Capability::from_str(&name) {
            Ok(cap) => {
                set.insert(cap);
            }
            Err(_) => tracing::debug!("capability {name} unknown here; skipped"),
        }
    }
    set
}

fn supported() -> CapsHashSet {
    caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all())
}

fn err(set: &str, e: caps::errors::CapsError) -> Error {
    Error::spec(format!("process.capabilities.{set}"), e.to_string())
}

/// Drops every capability not in `bounding` from the bounding set.
pub fn drop_bounding(c: &LinuxCapabilities) -> Result<()> {
    let keep = to_set(c.bounding());
    for cap in supported() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| err("bounding", e))?;
        }
    }
    Ok(())
}

/// Sets the effective, permitted, inheritable and ambient sets.
pub fn apply_sets(c: &LinuxCapabilities) -> Result<()> {
    let permitted = to_set(c.permitted());
    let effective = to_set(c.effective());
    let inheritable = to_set(c.inheritable());
    // Order matters: inheritable while CAP_SETPCAP is still effective, then
    // effective (shrinking it keeps E ⊆ P), then permitted.
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(|e| err("inheritable", e))?;
    caps::set(None, CapSet::Effective, &effective).map_err(|e| err("effective", e))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(|e| err("permitted", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
    for cap in to_set(c.ambient()) {
        if let Err(e) = caps::raise(None, CapSet::Ambient, cap) {
            // An ambient cap needs to be permitted and inheritable; runc warns and goes on.
            tracing::debug!("ambient capability {cap} not raised: {e}");
        }
    }
    Ok(())
}
