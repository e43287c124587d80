//! Turning the spec's `linux.cgroupsPath` into a cgroup path relative to the
//! hierarchy root(s). Pure string work, no filesystem access.
//!
//! The accepted forms:
//! - empty or absent: `/berth/<container id>`;
//! - absolute (`/a/b`): used as is, relative to the root of every hierarchy;
//! - relative (`a/b`): placed under the `/berth` parent, giving `/berth/a/b`;
//! - systemd (`slice:prefix:name`): the cgroupfs path systemd would use for
//!   the scope unit `prefix-name.scope` in that slice, with the slice's
//!   dashes nesting (`a-b.slice` is `/a.slice/a-b.slice`). An empty slice is
//!   `system.slice`. There is no systemd to ask, so the path is only computed.

use super::CgroupError;

/// The parent of containers whose cgroups path is empty or relative.
pub const DEFAULT_PARENT: &str = "/berth";

/// The cgroup path (with a leading `/`, relative to the hierarchy root) for
/// `cgroups_path` and container `id`.
pub fn resolve(cgroups_path: Option<&str>, id: &str) -> Result<String, CgroupError> {
    let raw = cgroups_path.unwrap_or("");
    let invalid = |reason: &'static str| CgroupError::InvalidPath {
        path: raw.to_string(),
        reason,
    };
    let joined = if raw.is_empty() {
        if id.is_empty() || id.contains('/') {
            return Err(invalid("container id is empty or contains '/'"));
        }
        format!("{DEFAULT_PARENT}/{id}")
    } else if raw.starts_with('/') {
        raw.to_string()
    } else if let Some(fields) = systemd_fields(raw) {
        systemd_path(fields).map_err(invalid)?
    } else {
        format!("{DEFAULT_PARENT}/{raw}")
    };
    normalize(&joined).map_err(invalid)
}

/// Splits `slice:prefix:name` when `raw` has that shape (three fields, no
/// `/`); anything else is a plain path.
fn systemd_fields(raw: &str) -> Option<[&str; 3]> {
    if raw.contains('/') {
        return None;
    }
    let mut parts = raw.split(':');
    let fields = [parts.next()?, parts.next()?, parts.next()?];
    parts.next().is_none().then_some(fields)
}

/// The cgroupfs path systemd uses for the unit named by `[slice, prefix, name]`.
fn systemd_path([slice, prefix, name]: [&str; 3]) -> Result<String, &'static str> {
    if name.is_empty() {
        return Err("systemd cgroups path has an empty unit name");
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let mut path = expand_slice(slice)?;
    if name.ends_with(".slice") {
        // A slice as the unit: it nests like any slice, under the parent slice.
        let leaf = expand_slice(name)?;
        let leaf_name = leaf.rsplit('/').next().unwrap_or(name);
        path.push('/');
        path.push_str(leaf_name);
    } else if prefix.is_empty() {
        path.push_str(&format!("/{name}.scope"));
    } else {
        path.push_str(&format!("/{prefix}-{name}.scope"));
    }
    Ok(path)
}

/// `a-b-c.slice` becomes `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
fn expand_slice(slice: &str) -> Result<String, &'static str> {
    let stem = slice
        .strip_suffix(".slice")
        .ok_or("systemd slice name must end in .slice")?;
    if stem == "-" {
        return Ok(String::new());
    }
    if stem.is_empty()
        || stem.starts_with('-')
        || stem.ends_with('-')
        || stem.contains("--")
        || stem.contains('/')
    {
        return Err("invalid systemd slice name");
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push_str(&format!("/{prefix}.slice"));
    }
    Ok(path)
}

/// Collapses repeated and trailing slashes; refuses `.`/`..` components and
/// the hierarchy root itself.
fn normalize(path: &str) -> Result<String, &'static str> {
    let mut out = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return Err("cgroups path must not contain '.' or '..' components");
        }
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        return Err("cgroups path must not be the hierarchy root");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: Option<&str>) -> String {
        resolve(path, "ctr1").unwrap()
    }

    #[test]
    fn empty_path_uses_default_parent_and_id() {
        assert_eq!(ok(None), "/berth/ctr1");
        assert_eq!(ok(Some("")), "/berth/ctr1");
    }

    #[test]
    fn absolute_path_is_kept_and_normalized() {
        assert_eq!(ok(Some("/a/b")), "/a/b");
        assert_eq!(ok(Some("//a///b/")), "/a/b");
    }

    #[test]
    fn relative_path_goes_under_berth() {
        assert_eq!(ok(Some("pods/p1")), "/berth/pods/p1");
    }

    #[test]
    fn systemd_form_nests_slices_and_names_a_scope() {
        assert_eq!(
            ok(Some("kubepods-besteffort-pod12.slice:cri-berth:abc")),
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-berth-abc.scope"
        );
        assert_eq!(ok(Some("machine.slice::abc")), "/machine.slice/abc.scope");
        assert_eq!(ok(Some(":berth:abc")), "/system.slice/berth-abc.scope");
        assert_eq!(ok(Some("-.slice:p:n")), "/p-n.scope");
        assert_eq!(ok(Some("a.slice:p:a-b.slice")), "/a.slice/a-b.slice");
    }

    #[test]
    fn invalid_paths_are_refused() {
        for bad in [
            "/",
            "/a/../b",
            "./x",
            "bad:p:n",
            "a--b.slice:p:n",
            "-a.slice:p:n",
            "a.slice:p:",
        ] {
            let err = resolve(Some(bad), "ctr1").unwrap_err();
            assert!(
                matches!(err, CgroupError::InvalidPath { ref path, .. } if path == bad),
                "{bad}: {err}"
            );
        }
        assert!(resolve(None, "").is_err());
        assert!(resolve(None, "a/b").is_err());
    }
}
