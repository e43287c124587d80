//! `process.rlimits` and `process.oomScoreAdj`.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

use crate::error::{Error, Result};

fn resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType::*;
    match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

/// Sets every rlimit of the list on the calling process.
pub fn apply(rlimits: &[PosixRlimit]) -> Result<()> {
    for (i, r) in rlimits.iter().enumerate() {
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads the struct we pass.
        if unsafe { libc::setrlimit(resource(r.typ()), &lim) } != 0 {
            return Err(Error::spec(
                format!("process.rlimits[{i}]"),
                format!(
                    "{} soft {} hard {}: {}",
                    r.typ(),
                    r.soft(),
                    r.hard(),
                    std::io::Error::last_os_error()
                ),
            ));
        }
    }
    Ok(())
}

/// Writes `oom_score_adj`, never below the current value when the kernel
/// refuses a lower one (no CAP_SYS_RESOURCE): the value is clamped, not fatal.
pub fn apply_oom_score_adj(value: i32) -> Result<()> {
    let path = "/proc/self/oom_score_adj";
    match std::fs::write(path, value.to_string()) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            tracing::debug!("oom_score_adj {value} refused; keeping the inherited value");
            Ok(())
        }
        Err(e) => Err(Error::io("write", path, e)),
    }
}
