//! One container held by the monitor: created through the runtime with its
//! stdio on pipes (or a pty) the monitor reads into its CRI log and to its
//! attach sessions, plus what the monitor knows of its lifecycle.

use std::{
    os::fd::{AsRawFd, OwnedFd},
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use berth_runtime::{
    cgroups::CgroupManager,
    container::{self as runtime, CreateOptions},
    time::rfc3339_nano,
    StateRoot,
};

use super::{
    attach::{Attacher, Attachments, ClientFds},
    sys::{self, ReadOutcome},
};
use crate::monitor::{
    cri_log::{ContainerLog, Stream},
    error::{MonitorError, Result},
    protocol::{AttachRequest, ContainerState, ContainerStatus, CreateRequest},
    records::{self, ContainerRecord, ExitRecord},
};

/// How long a log that refused a write (a full disk) rests before a retry.
const LOG_RETRY: Duration = Duration::from_secs(1);
/// Reads per stream per wake-up, so one chatty container cannot starve the loop.
const READS_PER_WAKE: usize = 4;
/// Reads per stream when draining at exit (processes left in a shared pid
/// namespace may still be writing: the rest is read by the loop).
const READS_AT_EXIT: usize = 64;

/// A container of the pod.
#[derive(Debug)]
pub struct Container {
    /// Monitor-local key (stable while the container is held).
    pub key: u64,
    /// Container id.
    pub id: String,
    /// Its init's host pid.
    pub pid: i32,
    bundle: PathBuf,
    tty: bool,
    /// Its attach sessions and its stdin (held open until closed by
    /// `stdin_once` or its exit).
    pub attach: Attachments,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    log: ContainerLog,
    /// Set while the log refuses writes: no reading until then.
    log_retry_at: Option<Instant>,
    /// Its lifecycle state.
    pub state: ContainerState,
    created_at: String,
    started_at: Option<String>,
    /// How it ended.
    pub exit: Option<ExitRecord>,
    cgroup: Option<CgroupManager>,
    oom_base: u64,
}

/// Creates container `r.id` through the runtime; the monitor becomes its parent.
pub fn create(
    root: &StateRoot,
    state_dir: &Path,
    r: &CreateRequest,
    key: u64,
) -> Result<Container> {
    let log = ContainerLog::open(&r.log_path)?;
    let null = sys::dev_null()?;
    let (stdin_keep, stdin_child) = if r.stdin {
        let (rd, wr) = sys::pipe()?;
        (Some(wr), rd)
    } else {
        (None, null)
    };
    let (out_r, out_w) = sys::pipe()?;
    let (err_r, err_w) = sys::pipe()?;
    let created = runtime::create(
        root,
        &CreateOptions {
            id: r.id.clone(),
            bundle: r.bundle.clone(),
            stdio: Some([
                stdin_child.as_raw_fd(),
                out_w.as_raw_fd(),
                err_w.as_raw_fd(),
            ]),
            ..Default::default()
        },
    )?;
    drop((stdin_child, out_w, err_w));
    let (stdout, stderr, stdin) = match created.pty_master {
        // A tty's input goes to the master (non-blocking: one file description).
        Some(master) => {
            let input = match stdin_keep {
                Some(_) => Some(sys::dup(&master, "pty master for stdin")?),
                None => None,
            };
            (master, None, input)
        }
        None => (out_r, Some(err_r), stdin_keep),
    };
    sys::set_nonblocking(&stdout)?;
    for fd in stderr.iter().chain(stdin.iter()) {
        sys::set_nonblocking(fd)?;
    }
    let cgroup = CgroupManager::new(Some(&created.state.cgroup_path), &r.id).ok();
    let oom_base = cgroup
        .as_ref()
        .and_then(|c| c.oom_kill_count().ok())
        .unwrap_or(0);
    let dir = records::container_dir(state_dir, &r.id);
    std::fs::create_dir_all(&dir).map_err(|e| MonitorError::io("create", &dir, e))?;
    Ok(Container {
        key,
        id: r.id.clone(),
        pid: created.state.pid,
        bundle: created.state.bundle.clone(),
        tty: stderr.is_none(),
        attach: Attachments::new(stdin, r.stdin_once),
        stdout: Some(stdout),
        stderr,
        log,
        log_retry_at: None,
        state: ContainerState::Created,
        created_at: created.state.created.clone(),
        started_at: None,
        exit: None,
        cgroup,
        oom_base,
    })
}

impl Container {
    /// The output fds to poll now (none while the log is backed up).
    pub fn pollable(&self) -> impl Iterator<Item = (Stream, i32)> + '_ {
        let ready = !self.log.has_backlog();
        [
            (Stream::Stdout, self.stdout.as_ref()),
            (Stream::Stderr, self.stderr.as_ref()),
        ]
        .into_iter()
        .filter_map(move |(s, fd)| Some((s, fd.filter(|_| ready)?.as_raw_fd())))
    }

    /// Reads `stream` into the log (a few reads, or until drained when `drain`).
    pub fn pump(&mut self, stream: Stream, buf: &mut [u8], drain: bool) {
        let max_reads = if drain { READS_AT_EXIT } else { READS_PER_WAKE };
        for _ in 0..max_reads {
            if self.log.has_backlog() {
                break;
            }
            let slot = match stream {
                Stream::Stdout => &mut self.stdout,
                Stream::Stderr => &mut self.stderr,
            };
            let Some(fd) = slot.as_ref() else { break };
            let ts = || rfc3339_nano(SystemTime::now());
            match sys::read(fd.as_raw_fd(), buf) {
                ReadOutcome::Data(n) => {
                    self.attach.fan_out(stream, &buf[..n]);
                    self.log.ingest(stream, &ts(), &buf[..n]);
                }
                ReadOutcome::Empty => break,
                ReadOutcome::Closed => {
                    *slot = None;
                    self.attach.stream_closed(stream);
                    self.log.finish(stream, &ts());
                }
            }
            self.flush_log();
        }
    }

    /// Writes the log's backlog; on failure, rests the log for a while.
    pub fn flush_log(&mut self) {
        match self.log.flush() {
            Ok(()) => self.log_retry_at = None,
            Err(e) => {
                if self.log_retry_at.is_none() {
                    eprintln!(
                        "berth-monitor: container {}: writing {}: {e}; output held back",
                        self.id,
                        self.log.path().display()
                    );
                }
                self.log_retry_at = Some(Instant::now() + LOG_RETRY);
            }
        }
    }

    /// When the backed-up log should be retried.
    pub fn log_retry_at(&self) -> Option<Instant> {
        self.log_retry_at
    }

    /// Reads all output already in the pipes (at exit, before the record).
    pub fn drain(&mut self, buf: &mut [u8]) {
        self.pump(Stream::Stdout, buf, true);
        self.pump(Stream::Stderr, buf, true);
    }

    /// Reopens the log file at its path.
    pub fn reopen_log(&mut self) -> Result<()> {
        self.log.reopen()?;
        self.flush_log();
        Ok(())
    }

    /// Marks the container started now.
    pub fn set_started(&mut self) -> String {
        let now = rfc3339_nano(SystemTime::now());
        self.state = ContainerState::Running;
        self.started_at = Some(now.clone());
        now
    }

    /// Records how the init ended, from its wait status.
    pub fn set_exited(&mut self, status: i32) -> &ExitRecord {
        let (exit_code, signal) = sys::decode_status(status);
        let oom_killed = self
            .cgroup
            .as_ref()
            .and_then(|c| c.oom_kill_count().ok())
            .is_some_and(|n| n > self.oom_base);
        self.state = ContainerState::Exited;
        self.exit.insert(ExitRecord {
            pid: self.pid,
            exit_code,
            signal,
            finished_at: rfc3339_nano(SystemTime::now()),
            oom_killed,
        })
    }

    /// Pipes for a new attach session of connection `conn` (attached once
    /// its reply went out, with [`Attachments::push`]); the container must
    /// be running. Returns whether it has a terminal too.
    pub fn open_attach(&self, conn: u64, r: &AttachRequest) -> Result<(Attacher, ClientFds, bool)> {
        if self.state != ContainerState::Running {
            return Err(MonitorError::WrongState {
                id: self.id.clone(),
                state: self.state.as_str(),
                op: "attach",
            });
        }
        // A tty attach gets a dup of the master for TIOCSWINSZ only: resizing
        // is then a plain ioctl in berthd, with no request to the monitor and
        // nothing to lose when berthd resizes while the loop is busy. Input
        // still goes through the monitor (see `attach`), which reads the
        // master's output for the log and every client.
        let resize = match (&self.stdout, self.tty) {
            (Some(master), true) => Some(sys::dup(master, "pty master for resize")?),
            _ => None,
        };
        let want = [r.stdin, r.stdout, r.stderr];
        let (a, fds) = self.attach.open(conn, want, !self.tty, resize)?;
        Ok((a, fds, self.tty))
    }

    /// Kills every process of the container (its cgroup, then its init).
    pub fn kill_all(&self) {
        if let Some(cg) = &self.cgroup {
            if let Err(e) = cg.kill_all(libc::SIGKILL) {
                eprintln!("berth-monitor: container {}: {e}", self.id);
            }
        }
        sys::kill_hard(self.pid);
    }

    /// Closes its output: unterminated tails are logged, the log flushed once.
    pub fn close_output(&mut self) {
        let ts = rfc3339_nano(SystemTime::now());
        self.stdout = None;
        self.stderr = None;
        self.log.finish(Stream::Stdout, &ts);
        self.log.finish(Stream::Stderr, &ts);
        self.flush_log();
    }

    /// Its status for `list`.
    pub fn status(&self) -> ContainerStatus {
        ContainerStatus {
            id: self.id.clone(),
            pid: self.pid,
            state: self.state,
            exit_code: self.exit.as_ref().map(|e| e.exit_code),
            signal: self.exit.as_ref().and_then(|e| e.signal),
            created_at: self.created_at.clone(),
            started_at: self.started_at.clone(),
            finished_at: self.exit.as_ref().map(|e| e.finished_at.clone()),
            oom_killed: self.exit.as_ref().is_some_and(|e| e.oom_killed),
            log_path: self.log.path().to_path_buf(),
        }
    }

    /// Its entry in `monitor.json`.
    pub fn record(&self) -> ContainerRecord {
        ContainerRecord {
            id: self.id.clone(),
            pid: self.pid,
            bundle: self.bundle.clone(),
            log_path: self.log.path().to_path_buf(),
            tty: self.tty,
            created_at: self.created_at.clone(),
            started_at: self.started_at.clone(),
        }
    }
}
