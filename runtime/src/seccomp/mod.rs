//! Seccomp: compiles the spec's `linux.seccomp` into a classic BPF program and
//! installs it. Owned by this module: syscall name lookup, argument comparison
//! code generation, architecture checks, installation flags, and berth's
//! RuntimeDefault profile.
//!
//! Semantics of a compiled filter:
//! - `architectures` (plus the host's native ABI, always covered) select the
//!   ABIs the filter handles; listed ones this host cannot run are skipped.
//!   Calls from any other ABI, including x32 calls on x86_64 when X32 is not
//!   listed, kill the process.
//! - syscall names unknown in an ABI are skipped there (debug log when unknown
//!   everywhere).
//! - the `args` of one entry are ANDed; each compares the full 64-bit value
//!   (only the low 32 bits on 32-bit ABIs, whose arguments are zero-extended).
//!   `SCMP_CMP_MASKED_EQ` tests `(arg & value) == valueTwo`.
//! - when several entries cover one syscall, entries with argument comparisons
//!   are tried first, most restrictive action first (ties in spec order), and
//!   the first match decides; then the most restrictive entry without
//!   comparisons, then `defaultAction`. This is the precedence libseccomp and
//!   the kernel apply (the most restrictive matching action wins), with the
//!   more specific, conditional entries taking priority over unconditional ones.
//! - `SCMP_ACT_KILL` kills the thread (as `SCMP_ACT_KILL_THREAD`); ERRNO
//!   without `errnoRet` returns EPERM; TRACE without it passes 0 to the tracer.
//! - SCMP_ACT_NOTIFY and `listenerPath` are rejected (no notify support).

mod abi;
mod args;
mod bpf;
mod generate;
mod install;
mod json;
mod profile;
mod rules;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use oci_spec::runtime::LinuxSeccomp;

pub use install::install;
pub use json::parse_profile;
pub use profile::runtime_default;

/// Errors from compiling or installing a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// An action the runtime cannot carry out.
    #[error("seccomp {field}: SCMP_ACT_NOTIFY is not supported")]
    NotifyUnsupported { field: String },
    /// A notification listener was requested.
    #[error("seccomp listenerPath {}: seccomp notify listeners are not supported", path.display())]
    ListenerUnsupported { path: PathBuf },
    /// An ERRNO/TRACE value that does not fit in the 16 data bits.
    #[error("seccomp {field}: value {value} is above 65535")]
    ReturnValueTooLarge { field: String, value: u32 },
    /// A `syscalls[]` entry without names.
    #[error("seccomp {field}: at least one syscall name is needed")]
    NoNames { field: String },
    /// An argument comparison on an argument that does not exist.
    #[error("seccomp {field}: argument index {index} is out of range (0-5)")]
    ArgIndex { field: String, index: usize },
    /// A missing or empty mandatory field in a JSON profile.
    #[error("seccomp {field}: missing or empty")]
    MissingField { field: String },
    /// A field with a value the spec does not define.
    #[error("seccomp {field}: invalid value {value}")]
    InvalidField { field: String, value: String },
    /// A JSON profile that does not match the spec's types.
    #[error("seccomp profile: malformed")]
    Malformed(#[source] serde_json::Error),
    /// The host's architecture has no syscall tables here.
    #[error("seccomp: host architecture {0} is not supported")]
    UnsupportedHost(&'static str),
    /// The generated program is longer than the kernel accepts (or empty).
    #[error("seccomp: program of {len} instructions is outside the kernel's limit of 1 to 4096")]
    TooLarge { len: usize },
    /// A bug in the code generator.
    #[error("seccomp: internal code generation error: {0}")]
    Internal(&'static str),
    /// The kernel refused the filter.
    #[error("seccomp: loading the filter (flags {flags:#x}) failed")]
    Install {
        flags: u32,
        #[source]
        source: std::io::Error,
    },
    /// SECCOMP_FILTER_FLAG_TSYNC could not move a thread to the new filter.
    #[error("seccomp: thread {tid} could not be synchronised to the filter")]
    Tsync { tid: libc::c_long },
}

/// A compiled filter, ready to install in the container's init or exec process.
#[derive(Debug, Clone)]
pub struct Program {
    /// The BPF instructions.
    pub instructions: Vec<libc::sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` bits from the spec's `flags`.
    pub flags: u32,
}

/// Compiles `linux.seccomp` for the running architecture.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Program, SeccompError> {
    compile_for(seccomp, abi::Abi::host()?)
}

/// Compiles `linux.seccomp` for a kernel whose native ABI is `host`.
fn compile_for(seccomp: &LinuxSeccomp, host: abi::Abi) -> Result<Program, SeccompError> {
    let ruleset = rules::Ruleset::from_spec(seccomp, host)?;
    let instructions = generate::generate(&ruleset)?;
    Ok(Program {
        instructions,
        flags: ruleset.flags,
    })
}
