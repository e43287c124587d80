//! `berth exec` and `berth attach`: the flags, which terminal to ask for
//! (and whether the local one goes raw), and the session on the streaming
//! URL berthd hands out, with the CLI's own stdin, stdout and stderr. Exec
//! without `-i`/`-t` stays an ExecSync (`pods::exec`). A session ends with
//! the remote command (its exit code is berth's), at the end of stdin for
//! an attach (detach), or at SIGINT/SIGTERM/SIGHUP (exit 128 + signal); the
//! terminal is restored on each of these.

use std::time::Duration;

use anyhow::Context;
use berth_agent::cri_client::CriClient;
use berth_agent::streaming::client::{self, BoxRead, CommandIo, Options};
use berth_proto::v1 as cri;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::oneshot;

use crate::kube::Kube;
use crate::pods::{self, ExitStatus};
use crate::stdio::{StdinReader, ThreadWriter};
use crate::target::{self, Target};
use crate::terminal::{self, RawMode};

/// After the user's stdin ends, how long an attach still shows the
/// container's output (its reaction to the end of its input) before it
/// detaches.
const DETACH_GRACE: Duration = Duration::from_millis(500);
/// How long an ended attach waits for berthd to record the container's exit.
const EXIT_WAIT: Duration = Duration::from_secs(5);
/// kubectl's words when there can be no local terminal.
const NOT_A_TERMINAL: &str =
    "Unable to use a TTY - input is not a terminal or the right kind of file";

/// Which pod or container, as the user names it.
#[derive(clap::Args)]
pub struct TargetArgs {
    /// Pod name (a manifest pod), pod sandbox id, or container id.
    target: String,
    /// The pod's container (needed when it has several).
    #[arg(short, long)]
    container: Option<String>,
    /// The manifest pod's namespace.
    #[arg(short, long, default_value = "default")]
    namespace: String,
}

impl TargetArgs {
    fn target(&self) -> Target<'_> {
        Target {
            name: &self.target,
            container: self.container.as_deref(),
            namespace: &self.namespace,
        }
    }
}

#[derive(clap::Args)]
pub struct ExecArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Pass berth's stdin to the command (until it ends).
    #[arg(short = 'i', long)]
    stdin: bool,
    /// Run the command on a terminal; with -i, the local terminal is put in
    /// raw mode and its size follows the window's.
    #[arg(short = 't', long)]
    tty: bool,
    /// Seconds before it is killed (0: no limit; only without -i and -t).
    #[arg(long, default_value_t = 0, conflicts_with_all = ["stdin", "tty"])]
    timeout: i64,
    /// The command.
    #[arg(last = true, required = true)]
    cmd: Vec<String>,
}

/// When `berth attach` uses the local terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TtyMode {
    /// Raw mode when the container has a terminal, -i is given and stdin
    /// is a terminal.
    Auto,
    /// As auto, and say why when it cannot be.
    Always,
    /// Never put the local terminal in raw mode.
    Never,
}

#[derive(clap::Args)]
pub struct AttachArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Pass berth's stdin to the container; berth detaches when it ends.
    #[arg(short = 'i', long)]
    stdin: bool,
    /// The local terminal: `-t` is `--tty=always`. The container's terminal
    /// is its own (from its config).
    #[arg(
        short = 't',
        long,
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_value = "auto",
        default_missing_value = "always"
    )]
    tty: TtyMode,
}

/// The terminal of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Terminal {
    /// The remote process has a terminal (one output stream, no stderr).
    remote: bool,
    /// The local terminal goes raw.
    raw: bool,
    /// The local window size is sent.
    resize: bool,
}

impl Terminal {
    /// Exec: `-t` asks for a remote terminal; with `-i` it needs a local
    /// one (else, as kubectl, a warning and no terminal at all).
    fn exec(stdin: bool, tty: bool, stdin_is_terminal: bool) -> (Terminal, Option<&'static str>) {
        match (tty, stdin, stdin_is_terminal) {
            (false, _, _) => (Terminal::NONE, None),
            (true, true, false) => (Terminal::NONE, Some(NOT_A_TERMINAL)),
            (true, true, true) => (
                Terminal {
                    remote: true,
                    raw: true,
                    resize: true,
                },
                None,
            ),
            // No input to send: the output is a terminal's, the local
            // terminal stays as it is (Ctrl-C stays berth's).
            (true, false, _) => (
                Terminal {
                    remote: true,
                    raw: false,
                    resize: true,
                },
                None,
            ),
        }
    }

    /// Attach: the remote terminal is the container's; the local one goes
    /// raw only if it can carry the user's input to it.
    fn attach(
        stdin: bool,
        mode: TtyMode,
        container_tty: bool,
        stdin_is_terminal: bool,
    ) -> (Terminal, Option<String>) {
        let raw = mode != TtyMode::Never && container_tty && stdin && stdin_is_terminal;
        let why = match (mode, container_tty, stdin, stdin_is_terminal) {
            (TtyMode::Always, false, _, _) => {
                Some("Unable to use a TTY - the container did not allocate one".to_string())
            }
            (TtyMode::Always, true, false, _) => {
                Some("Unable to use a TTY - it needs stdin (-i)".to_string())
            }
            (TtyMode::Always, true, true, false) => Some(NOT_A_TERMINAL.to_string()),
            _ => None,
        };
        let t = Terminal {
            remote: container_tty,
            raw,
            resize: raw,
        };
        (t, why)
    }

    const NONE: Terminal = Terminal {
        remote: false,
        raw: false,
        resize: false,
    };
}

/// Runs `berth exec`.
pub async fn exec(c: &mut CriClient, kube: &Kube, a: &ExecArgs) -> anyhow::Result<()> {
    let t = a.target.target();
    if !a.stdin && !a.tty {
        let id = target::container_id(c, kube, &t).await?;
        return pods::exec(c, &id, a.cmd.clone(), a.timeout).await;
    }
    let r = target::container(c, kube, &t).await?;
    target::need_running(&r)?;
    let (term, warning) = Terminal::exec(a.stdin, a.tty, terminal::stdin_is_terminal());
    if let Some(w) = warning {
        eprintln!("{w}");
    }
    let url = c
        .runtime
        .exec(cri::ExecRequest {
            container_id: r.id.clone(),
            cmd: a.cmd.clone(),
            tty: term.remote,
            stdin: a.stdin,
            stdout: true,
            stderr: !term.remote,
        })
        .await
        .with_context(|| format!("exec in container {}", r.id))?
        .into_inner()
        .url;
    let (io, _) = command_io(a.stdin, term)?;
    let options = Options::spdy();
    let code = session(term, client::exec(&url, &options, io))
        .await?
        .with_context(|| format!("exec in container {}", r.id))?;
    pods::exit_result(code)
}

/// Runs `berth attach`.
pub async fn attach(c: &mut CriClient, kube: &Kube, a: &AttachArgs) -> anyhow::Result<()> {
    let r = target::container(c, kube, &a.target.target()).await?;
    target::need_running(&r)?;
    let container_tty = target::has_tty(&r);
    let (term, warning) =
        Terminal::attach(a.stdin, a.tty, container_tty, terminal::stdin_is_terminal());
    if let Some(w) = warning {
        eprintln!("{w}");
    }
    let url = c
        .runtime
        .attach(cri::AttachRequest {
            container_id: r.id.clone(),
            stdin: a.stdin,
            tty: term.remote,
            stdout: true,
            stderr: !term.remote,
        })
        .await
        .with_context(|| format!("attach to container {}", r.id))?
        .into_inner()
        .url;
    let (io, stdin_ended) = command_io(a.stdin, term)?;
    let detach = async {
        // Only a real end of input (not a reader dropped with the session).
        let ended = match stdin_ended {
            Some(ended) => ended.await.is_ok(),
            None => false,
        };
        if !ended {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(DETACH_GRACE).await;
    };
    let options = Options::spdy();
    let attached = client::attach(&url, &options, io);
    let ended = session(term, async {
        tokio::select! {
            r = attached => Some(r),
            () = detach => None,
        }
    })
    .await?;
    match ended {
        // Detached: the container carries on.
        None => Ok(()),
        Some(result) => {
            result.with_context(|| format!("attach to container {}", r.id))?;
            exit_of(c, &r.id).await
        }
    }
}

/// Once an attach has ended: the container's exit code as berth's, if it
/// has exited.
async fn exit_of(c: &mut CriClient, id: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + EXIT_WAIT;
    loop {
        let status = c
            .runtime
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .with_context(|| format!("status of container {id}"))?
            .into_inner()
            .status
            .unwrap_or_default();
        if status.state == cri::ContainerState::ContainerExited as i32 {
            return pods::exit_result(status.exit_code);
        }
        if tokio::time::Instant::now() > deadline {
            // The session ended on berthd's side; the container runs on.
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The local streams of a session, and (with `stdin`) a signal for the end
/// of berth's stdin.
fn command_io(
    stdin: bool,
    term: Terminal,
) -> anyhow::Result<(CommandIo, Option<oneshot::Receiver<()>>)> {
    let (input, ended) = if stdin {
        let (reader, ended) = StdinReader::start()?;
        (Some(Box::new(reader) as BoxRead), Some(ended))
    } else {
        (None, None)
    };
    let io = CommandIo {
        tty: term.remote,
        stdin: input,
        stdout: Some(Box::new(ThreadWriter::stdout()?)),
        stderr: match term.remote {
            true => None,
            false => Some(Box::new(ThreadWriter::stderr()?)),
        },
        resize: if term.resize {
            Some(terminal::sizes()?)
        } else {
            None
        },
    };
    Ok((io, ended))
}

/// Runs a session's future with the local terminal raw (if it is to be)
/// until it ends or a signal ends berth; the terminal is restored either
/// way before this returns.
async fn session<F: std::future::Future>(term: Terminal, f: F) -> anyhow::Result<F::Output> {
    let mut signals = Vec::new();
    for kind in [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
        SignalKind::quit(),
    ] {
        let s = signal(kind).context("install signal handlers")?;
        signals.push((kind, s));
    }
    let _raw = if term.raw {
        Some(RawMode::enter()?)
    } else {
        None
    };
    let signalled = futures_util::future::select_all(
        signals
            .iter_mut()
            .map(|(kind, s)| Box::pin(async move { s.recv().await.map(|_| *kind) })),
    );
    tokio::select! {
        out = f => Ok(out),
        (kind, _, _) = signalled => {
            let n = kind.map_or(libc::SIGTERM, |k| k.as_raw_value());
            Err(ExitStatus((128 + n) as u8).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_terminal_follows_kubectl() {
        assert_eq!(Terminal::exec(false, false, true), (Terminal::NONE, None));
        let (t, w) = Terminal::exec(true, true, true);
        assert!(t.remote && t.raw && t.resize && w.is_none());
        // -it with stdin from a pipe: a warning and no terminal.
        assert_eq!(
            Terminal::exec(true, true, false),
            (Terminal::NONE, Some(NOT_A_TERMINAL))
        );
        // -t alone: a remote terminal, the local one untouched.
        let (t, _) = Terminal::exec(false, true, true);
        assert!(t.remote && !t.raw);
    }

    #[test]
    fn attach_terminal_is_the_containers() {
        let (t, w) = Terminal::attach(true, TtyMode::Auto, true, true);
        assert!(t.remote && t.raw && w.is_none());
        let (t, w) = Terminal::attach(true, TtyMode::Auto, false, true);
        assert!(!t.remote && !t.raw && w.is_none());
        let (t, w) = Terminal::attach(true, TtyMode::Always, false, true);
        assert!(!t.raw && w.is_some_and(|w| w.contains("did not allocate")));
        let (t, w) = Terminal::attach(false, TtyMode::Always, true, true);
        assert!(t.remote && !t.raw && w.is_some());
        let (t, w) = Terminal::attach(true, TtyMode::Never, true, true);
        assert!(t.remote && !t.raw && w.is_none());
    }
}
