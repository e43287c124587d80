//! Seccomp: compiles the spec's `linux.seccomp` into a classic BPF program and
//! installs it. Owned by this module: syscall name lookup, argument comparison
//! code generation, architecture checks, installation flags.

use oci_spec::runtime::LinuxSeccomp;

/// Errors from compiling or installing a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// Placeholder until the compiler lands.
    #[error("seccomp is not implemented yet")]
    Unimplemented,
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
pub fn compile(_seccomp: &LinuxSeccomp) -> Result<Program, SeccompError> {
    Err(SeccompError::Unimplemented)
}

/// Installs `program` on the calling thread. Needs no_new_privs or CAP_SYS_ADMIN.
/// Must not allocate: it runs in the container's process right before exec.
pub fn install(_program: &Program) -> Result<(), SeccompError> {
    Err(SeccompError::Unimplemented)
}
