//! `process.user`: supplementary groups, gid, uid, umask, and the user's home
//! directory from the container's `/etc/passwd` for `HOME`.

use oci_spec::runtime::User;

use crate::error::{Error, Result};

/// Switches to the spec's user, keeping capabilities across the uid change so
/// that `caps::apply_sets` can set them afterwards.
pub fn switch(user: &User, setgroups_allowed: bool) -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(Error::last_os("prctl(PR_SET_KEEPCAPS)"));
    }
    if setgroups_allowed {
        let groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
        // SAFETY: the pointer and length describe `groups`.
        if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
            return Err(Error::spec(
                "process.user.additionalGids",
                format!("setgroups {groups:?}: {}", std::io::Error::last_os_error()),
            ));
        }
    }
    let (uid, gid) = (user.uid(), user.gid());
    // SAFETY: plain id syscalls.
    if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
        return Err(Error::spec(
            "process.user.gid",
            format!("setresgid {gid}: {}", std::io::Error::last_os_error()),
        ));
    }
    // SAFETY: as above.
    if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
        return Err(Error::spec(
            "process.user.uid",
            format!("setresuid {uid}: {}", std::io::Error::last_os_error()),
        ));
    }
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    if let Some(mask) = user.umask() {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    Ok(())
}

/// The home directory of `uid` in `/etc/passwd` (as seen by the caller).
pub fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
    })
}
