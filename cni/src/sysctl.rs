//! Writing kernel settings under `/proc/sys` (forwarding, route_localnet,
//! DAD). The caller's network namespace decides which namespace's value is
//! written.

use std::path::Path;

use crate::error::NetError;

/// Writes `value` to the sysctl file at `path`, skipping the write when the
/// value is already in place.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), NetError> {
    let err = |source| NetError::Sysctl {
        path: path.display().to_string(),
        source,
    };
    if std::fs::read_to_string(path).map_err(err)?.trim() == value {
        return Ok(());
    }
    std::fs::write(path, value).map_err(err)
}

/// Writes `net.<key>` (dots as path separators are not used: `key` is the
/// path below `/proc/sys/net/`).
pub(crate) fn write_net(key: &str, value: &str) -> Result<(), NetError> {
    write(&Path::new("/proc/sys/net").join(key), value)
}
