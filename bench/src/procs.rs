//! What the benches read about processes from /proc: the list of processes
//! with their parent, name and command line, and their memory (RSS, PSS).

use std::fs;

/// One process, as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    /// `comm` (at most 15 bytes of the executable's name).
    pub comm: String,
    /// The arguments, split at NUL.
    pub args: Vec<String>,
}

impl Proc {
    /// Whether `flag` is followed by `value` among the arguments.
    pub fn has_arg_pair(&self, flag: &str, value: &str) -> bool {
        self.args
            .windows(2)
            .any(|pair| pair[0] == flag && pair[1] == value)
    }
}

/// Every process that can be read right now (those that exit meanwhile are
/// skipped).
pub fn all() -> Vec<Proc> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read)
        .collect()
}

/// Reads one process; `None` once it is gone.
pub fn read(pid: u32) -> Option<Proc> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (comm, ppid) = parse_stat(&stat)?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args = cmdline
        .split(|byte| *byte == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    Some(Proc {
        pid,
        ppid,
        comm,
        args,
    })
}

/// `comm` and the parent pid from a `/proc/<pid>/stat` line; the name is in
/// parentheses and may itself contain spaces and parentheses.
fn parse_stat(stat: &str) -> Option<(String, u32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, ppid))
}

/// Resident and proportional set size of one process, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub rss: u64,
    pub pss: u64,
}

impl std::ops::Add for Memory {
    type Output = Memory;
    fn add(self, other: Memory) -> Memory {
        Memory {
            rss: self.rss + other.rss,
            pss: self.pss + other.pss,
        }
    }
}

/// The memory of `pid` from `/proc/<pid>/smaps_rollup`; `None` once it is
/// gone.
pub fn memory(pid: u32) -> Option<Memory> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    Some(parse_rollup(&text))
}

fn parse_rollup(text: &str) -> Memory {
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    Memory {
        rss: field("Rss"),
        pss: field("Pss"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_names() {
        assert_eq!(
            parse_stat("42 (a (b) c) S 7 42 42 0 -1"),
            Some(("a (b) c".to_string(), 7))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn rollup_fields_in_bytes() {
        let text = "55d0-7ffd ---p 00000000 00:00 0 [rollup]\n\
                    Rss:                3300 kB\nPss:                1200 kB\n\
                    Pss_Anon:            900 kB\n";
        assert_eq!(
            parse_rollup(text),
            Memory {
                rss: 3300 * 1024,
                pss: 1200 * 1024
            }
        );
    }

    #[test]
    fn reads_itself() {
        let me = read(std::process::id()).unwrap();
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(!me.args.is_empty());
        assert!(memory(me.pid).unwrap().rss > 0);
    }
}
