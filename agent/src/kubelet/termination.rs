//! A terminated container's message, as kubelet reads it: the file at its
//! terminationMessagePath (at most 4096 bytes), or with
//! FallbackToLogsOnError, for a failed container whose file is empty, the
//! tail of its log (80 lines, at most 2048 bytes).

use std::path::Path;

use crate::manifest::lifecycle::TerminationMessagePolicy;

const MAX_FILE_BYTES: usize = 4096;
const MAX_LOG_LINES: usize = 80;
const MAX_LOG_BYTES: usize = 2048;

/// The termination message of a container that exited with `exit_code`.
pub fn message(
    file: &Path,
    policy: TerminationMessagePolicy,
    exit_code: i32,
    log: Option<&Path>,
) -> String {
    let mut text = std::fs::read(file).unwrap_or_default();
    text.truncate(MAX_FILE_BYTES);
    let text = String::from_utf8_lossy(&text).into_owned();
    if !text.is_empty()
        || policy != TerminationMessagePolicy::FallbackToLogsOnError
        || exit_code == 0
    {
        return text;
    }
    log.and_then(|l| std::fs::read_to_string(l).ok())
        .map(|l| log_tail(&l))
        .unwrap_or_default()
}

/// The text of the last lines of a CRI log (`<time> <stream> <P|F> <text>`).
pub fn log_tail(log: &str) -> String {
    let mut text = String::new();
    for line in log.lines() {
        let mut parts = line.splitn(4, ' ');
        let (_, _, tag, body) = (parts.next(), parts.next(), parts.next(), parts.next());
        text.push_str(body.unwrap_or_default());
        if tag != Some("P") {
            text.push('\n');
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut out = lines[lines.len().saturating_sub(MAX_LOG_LINES)..].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    if out.len() > MAX_LOG_BYTES {
        let mut cut = out.len() - MAX_LOG_BYTES;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        out = out[cut..].to_string();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_log_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("msg");
        let log = dir.path().join("0.log");
        std::fs::write(
            &log,
            "t stdout F one\nt stderr P tw\nt stderr F o\nt stdout F three\n",
        )
        .unwrap();
        std::fs::write(&file, "").unwrap();
        let fallback = TerminationMessagePolicy::FallbackToLogsOnError;
        assert_eq!(message(&file, fallback, 1, Some(&log)), "one\ntwo\nthree\n");
        assert_eq!(message(&file, fallback, 0, Some(&log)), "");
        assert_eq!(
            message(&file, TerminationMessagePolicy::File, 1, Some(&log)),
            ""
        );
        std::fs::write(&file, "done: 42").unwrap();
        assert_eq!(message(&file, fallback, 1, Some(&log)), "done: 42");
    }

    #[test]
    fn tail_is_bounded() {
        let log: String = (0..200).map(|i| format!("t stdout F line {i}\n")).collect();
        let t = log_tail(&log);
        assert_eq!(t.lines().count(), 80);
        assert!(t.starts_with("line 120\n"));
        let long = format!("t stdout F {}\n", "x".repeat(5000));
        assert_eq!(log_tail(&long).len(), MAX_LOG_BYTES);
    }
}
