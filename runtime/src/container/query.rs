//! Read-only verbs: `state`, `list`, `ps`.

use crate::{
    cgroups::CgroupManager,
    error::Result,
    state::{ContainerState, StateRoot, Status},
};

/// runc's `state` JSON of container `id`.
pub fn state_json(root: &StateRoot, id: &str) -> Result<String> {
    let st = root.load(id)?;
    let status = st.status(root);
    Ok(serde_json::to_string_pretty(&st.oci(status)).unwrap_or_default())
}

/// Every container with saved state, with its current status.
pub fn list(root: &StateRoot) -> Result<Vec<(ContainerState, Status)>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        if let Ok(st) = root.load(&id) {
            let status = st.status(root);
            out.push((st, status));
        }
    }
    Ok(out)
}

/// The pids in container `id`'s cgroup.
pub fn pids(root: &StateRoot, id: &str) -> Result<Vec<i32>> {
    let st = root.load(id)?;
    Ok(CgroupManager::new(Some(&st.cgroup_path), id)?.pids()?)
}
