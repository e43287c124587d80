//! Raw cgroupfs file access, for the few files the cgroups crate has no
//! cheap or correct accessor for (each caller says why). Errors name the
//! cgroup and the file.

use std::path::Path;

use super::CgroupError;

/// Reads `dir/file` whole.
pub(crate) fn read(cgroup: &str, dir: &Path, file: &str) -> Result<String, CgroupError> {
    std::fs::read_to_string(dir.join(file)).map_err(|e| CgroupError::Read {
        cgroup: cgroup.to_string(),
        file: file.to_string(),
        source: Box::new(e),
    })
}

/// Reads `dir/file` holding one unsigned number.
pub(crate) fn read_u64(cgroup: &str, dir: &Path, file: &str) -> Result<u64, CgroupError> {
    let text = read(cgroup, dir, file)?;
    parse_u64(cgroup, file, text.trim())
}

/// Reads the value of `key` in a flat-keyed file (`key value` lines, as in
/// `memory.stat` or `memory.events`); a missing key is 0.
pub(crate) fn read_keyed(
    cgroup: &str,
    dir: &Path,
    file: &str,
    key: &str,
) -> Result<u64, CgroupError> {
    let text = read(cgroup, dir, file)?;
    match keyed_value(&text, key) {
        Some(value) => parse_u64(cgroup, file, value),
        None => Ok(0),
    }
}

/// Writes `value` to `dir/file`, as part of applying `resource`.
pub(crate) fn write(
    cgroup: &str,
    resource: &'static str,
    dir: &Path,
    file: &str,
    value: &str,
) -> Result<(), CgroupError> {
    std::fs::write(dir.join(file), value).map_err(|e| CgroupError::Write {
        cgroup: cgroup.to_string(),
        resource,
        file: file.to_string(),
        value: value.to_string(),
        source: Box::new(e),
    })
}

/// The value of `key` in flat-keyed `text`.
pub(crate) fn keyed_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        (fields.next() == Some(key))
            .then(|| fields.next())
            .flatten()
    })
}

fn parse_u64(cgroup: &str, file: &str, value: &str) -> Result<u64, CgroupError> {
    value.parse().map_err(|e| CgroupError::Read {
        cgroup: cgroup.to_string(),
        file: file.to_string(),
        source: format!("not a number: {value:?} ({e})").into(),
    })
}

#[cfg(test)]
mod tests {
    use super::keyed_value;

    #[test]
    fn keyed_value_finds_exact_key() {
        let text = "total_inactive_file 10\ninactive_file 7\noom_kill 2\n";
        assert_eq!(keyed_value(text, "inactive_file"), Some("7"));
        assert_eq!(keyed_value(text, "oom_kill"), Some("2"));
        assert_eq!(keyed_value(text, "oom"), None);
    }
}
