//! `berth logs POD [-c C] [-f] [--previous]` for manifest pods, and
//! `berth logs CONTAINER-ID` for any CRI container: a CRI log file, its
//! text reassembled (partial lines joined) and written to stdout or stderr
//! as the container wrote it. [`Cursor`] reads a growing log; `berth run`
//! follows its pods' logs with it too.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use berth_agent::cri_client::CriClient;
use berth_agent::kubelet::status::{PodStatus, State};
use berth_proto::v1 as cri;

use crate::kube::Kube;

#[derive(clap::Args)]
pub struct LogsArgs {
    /// Pod name (a manifest pod), or a container id.
    target: String,
    /// The pod's container (needed when it has several).
    #[arg(short, long)]
    container: Option<String>,
    /// The pod's namespace.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// Keep printing as the log grows, until the container exits.
    #[arg(short, long)]
    follow: bool,
    /// The log of the container's previous instance (before its restart).
    #[arg(short, long)]
    previous: bool,
    /// Prefix each line with its timestamp.
    #[arg(short, long)]
    timestamps: bool,
}

/// One CRI log line: `<time> <stream> <P|F> <text>`.
fn parse(line: &str) -> Option<(&str, &str, bool, &str)> {
    let (time, rest) = line.split_once(' ')?;
    let (stream, rest) = rest.split_once(' ')?;
    let (tag, text) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((time, stream, tag == "F", text))
}

/// Writes one CRI log line's text where it came from (stdout/stderr),
/// after `prefix`.
pub fn emit(line: &str, timestamps: bool, prefix: &str) -> std::io::Result<()> {
    let Some((time, stream, full, text)) = parse(line.trim_end_matches('\n')) else {
        return Ok(());
    };
    let mut out: Box<dyn Write> = match stream {
        "stderr" => Box::new(std::io::stderr()),
        _ => Box::new(std::io::stdout()),
    };
    write!(out, "{prefix}")?;
    if timestamps {
        write!(out, "{time} ")?;
    }
    write!(out, "{text}")?;
    if full {
        writeln!(out)?;
    }
    out.flush()
}

/// A read position in a growing log file.
#[derive(Debug, Clone)]
pub struct Cursor {
    pub path: PathBuf,
    offset: u64,
}

impl Cursor {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            offset: 0,
        }
    }

    /// The complete lines written since the last call (a line still being
    /// written is read next time). A missing file has none yet.
    pub fn lines(&mut self) -> anyhow::Result<Vec<String>> {
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("open {}", self.path.display())),
        };
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .with_context(|| format!("read {}", self.path.display()))?;
        let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
            return Ok(Vec::new());
        };
        self.offset += end as u64 + 1;
        Ok(String::from_utf8_lossy(&buf[..=end])
            .lines()
            .map(str::to_string)
            .collect())
    }
}

/// Prints `path`, following it while `more` says the writer is alive.
async fn print_file<F, Fut>(
    path: &Path,
    follow: bool,
    timestamps: bool,
    mut more: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    if !path.exists() {
        bail!("no log file {}", path.display());
    }
    let mut cur = Cursor::new(path);
    loop {
        let lines = cur.lines()?;
        let idle = lines.is_empty();
        for l in lines {
            emit(&l, timestamps, "")?;
        }
        if !follow || (idle && !more().await) {
            // One last read: what was written just before the exit.
            for l in cur.lines()? {
                emit(&l, timestamps, "")?;
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn cri_running(c: &mut CriClient, id: &str) -> bool {
    c.runtime
        .container_status(cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        })
        .await
        .ok()
        .and_then(|r| r.into_inner().status)
        .is_some_and(|s| s.state == cri::ContainerState::ContainerRunning as i32)
}

/// The container of `pod` that `-c` names, or its only app container.
pub fn pick_container<'a>(
    pod: &'a PodStatus,
    name: Option<&str>,
) -> anyhow::Result<&'a berth_agent::kubelet::status::ContainerView> {
    let all: Vec<&str> = pod
        .init_containers
        .iter()
        .chain(&pod.containers)
        .map(|c| c.name.as_str())
        .collect();
    match name {
        Some(n) => pod.container(n).with_context(|| {
            format!(
                "container {n:?} is not valid for pod {}: choose one of {all:?}",
                pod.name
            )
        }),
        None if pod.containers.len() == 1 => Ok(&pod.containers[0]),
        None => bail!(
            "a container name must be specified for pod {} (-c), choose one of {all:?}",
            pod.name
        ),
    }
}

/// Prints the log.
pub async fn logs(c: &mut CriClient, kube: &Kube, a: &LogsArgs) -> anyhow::Result<()> {
    let Some(pod) = kube.pod(&a.namespace, &a.target) else {
        return container_logs(c, a).await;
    };
    let view = pick_container(&pod, a.container.as_deref())?;
    let name = view.name.clone();
    if a.previous {
        let path = view.previous_log_path.as_deref().with_context(|| {
            format!(
                "previous terminated container {name:?} in pod {:?} not found",
                pod.name
            )
        })?;
        return print_file(Path::new(path), false, a.timestamps, || async { false }).await;
    }
    let path = view
        .log_path
        .clone()
        .with_context(|| format!("container {name:?} in pod {:?} has not started", pod.name))?;
    let id = view.container_id.clone();
    let (ns, pod_name) = (a.namespace.clone(), a.target.clone());
    print_file(Path::new(&path), a.follow, a.timestamps, || {
        let now = kube.pod(&ns, &pod_name);
        let name = name.clone();
        let id = id.clone();
        async move {
            now.as_ref()
                .and_then(|p| p.container(&name))
                .is_some_and(|v| v.container_id == id && matches!(v.state, State::Running { .. }))
        }
    })
    .await
}

async fn container_logs(c: &mut CriClient, a: &LogsArgs) -> anyhow::Result<()> {
    let status = c
        .runtime
        .container_status(cri::ContainerStatusRequest {
            container_id: a.target.clone(),
            verbose: false,
        })
        .await
        .with_context(|| {
            format!(
                "no pod {:?} in namespace {:?} and no container with that id",
                a.target, a.namespace
            )
        })?
        .into_inner()
        .status
        .unwrap_or_default();
    let path = PathBuf::from(status.log_path);
    let id = a.target.clone();
    print_file(&path, a.follow, a.timestamps, || {
        let mut cc = c.clone();
        let id = id.clone();
        async move { cri_running(&mut cc, &id).await }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines_parse() {
        assert_eq!(
            parse("2026-01-01T00:00:00.000000000Z stdout F hello world"),
            Some((
                "2026-01-01T00:00:00.000000000Z",
                "stdout",
                true,
                "hello world"
            ))
        );
        assert_eq!(parse("t stderr P part").map(|p| p.2), Some(false));
        assert_eq!(parse("t stdout F"), Some(("t", "stdout", true, "")));
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn cursor_reads_complete_lines_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        let mut c = Cursor::new(&p);
        assert!(c.lines().unwrap().is_empty(), "no file yet");
        std::fs::write(&p, "t stdout F a\nt stdout F b\nt stdout P c").unwrap();
        assert_eq!(c.lines().unwrap(), ["t stdout F a", "t stdout F b"]);
        assert!(c.lines().unwrap().is_empty());
        std::fs::write(&p, "t stdout F a\nt stdout F b\nt stdout P c\n").unwrap();
        assert_eq!(c.lines().unwrap(), ["t stdout P c"]);
    }
}
