//! OCI bundles: reading `config.json` with oci-spec and checking the fields
//! every container needs before anything is created.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

/// A loaded bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// The parsed config.json.
    pub spec: Spec,
    /// Absolute, existing rootfs directory.
    pub rootfs: PathBuf,
}

/// Loads and checks the bundle at `dir`.
pub fn load(dir: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(dir).map_err(|e| Error::io("open bundle", dir, e))?;
    let config = dir.join("config.json");
    let spec = Spec::load(&config).map_err(|e| Error::Bundle {
        path: config.clone(),
        reason: e.to_string(),
    })?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::spec("root", "is required"))?;
    let rootfs = dir.join(root.path());
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| Error::spec("root.path", format!("{}: {e}", rootfs.display())))?;
    if !rootfs.is_dir() {
        return Err(Error::spec(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        ));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::spec("process", "is required"))?;
    check_process(process)?;
    Ok(Bundle { dir, spec, rootfs })
}

/// Checks the fields of a process that `execve` and the setup depend on.
pub fn check_process(p: &oci_spec::runtime::Process) -> Result<()> {
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::spec("process.args", "must not be empty"));
    }
    if !p.cwd().is_absolute() {
        return Err(Error::spec(
            "process.cwd",
            format!("{} is not an absolute path", p.cwd().display()),
        ));
    }
    for (i, e) in p.env().iter().flatten().enumerate() {
        if !e.contains('=') {
            return Err(Error::spec(
                format!("process.env[{i}]"),
                format!("{e:?} is not KEY=VALUE"),
            ));
        }
    }
    Ok(())
}
