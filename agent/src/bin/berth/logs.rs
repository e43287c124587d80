//! `berth logs CONTAINER [-f]`: a container's CRI log file, its text
//! reassembled (partial lines joined) and written to stdout or stderr as
//! the container wrote it.

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::time::Duration;

use anyhow::Context;
use berth_agent::cri_client::CriClient;
use berth_proto::v1 as cri;

#[derive(clap::Args)]
pub struct LogsArgs {
    /// Container id.
    container: String,
    /// Keep printing as the log grows, until the container exits.
    #[arg(short, long)]
    follow: bool,
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

fn emit(line: &str, timestamps: bool) -> std::io::Result<()> {
    let Some((time, stream, full, text)) = parse(line.trim_end_matches('\n')) else {
        return Ok(());
    };
    let mut out: Box<dyn Write> = match stream {
        "stderr" => Box::new(std::io::stderr()),
        _ => Box::new(std::io::stdout()),
    };
    if timestamps {
        write!(out, "{time} ")?;
    }
    write!(out, "{text}")?;
    if full {
        writeln!(out)?;
    }
    out.flush()
}

async fn running(c: &mut CriClient, id: &str) -> bool {
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

/// Prints the log.
pub async fn logs(c: &mut CriClient, a: &LogsArgs) -> anyhow::Result<()> {
    let status = c
        .runtime
        .container_status(cri::ContainerStatusRequest {
            container_id: a.container.clone(),
            verbose: false,
        })
        .await
        .with_context(|| format!("container {}", a.container))?
        .into_inner()
        .status
        .unwrap_or_default();
    let path = status.log_path;
    let file = std::fs::File::open(&path).with_context(|| format!("open {path}"))?;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("read {path}"))?;
        if n > 0 && line.ends_with('\n') {
            emit(&line, a.timestamps)?;
            continue;
        }
        if n > 0 {
            // A line still being written: read it again once it is complete.
            let back = i64::try_from(n).unwrap_or(0);
            reader.seek(SeekFrom::Current(-back))?;
        }
        if !a.follow || (n == 0 && !running(c, &a.container).await) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

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
}
