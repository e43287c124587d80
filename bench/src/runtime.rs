//! One OCI runtime under test (berth-runtime, runc or crun): its runc-compatible
//! commands, each timed, with its own state root and stderr logs, and the
//! containers it still owns, which are force-deleted when it is dropped.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::BenchError;

/// How long to wait for a started `/bin/true` container to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often to ask for the state while waiting.
const STATE_POLL: Duration = Duration::from_millis(2);
/// Longest reason kept from a runtime's stderr.
const REASON_MAX_CHARS: usize = 90;

/// A runtime binary with a private `--root` state directory.
#[derive(Debug)]
pub struct Runtime {
    name: &'static str,
    /// The binary as given (shown in the report).
    binary: PathBuf,
    /// The copy that is run (see [`Runtime::new`]).
    exe: PathBuf,
    root: PathBuf,
    logs: PathBuf,
    live: Mutex<BTreeSet<String>>,
    next_id: AtomicU64,
}

impl Runtime {
    /// A runtime called `name` run from `binary`, keeping its state and logs
    /// under `work_dir/name`.
    ///
    /// The binary is run from a copy in `work_dir/name`, so that every runtime
    /// loads from the same filesystem: in the cgroup v2 VM the shared project
    /// dir is virtiofs with `cache=auto`, which reads a binary again at every
    /// exec, while `/usr/sbin/runc` comes from the cached root. When the copy
    /// fails (a missing binary), the original is run and the probe reports why.
    pub fn new(
        name: &'static str,
        binary: PathBuf,
        work_dir: &Path,
    ) -> Result<Runtime, BenchError> {
        let root = work_dir.join(name).join("state");
        let logs = work_dir.join(name).join("logs");
        for dir in [&root, &logs] {
            fs::create_dir_all(dir).map_err(|source| BenchError::Io {
                op: "create directory",
                path: dir.clone(),
                source,
            })?;
        }
        let exe = local_copy(&binary, &work_dir.join(name)).unwrap_or_else(|| binary.clone());
        Ok(Runtime {
            name,
            binary,
            exe,
            root,
            logs,
            live: Mutex::new(BTreeSet::new()),
            next_id: AtomicU64::new(0),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The first line of `--version`, or `None` when it cannot be run.
    pub fn version(&self) -> Option<String> {
        let output = Command::new(&self.exe).arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        text.lines().next().map(|line| line.trim().to_string())
    }

    /// A fresh container id, unique per bench run, recorded as owned until it is
    /// deleted.
    pub fn new_id(&self, tag: &str) -> String {
        let id = format!(
            "bb{}-{}-{tag}-{}",
            std::process::id(),
            self.name,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        self.owned().insert(id.clone());
        id
    }

    /// `run --bundle BUNDLE ID`: the whole life of a container that exits.
    pub fn run(&self, bundle: &Path, id: &str) -> Result<Duration, BenchError> {
        let mut command = self.command("run");
        command.arg("--bundle").arg(bundle).arg(id);
        self.timed(command, "run", id)
    }

    /// `run --bundle BUNDLE ID`, returning what the container printed.
    pub fn run_printing(&self, bundle: &Path, id: &str) -> Result<String, BenchError> {
        let mut command = self.command("run");
        command.arg("--bundle").arg(bundle).arg(id);
        self.printing(command, "run", id)
    }

    /// `create --bundle BUNDLE ID`.
    pub fn create(&self, bundle: &Path, id: &str) -> Result<Duration, BenchError> {
        let mut command = self.command("create");
        command.arg("--bundle").arg(bundle).arg(id);
        self.timed(command, "create", id)
    }

    /// `start ID`.
    pub fn start(&self, id: &str) -> Result<Duration, BenchError> {
        let mut command = self.command("start");
        command.arg(id);
        self.timed(command, "start", id)
    }

    /// `exec ID ARGS...` (no terminal, not detached).
    pub fn exec(&self, id: &str, args: &[&str]) -> Result<Duration, BenchError> {
        let mut command = self.command("exec");
        command.arg(id).args(args);
        self.timed(command, "exec", id)
    }

    /// `exec ID ARGS...`, returning what the process printed.
    pub fn exec_printing(&self, id: &str, args: &[&str]) -> Result<String, BenchError> {
        let mut command = self.command("exec");
        command.arg(id).args(args);
        self.printing(command, "exec", id)
    }

    /// `delete ID` of a stopped container; the id is no longer owned afterwards.
    pub fn delete(&self, id: &str) -> Result<Duration, BenchError> {
        let mut command = self.command("delete");
        command.arg(id);
        let elapsed = self.timed(command, "delete", id)?;
        self.forget(id);
        Ok(elapsed)
    }

    /// `delete --force ID`, ignoring failure (the container may already be gone,
    /// e.g. after `run`); the id is no longer owned afterwards.
    pub fn force_delete(&self, id: &str) {
        let mut command = self.command("delete");
        command.arg("--force").arg(id);
        let _ = self.timed(command, "delete", id);
        self.forget(id);
    }

    /// Polls `state ID` until the container's status is `stopped`.
    pub fn wait_stopped(&self, id: &str) -> Result<(), BenchError> {
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.status(id)? == "stopped" {
                return Ok(());
            }
            std::thread::sleep(STATE_POLL);
        }
        Err(BenchError::NotStopped {
            runtime: self.name,
            id: id.to_string(),
            seconds: STOP_TIMEOUT.as_secs(),
        })
    }

    /// The `status` field of `state ID`.
    pub fn status(&self, id: &str) -> Result<String, BenchError> {
        let mut command = self.command("state");
        command
            .arg(id)
            .stdout(Stdio::piped())
            .stderr(self.log_file(id)?);
        let output = command
            .output()
            .map_err(|source| self.spawn_error(source))?;
        let failed = |reason: String| BenchError::Failed {
            runtime: self.name,
            verb: "state",
            id: id.to_string(),
            reason,
        };
        if !output.status.success() {
            return Err(failed(self.failure_reason(id, output.status)));
        }
        let state: serde_json::Value = serde_json::from_slice(&output.stdout)
            .map_err(|error| failed(format!("state is not json: {error}")))?;
        state["status"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| failed("state has no status".to_string()))
    }

    /// `BINARY --root ROOT VERB` with no stdin or stdout, in its own process
    /// group so that a Ctrl-C reaches only the bench, which then cleans up.
    fn command(&self, verb: &str) -> Command {
        let mut command = Command::new(&self.exe);
        command
            .arg("--root")
            .arg(&self.root)
            .arg(verb)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .process_group(0);
        command
    }

    /// Runs `command` with stderr appended to the container's log, returning its
    /// wall time or, on failure, the last line it printed.
    fn timed(
        &self,
        mut command: Command,
        verb: &'static str,
        id: &str,
    ) -> Result<Duration, BenchError> {
        command.stderr(self.log_file(id)?);
        let started = Instant::now();
        let status = command
            .status()
            .map_err(|source| self.spawn_error(source))?;
        let elapsed = started.elapsed();
        if status.success() {
            Ok(elapsed)
        } else {
            Err(BenchError::Failed {
                runtime: self.name,
                verb,
                id: id.to_string(),
                reason: self.failure_reason(id, status),
            })
        }
    }

    /// Runs `command` with stdout into a file and returns what it printed.
    fn printing(
        &self,
        mut command: Command,
        verb: &'static str,
        id: &str,
    ) -> Result<String, BenchError> {
        let path = self.logs.join(format!("{id}.out"));
        let io_error = |op| {
            let path = path.clone();
            move |source| BenchError::Io { op, path, source }
        };
        let file = fs::File::create(&path).map_err(io_error("create"))?;
        command.stdout(file);
        self.timed(command, verb, id)?;
        let printed = fs::read_to_string(&path).map_err(io_error("read"))?;
        let _ = fs::remove_file(&path);
        Ok(printed)
    }

    /// The container's stderr log (a file, not a pipe: a created container keeps
    /// its stderr open, and a pipe would block the reader until it exits).
    fn log_file(&self, id: &str) -> Result<fs::File, BenchError> {
        let path = self.log_path(id);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| BenchError::Io {
                op: "open log",
                path,
                source,
            })
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.logs.join(format!("{id}.log"))
    }

    /// The last line of the container's log (without the runtime's log-format
    /// decoration), else the exit status.
    fn failure_reason(&self, id: &str, status: std::process::ExitStatus) -> String {
        let log = fs::read_to_string(self.log_path(id)).unwrap_or_default();
        let line = log
            .lines()
            .rev()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(log_message)
            .unwrap_or_else(|| format!("exited with {status}"));
        line.chars().take(REASON_MAX_CHARS).collect()
    }

    fn spawn_error(&self, source: std::io::Error) -> BenchError {
        BenchError::Spawn {
            binary: self.binary.clone(),
            source,
        }
    }

    fn owned(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn forget(&self, id: &str) {
        self.owned().remove(id);
        let _ = fs::remove_file(self.log_path(id));
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let leftovers: Vec<String> = self.owned().iter().cloned().collect();
        for id in leftovers {
            self.force_delete(&id);
        }
    }
}

/// The `msg="..."` part of a structured log line, else the whole line.
/// Copies `binary` (found on `PATH` when it has no `/`) into `dir`, keeping
/// its file name and mode; `None` when it cannot.
fn local_copy(binary: &Path, dir: &Path) -> Option<PathBuf> {
    let source = if binary.components().count() > 1 {
        binary.to_path_buf()
    } else {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|d| d.join(binary))
            .find(|p| p.is_file())?
    };
    let copy = dir.join(source.file_name()?);
    fs::copy(&source, &copy).ok()?;
    Some(copy)
}

fn log_message(line: &str) -> String {
    line.split_once("msg=\"")
        .and_then(|(_, rest)| rest.rsplit_once('"'))
        .map(|(message, _)| message.replace("\\\"", "\""))
        .unwrap_or_else(|| line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_log_lines_give_their_message() {
        assert_eq!(
            log_message(r#"time="x" level=error msg="runc run failed: no \"x\"""#),
            r#"runc run failed: no "x""#
        );
        assert_eq!(
            log_message("cgroups in hybrid mode not supported"),
            "cgroups in hybrid mode not supported"
        );
    }
}
