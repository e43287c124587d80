//! Loading a CNI network configuration list from the config directory.
//!
//! Files ending in `.conflist`, `.conf` or `.json` are tried in lexical
//! order; the first that parses into a usable list wins. A single-plugin
//! `.conf`/`.json` (with `type` at top level) is treated as a list of one.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::NetError;

/// A parsed network configuration list.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfList {
    /// The file it was loaded from.
    pub source: PathBuf,
    /// The network's name.
    pub name: String,
    /// The CNI version every plugin is called with.
    pub cni_version: String,
    /// Whether CHECK is disabled for this network.
    pub disable_check: bool,
    /// Each plugin's own config object, in order.
    pub plugins: Vec<Map<String, Value>>,
}

impl ConfList {
    /// The `type` of plugin `i`.
    pub fn plugin_type(plugin: &Map<String, Value>) -> &str {
        plugin.get("type").and_then(Value::as_str).unwrap_or("")
    }

    /// Parses the JSON text of a conflist or a single-plugin conf.
    pub fn parse(source: &Path, text: &[u8]) -> Result<Self, String> {
        let value: Value = serde_json::from_slice(text).map_err(|e| format!("not json: {e}"))?;
        let obj = value.as_object().ok_or("not a json object")?;
        let name = obj
            .get("name")
            .and_then(Value::as_str)
            .ok_or("missing network name")?
            .to_string();
        let cni_version = obj
            .get("cniVersion")
            .and_then(Value::as_str)
            .ok_or("missing cniVersion")?
            .to_string();
        let plugins: Vec<Map<String, Value>> = match obj.get("plugins") {
            Some(Value::Array(list)) => list
                .iter()
                .map(|p| {
                    p.as_object()
                        .cloned()
                        .ok_or("plugin entry is not an object")
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("plugins is not a list".to_string()),
            None if obj.contains_key("type") => vec![obj.clone()],
            None => return Err("no plugins".to_string()),
        };
        if plugins.is_empty() {
            return Err("empty plugin list".to_string());
        }
        for p in &plugins {
            let t = Self::plugin_type(p);
            if t.is_empty() || t.contains('/') {
                return Err(format!("plugin type {t:?} is not a plugin name"));
            }
        }
        Ok(ConfList {
            source: source.to_path_buf(),
            name,
            cni_version,
            disable_check: obj
                .get("disableCheck")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            plugins,
        })
    }

    /// Loads the first usable list in `dir` whose plugins all exist in
    /// `bin_dirs`; the error explains why none is usable.
    pub fn load(dir: &Path, bin_dirs: &[PathBuf]) -> Result<Self, NetError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| NetError::NoCniConfig(format!("cannot read {}: {e}", dir.display())))?;
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("conflist" | "conf" | "json")
                )
            })
            .collect();
        files.sort();
        let mut reasons = Vec::new();
        for file in files {
            let parsed = std::fs::read(&file)
                .map_err(|e| e.to_string())
                .and_then(|text| Self::parse(&file, &text))
                .and_then(|list| list.check_binaries(bin_dirs).map(|()| list));
            match parsed {
                Ok(list) => return Ok(list),
                Err(reason) => reasons.push(format!("{}: {reason}", file.display())),
            }
        }
        if reasons.is_empty() {
            reasons.push(format!("no network config found in {}", dir.display()));
        }
        Err(NetError::NoCniConfig(reasons.join("; ")))
    }

    fn check_binaries(&self, bin_dirs: &[PathBuf]) -> Result<(), String> {
        for p in &self.plugins {
            let t = Self::plugin_type(p);
            if find_plugin(t, bin_dirs).is_none() {
                return Err(format!("plugin {t} not found in {bin_dirs:?}"));
            }
        }
        Ok(())
    }
}

/// The first executable called `name` in `bin_dirs`.
pub fn find_plugin(name: &str, bin_dirs: &[PathBuf]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    bin_dirs.iter().map(|d| d.join(name)).find(|p| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_single_confs() {
        let list = ConfList::parse(
            Path::new("a.conflist"),
            br#"{"cniVersion":"1.0.0","name":"n","disableCheck":true,"plugins":[{"type":"bridge"},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
        )
        .unwrap();
        assert_eq!(list.plugins.len(), 2);
        assert!(list.disable_check);
        let single = ConfList::parse(
            Path::new("b.conf"),
            br#"{"cniVersion":"0.4.0","name":"n","type":"ptp"}"#,
        )
        .unwrap();
        assert_eq!(ConfList::plugin_type(&single.plugins[0]), "ptp");
        for bad in [
            &br#"{"name":"n","plugins":[{"type":"x"}]}"#[..],
            br#"{"cniVersion":"1.0.0","name":"n","plugins":[]}"#,
            br#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../x"}]}"#,
            b"not json",
        ] {
            assert!(ConfList::parse(Path::new("x"), bad).is_err());
        }
    }

    #[test]
    fn load_explains_why_nothing_is_usable() {
        let dir = tempfile::tempdir().unwrap();
        let err = ConfList::load(dir.path(), &[]).unwrap_err().to_string();
        assert!(err.contains("no network config found"), "{err}");
        std::fs::write(
            dir.path().join("10-x.conflist"),
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"nosuchplugin"}]}"#,
        )
        .unwrap();
        let err = ConfList::load(dir.path(), &[dir.path().to_path_buf()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("plugin nosuchplugin not found"), "{err}");
    }
}
