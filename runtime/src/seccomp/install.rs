//! Loading a compiled filter into the kernel for the calling thread. Runs in
//! the container process right before exec (possibly after fork in a
//! multi-threaded parent), so it does not allocate.

use std::io;

use super::{Program, SeccompError};

/// Installs `program` on the calling thread (all threads with
/// `SECCOMP_FILTER_FLAG_TSYNC`). Needs no_new_privs or CAP_SYS_ADMIN; setting
/// no_new_privs is the caller's business.
pub fn install(program: &Program) -> Result<(), SeccompError> {
    let len = program.instructions.len();
    let len = match u16::try_from(len) {
        Ok(len) if len > 0 && usize::from(len) <= super::bpf::MAX_INSTRUCTIONS => len,
        _ => return Err(SeccompError::TooLarge { len }),
    };
    let fprog = libc::sock_fprog {
        len,
        // The kernel only reads the instructions (and copies them).
        filter: program.instructions.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `len` valid instructions that outlive the call;
    // seccomp(2) only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            libc::c_ulong::from(program.flags),
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc > 0 {
        // With TSYNC, a positive result names the thread that could not sync.
        return Err(SeccompError::Tsync { tid: rc });
    }
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) || program.flags != 0 {
        return Err(SeccompError::Install {
            flags: program.flags,
            source: err,
        });
    }
    // Kernels without seccomp(2) (before 3.17) take the filter through prctl.
    // SAFETY: as above; prctl(PR_SET_SECCOMP) only reads the program.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const libc::sock_fprog,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(SeccompError::Install {
            flags: 0,
            source: io::Error::last_os_error(),
        })
    }
}
