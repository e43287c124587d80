//! The CRI container log format: `<RFC3339Nano> <stdout|stderr> <P|F> <text>\n`.
//! A line longer than [`MAX_LINE`] bytes is cut into `P` (partial) records
//! ending with an `F` (full) one; a `\r` before the `\n` is dropped; an
//! unterminated last line is written as `F` at end of stream.
//!
//! [`ContainerLog`] never drops data: what the file refused (a full disk) stays
//! in its backlog, and the caller stops reading the container's output until
//! the backlog is written, so the container is slowed down, not its log cut.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use super::error::{MonitorError, Result};

/// The longest text of one record; longer lines are split.
pub const MAX_LINE: usize = 16 * 1024;

/// A container output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output (and a terminal's output).
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    fn tag(self) -> &'static [u8] {
        match self {
            Stream::Stdout => b"stdout",
            Stream::Stderr => b"stderr",
        }
    }
}

/// Cuts one stream into records. Pure logic: holds the unterminated tail.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds `data`; calls `emit(partial, text)` for every finished record.
    pub fn feed(&mut self, mut data: &[u8], emit: &mut impl FnMut(bool, &[u8])) {
        while !data.is_empty() {
            match data.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    let (line, rest) = (&data[..nl], &data[nl + 1..]);
                    if self.pending.is_empty() {
                        self.emit_line(line, emit);
                    } else {
                        self.pending.extend_from_slice(line);
                        let mut whole = std::mem::take(&mut self.pending);
                        self.emit_line(&whole, emit);
                        whole.clear();
                        self.pending = whole;
                    }
                    data = rest;
                }
                None => {
                    self.pending.extend_from_slice(data);
                    self.emit_full_chunks(emit);
                    data = &[];
                }
            }
        }
    }

    /// End of stream: the unterminated tail, if any, as a full record.
    pub fn finish(&mut self, emit: &mut impl FnMut(bool, &[u8])) {
        if !self.pending.is_empty() {
            emit(false, &self.pending);
            self.pending.clear();
        }
        self.pending.shrink_to_fit();
    }

    /// A terminated line: `P` chunks, then the rest as `F`.
    fn emit_line(&self, line: &[u8], emit: &mut impl FnMut(bool, &[u8])) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut rest = line;
        while rest.len() > MAX_LINE {
            emit(true, &rest[..MAX_LINE]);
            rest = &rest[MAX_LINE..];
        }
        emit(false, rest);
    }

    /// Writes out full `P` chunks of an unterminated line while more than
    /// one chunk is pending (exactly one chunk may still end with `\n`).
    fn emit_full_chunks(&mut self, emit: &mut impl FnMut(bool, &[u8])) {
        let mut start = 0;
        while self.pending.len() - start > MAX_LINE {
            emit(true, &self.pending[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        if start > 0 {
            self.pending.drain(..start);
        }
    }
}

/// One container's log file and the state of its two streams.
#[derive(Debug)]
pub struct ContainerLog {
    path: PathBuf,
    file: File,
    stdout: LineSplitter,
    stderr: LineSplitter,
    /// Formatted records not written yet.
    backlog: Vec<u8>,
}

fn open_log(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| MonitorError::io("create", dir, e))?;
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| MonitorError::io("open log", path, e))
}

impl ContainerLog {
    /// Opens (appends to) the log at `path`, creating its directory.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            file: open_log(path)?,
            path: path.to_path_buf(),
            stdout: LineSplitter::default(),
            stderr: LineSplitter::default(),
            backlog: Vec::new(),
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds `data` read from `stream` at time `ts` (RFC 3339) to the backlog.
    pub fn ingest(&mut self, stream: Stream, ts: &str, data: &[u8]) {
        let (splitter, backlog) = match stream {
            Stream::Stdout => (&mut self.stdout, &mut self.backlog),
            Stream::Stderr => (&mut self.stderr, &mut self.backlog),
        };
        splitter.feed(data, &mut |partial, text| {
            format_record(backlog, ts, stream, partial, text)
        });
    }

    /// End of `stream`: its unterminated tail becomes a full record.
    pub fn finish(&mut self, stream: Stream, ts: &str) {
        let (splitter, backlog) = match stream {
            Stream::Stdout => (&mut self.stdout, &mut self.backlog),
            Stream::Stderr => (&mut self.stderr, &mut self.backlog),
        };
        splitter.finish(&mut |partial, text| format_record(backlog, ts, stream, partial, text));
    }

    /// Writes the backlog. On an error (a full disk) what is left stays for the
    /// next call, and the error is returned.
    pub fn flush(&mut self) -> std::io::Result<()> {
        while !self.backlog.is_empty() {
            match self.file.write(&self.backlog) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.backlog.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.backlog.capacity() > 4 * MAX_LINE {
            self.backlog.shrink_to(4 * MAX_LINE);
        }
        Ok(())
    }

    /// Whether records wait to be written.
    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Reopens the path (after the caller renamed the old file). On failure the
    /// old file stays in use.
    pub fn reopen(&mut self) -> Result<()> {
        let file = open_log(&self.path)?;
        // What the old file refused goes to the new one.
        self.file = file;
        Ok(())
    }
}

/// Appends one record to `out`.
fn format_record(out: &mut Vec<u8>, ts: &str, stream: Stream, partial: bool, text: &[u8]) {
    out.reserve(ts.len() + text.len() + 12);
    out.extend_from_slice(ts.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.tag());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(text);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<(bool, Vec<u8>)> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        let mut emit = |p: bool, t: &[u8]| out.push((p, t.to_vec()));
        for c in chunks {
            s.feed(c, &mut emit);
        }
        s.finish(&mut emit);
        out
    }

    #[test]
    fn lines_across_reads_and_unterminated_tail() {
        let out = split(&[b"ab", b"c\nde\r\n\n", b"tail"]);
        assert_eq!(
            out,
            [
                (false, b"abc".to_vec()),
                (false, b"de".to_vec()),
                (false, b"".to_vec()),
                (false, b"tail".to_vec())
            ]
        );
    }

    #[test]
    fn long_lines_become_partial_chunks() {
        let line = vec![b'x'; 2 * MAX_LINE + 5];
        let mut data = line.clone();
        data.push(b'\n');
        // Fed in odd pieces and whole: the same records.
        for pieces in [vec![&data[..]], data.chunks(5000).collect::<Vec<_>>()] {
            let out = split(&pieces);
            assert_eq!(out.len(), 3);
            assert!(out[0].0 && out[1].0 && !out[2].0);
            assert_eq!(out[0].1.len(), MAX_LINE);
            assert_eq!(out[2].1.len(), 5);
        }
        // Exactly MAX_LINE then newline: one full record.
        let mut exact = vec![b'y'; MAX_LINE];
        exact.push(b'\n');
        let out = split(&[&exact[..MAX_LINE], &exact[MAX_LINE..]]);
        assert_eq!(out, [(false, vec![b'y'; MAX_LINE])]);
    }

    #[test]
    fn log_file_gets_formatted_records_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/c.log");
        let mut log = ContainerLog::open(&path).unwrap();
        log.ingest(Stream::Stdout, "T1", b"a\nb");
        log.ingest(Stream::Stderr, "T2", b"e\n");
        log.flush().unwrap();
        std::fs::rename(&path, dir.path().join("old.log")).unwrap();
        log.reopen().unwrap();
        log.finish(Stream::Stdout, "T3");
        log.flush().unwrap();
        let old = std::fs::read_to_string(dir.path().join("old.log")).unwrap();
        assert_eq!(old, "T1 stdout F a\nT2 stderr F e\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "T3 stdout F b\n");
    }

    #[test]
    fn full_disk_keeps_the_backlog() {
        // /dev/full fails every write with ENOSPC.
        let mut log = ContainerLog::open(Path::new("/dev/full")).unwrap();
        log.ingest(Stream::Stdout, "T", b"kept\n");
        assert!(log.flush().is_err());
        assert!(log.has_backlog());
        assert_eq!(log.backlog, b"T stdout F kept\n");
    }
}
