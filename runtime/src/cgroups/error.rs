//! The cgroup error type. Every variant names the cgroup and the file or
//! resource involved, so a refused write reads like
//! `cgroup /berth/c1: memory limit: writing "1024" to memory.limit_in_bytes: ...`.

use cgroups_rs::fs::error::{Error as CrateError, ErrorKind};

pub(crate) type Source = Box<dyn std::error::Error + Send + Sync>;

/// Errors from cgroup management; each names the cgroup path and the file or
/// resource that failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// The spec's cgroups path cannot be used.
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    /// The kernel refused a write to a cgroup file.
    #[error("cgroup {cgroup}: {resource}: writing {value:?} to {file} failed: {source}")]
    Write {
        cgroup: String,
        resource: &'static str,
        file: String,
        value: String,
        source: Source,
    },

    /// A cgroup file could not be read or parsed.
    #[error("cgroup {cgroup}: reading {file} failed: {source}")]
    Read {
        cgroup: String,
        file: String,
        source: Source,
    },

    /// Creating the cgroup directories failed.
    #[error("cgroup {cgroup}: creating the cgroup failed: {source}")]
    Create { cgroup: String, source: Source },

    /// Removing a cgroup directory failed.
    #[error("cgroup {cgroup}: removing the cgroup failed: {source}")]
    Remove { cgroup: String, source: Source },

    /// The spec asks for something this host's cgroups cannot do.
    #[error("cgroup {cgroup}: {resource}: {reason}")]
    Unsupported {
        cgroup: String,
        resource: &'static str,
        reason: String,
    },

    /// A value in the spec is out of range or inconsistent.
    #[error("cgroup {cgroup}: {resource}: invalid value: {reason}")]
    InvalidValue {
        cgroup: String,
        resource: &'static str,
        reason: String,
    },

    /// Signalling a process of the cgroup failed.
    #[error("cgroup {cgroup}: sending signal {signal} to pid {pid} failed: {source}")]
    Signal {
        cgroup: String,
        pid: i32,
        signal: i32,
        source: nix::Error,
    },

    /// Processes stayed in the cgroup after being killed.
    #[error("cgroup {cgroup}: processes {pids:?} are still present after killing them")]
    NotEmpty { cgroup: String, pids: Vec<i32> },

    /// The freezer did not reach the wanted state.
    #[error("cgroup {cgroup}: freezer did not reach state {state} in {file}")]
    FreezeTimeout {
        cgroup: String,
        file: &'static str,
        state: &'static str,
    },

    /// Loading or attaching the cgroup v2 device filter program failed.
    #[error("cgroup {cgroup}: device filter: {step} failed: {source}{}", verifier_log(.log))]
    DeviceFilter {
        cgroup: String,
        step: &'static str,
        log: String,
        source: std::io::Error,
    },
}

fn verifier_log(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!(" (verifier: {})", log.trim())
    }
}

impl CgroupError {
    /// Converts an error of the cgroups crate while handling `resource`,
    /// keeping the file and value the crate reports.
    pub(crate) fn from_crate(cgroup: &str, resource: &'static str, err: CrateError) -> Self {
        let (file, value) = match err.kind() {
            ErrorKind::WriteFailed(file, value) => (Some(file_name(file)), Some(value.clone())),
            ErrorKind::ReadFailed(file) => (Some(file_name(file)), None),
            _ => (None, None),
        };
        // The crate's own message repeats the file and value; keep only the
        // kernel's reason (its cause) when there is one.
        let source: Source = match std::error::Error::source(&err) {
            Some(cause) => cause.to_string().into(),
            None => Box::new(err),
        };
        let cgroup = cgroup.to_string();
        match (file, value) {
            (Some(file), Some(value)) => CgroupError::Write {
                cgroup,
                resource,
                file,
                value,
                source,
            },
            (Some(file), None) => CgroupError::Read {
                cgroup,
                file,
                source,
            },
            _ => CgroupError::Unsupported {
                cgroup,
                resource,
                reason: source.to_string(),
            },
        }
    }
}

/// The last component of a path the crate reports (it sometimes gives the
/// full path, sometimes only the file name).
fn file_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}
