//! `kill`: a signal to the init, or with `all` to every process of the cgroup.

use crate::{
    cgroups::CgroupManager,
    error::{Error, Result},
    state::{StateRoot, Status},
};

/// Sends `signal` to container `id`.
pub fn kill(root: &StateRoot, id: &str, signal: i32, all: bool) -> Result<()> {
    super::verb(kill_inner(root, id, signal, all))
}

fn kill_inner(root: &StateRoot, id: &str, signal: i32, all: bool) -> Result<()> {
    let st = root.load(id)?;
    let status = st.status(root);
    if status == Status::Stopped {
        return Err(Error::WrongState {
            id: id.into(),
            status: status.to_string(),
            op: "kill",
        });
    }
    if all {
        CgroupManager::new(Some(&st.cgroup_path), id)?.kill_all(signal)?;
        return Ok(());
    }
    // SAFETY: kill(2) with a pid and signal number.
    if unsafe { libc::kill(st.pid, signal) } != 0 {
        return Err(Error::last_os(format!(
            "kill {} with signal {signal}",
            st.pid
        )));
    }
    Ok(())
}

/// Parses `KILL`, `SIGKILL` or `9`.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| Error::spec("signal", format!("unknown signal {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("15").unwrap(), 15);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }
}
