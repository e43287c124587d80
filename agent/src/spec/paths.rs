//! Checks on paths that come from CRI requests: absolute and clean (no `.`,
//! `..`, empty components or trailing `/`), so that a path means one place.

use std::path::PathBuf;

use super::SpecError;

/// `value` as a path if it is absolute and clean; otherwise an error naming
/// `field`.
pub(crate) fn clean_absolute(field: &str, value: &str) -> Result<PathBuf, SpecError> {
    if value.is_empty() {
        return Err(SpecError::invalid(field, "path is empty"));
    }
    if value.contains('\0') {
        return Err(SpecError::invalid(field, "path contains a NUL byte"));
    }
    if !value.starts_with('/') {
        return Err(SpecError::invalid(
            field,
            format!("path {value:?} is not absolute"),
        ));
    }
    if value == "/" {
        return Ok(PathBuf::from(value));
    }
    for component in value[1..].split('/') {
        match component {
            ".." => {
                return Err(SpecError::invalid(
                    field,
                    format!("path {value:?} contains \"..\""),
                ))
            }
            "" | "." => {
                return Err(SpecError::invalid(
                    field,
                    format!("path {value:?} is not clean"),
                ))
            }
            _ => {}
        }
    }
    Ok(PathBuf::from(value))
}

/// The number of components of a clean absolute path (`/` has none).
pub(crate) fn depth(path: &std::path::Path) -> usize {
    path.components().count().saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_clean_absolute_paths() {
        assert_eq!(clean_absolute("f", "/").unwrap(), PathBuf::from("/"));
        assert_eq!(clean_absolute("f", "/a/b").unwrap(), PathBuf::from("/a/b"));
        assert_eq!(
            clean_absolute("f", "/a..b/.c").unwrap(),
            PathBuf::from("/a..b/.c")
        );
    }

    #[test]
    fn rejects_relative_dotdot_and_unclean_paths_naming_the_field() {
        for bad in [
            "", "a/b", "/a/../b", "/..", "/a/./b", "/a//b", "/a/", "/a\0",
        ] {
            let err = clean_absolute("config.mounts[0].host_path", bad).unwrap_err();
            assert!(
                err.to_string().starts_with("config.mounts[0].host_path: "),
                "{bad:?}: {err}"
            );
        }
        let err = clean_absolute("x", "/a/../etc").unwrap_err();
        assert!(err.to_string().contains("\"..\""), "{err}");
    }

    #[test]
    fn depth_counts_components() {
        assert_eq!(depth(std::path::Path::new("/")), 0);
        assert_eq!(depth(std::path::Path::new("/a/b")), 2);
    }
}
