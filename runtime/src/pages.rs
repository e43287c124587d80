//! Giving back the resident pages of code that ran once. A long-lived
//! process that runs a verb now and then (berth's per-pod monitor creates,
//! starts and deletes a few containers, then mostly sleeps in `poll`) keeps
//! every code page it ever touched mapped, plus the kernel's fault-around
//! neighbours: megabytes of RSS for a loop that needs a few pages. Those are
//! page-cache pages of the executable and its libraries, so dropping this
//! process's mappings of them (`MADV_DONTNEED`) frees nothing shared and
//! loses nothing: the next call faults them back in from the page cache.
//!
//! Only private, read-only file mappings (`r-xp` text, `r--p` read-only
//! data) whose `Anonymous` count in `/proc/self/smaps` is zero are dropped:
//! none of their pages was ever written, so there is no private copy to
//! lose. Relocated data (`r--p` after RELRO has private copies) and
//! everything writable are left alone.

use std::sync::atomic::{AtomicBool, Ordering};

static AFTER_VERBS: AtomicBool = AtomicBool::new(false);
static PENDING: AtomicBool = AtomicBool::new(false);

/// Makes every container verb of this library (create, start, kill, exec,
/// delete) leave a release pending, for supervisors that stay resident
/// between verbs and call [`release_if_pending`] where they go idle (after
/// they have answered, right before they sleep: the pages answering
/// touches are given back too). Off by default.
pub fn release_after_verbs(on: bool) {
    AFTER_VERBS.store(on, Ordering::Relaxed);
}

/// Marks a release pending if [`release_after_verbs`] asked for it.
pub(crate) fn after_verb() {
    if AFTER_VERBS.load(Ordering::Relaxed) {
        PENDING.store(true, Ordering::Relaxed);
    }
}

/// Runs [`release_code_pages`] if a verb ran since the last call; a load of
/// one flag otherwise.
pub fn release_if_pending() {
    if PENDING.swap(false, Ordering::Relaxed) {
        release_code_pages();
    }
}

/// Drops this process's resident pages of its unmodified read-only file
/// mappings (see the module docs). Costs a read of `/proc/self/smaps` and
/// one `madvise` per mapping; errors are ignored (this only saves memory).
pub fn release_code_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for (start, len) in pristine_file_mappings(&smaps) {
        // SAFETY: the range is a whole private, read-only file mapping of
        // this process without private copies: MADV_DONTNEED only unmaps
        // pages identical to the file's, which fault back in on use.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    }
}

/// `(start, length)` of every mapping in `smaps` text that maps a file
/// private and read-only and has no anonymous (copied-on-write) pages.
fn pristine_file_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut candidate = None;
    for line in smaps.lines() {
        if let Some(range) = mapping_header(line) {
            candidate = range;
        } else if let Some(kb) = line.strip_prefix("Anonymous:") {
            if let Some(range) = candidate.take() {
                if kb.trim() == "0 kB" {
                    out.push(range);
                }
            }
        }
    }
    out
}

/// For a mapping's header line: `Some(Some(range))` for a private,
/// read-only file mapping, `Some(None)` for any other mapping, `None` for
/// the lines of fields that follow a header.
fn mapping_header(line: &str) -> Option<Option<(usize, usize)>> {
    let mut fields = line.split_ascii_whitespace();
    let (lo, hi) = fields.next()?.split_once('-')?;
    let lo = usize::from_str_radix(lo, 16).ok()?;
    let hi = usize::from_str_radix(hi, 16).ok()?;
    let perms = fields.next()?;
    let inode = fields.nth(2)?;
    let read_only = perms == "r-xp" || perms == "r--p";
    // inode 0: anonymous, [vdso], [vvar].
    Some((read_only && inode != "0").then(|| (lo, hi.saturating_sub(lo))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0900000-55d0c0a00000 r--p 00000000 fe:00 1234 /usr/bin/x
Size:               1024 kB
Anonymous:             0 kB
55d0c0a00000-55d0c0c00000 r-xp 00100000 fe:00 1234 /usr/bin/x
Rss:                 704 kB
Anonymous:             0 kB
55d0c0c00000-55d0c0d00000 r--p 00300000 fe:00 1234 /usr/bin/x
Anonymous:           268 kB
55d0c0d00000-55d0c0d01000 rw-p 00400000 fe:00 1234 /usr/bin/x
Anonymous:             4 kB
7ffd1a5f0000-7ffd1a5f2000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";

    #[test]
    fn only_unwritten_read_only_file_mappings() {
        assert_eq!(
            pristine_file_mappings(SMAPS),
            vec![(0x55d0c0900000, 0x100000), (0x55d0c0a00000, 0x200000)]
        );
    }

    #[test]
    fn headers_and_fields() {
        assert_eq!(mapping_header("Anonymous:   0 kB"), None);
        assert_eq!(mapping_header("VmFlags: rd ex mr mw me"), None);
        assert_eq!(
            mapping_header("1000-3000 rw-p 00000000 fe:00 9 /x"),
            Some(None)
        );
    }

    /// Read-only data of this binary, faulted back from the file after a release.
    static TABLE: [u8; 3 * 4096] = {
        let mut t = [0u8; 3 * 4096];
        let mut i = 0;
        while i < t.len() {
            t[i] = (i % 251) as u8;
            i += 1;
        }
        t
    };

    #[test]
    fn release_keeps_code_constants_and_written_memory() {
        // Written memory (heap, and a relocated/written mapping) must
        // survive: dropping it would read back zeroes.
        let heap: Vec<u64> = (0..100_000u64).map(|i| i * 7 + 3).collect();
        let mappings =
            pristine_file_mappings(&std::fs::read_to_string("/proc/self/smaps").unwrap());
        assert!(
            !mappings.is_empty(),
            "this test binary has pristine code mappings"
        );
        release_code_pages();
        assert!(heap.iter().enumerate().all(|(i, v)| *v == i as u64 * 7 + 3));
        let sum: u64 = std::hint::black_box(&TABLE)
            .iter()
            .map(|b| u64::from(*b))
            .sum();
        let want: u64 = (0..TABLE.len()).map(|i| (i % 251) as u64).sum();
        assert_eq!(sum, want, "constants fault back in from the file");
    }
}
