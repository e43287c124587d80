//! Exec and attach from the client side: open the streams the local io
//! asks for (SPDY streams, or WebSocket channels), copy stdin and terminal
//! sizes out and stdout/stderr in until the server ends them, and read the
//! exit code from the status on the error stream. The copying is the same
//! for both transports; only [`open_spdy`] and [`open_websocket`] differ.
//!
//! The streams opened must match the CRI request the URL was made for
//! (stdin/stdout/stderr/tty), as with kubectl: a SPDY server waits for them.

use std::convert::Infallible;

use futures_util::future::{select, Either};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::connect::{self, Target};
use super::{BoxRead, BoxWrite, ClientError, CommandIo, Options, Transport};
use crate::streaming::protocol::{RemoteCommandVersion, SPDY_REMOTE_COMMAND};
use crate::streaming::protocol::{REMOTE_COMMAND_V4, REMOTE_COMMAND_V5};
use crate::streaming::spdy::stream_kind::STREAM_TYPE;
use crate::streaming::spdy::{self, Headers, Role, Session};
use crate::streaming::status::Status;
use crate::streaming::websocket::channel::{ERROR, RESIZE, STDERR, STDIN, STDOUT};
use crate::streaming::websocket::mux::Mux;
use crate::streaming::websocket::upgrade::{REMOTE_COMMAND, UNNAMED};
use crate::streaming::websocket::ChannelConn;

/// The text status of a non-zero exit before v4.
const EXIT_TEXT_PREFIX: &str = "command terminated with non-zero exit code: exit status ";

/// What keeps the connection and ends it afterwards.
enum Connection {
    Spdy(Session),
    WebSocket(Mux),
}

/// The remote ends of the streams.
struct Streams {
    version: RemoteCommandVersion,
    stdin: Option<BoxWrite>,
    stdout: Option<BoxRead>,
    stderr: Option<BoxRead>,
    resize: Option<BoxWrite>,
    error: BoxRead,
    connection: Connection,
}

/// Which streams the local io asks for.
#[derive(Debug, Clone, Copy)]
struct Want {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

pub(super) async fn run(url: &str, options: &Options, io: CommandIo) -> Result<i32, ClientError> {
    let target = connect::parse(url)?;
    let want = Want {
        stdin: io.stdin.is_some(),
        stdout: io.stdout.is_some(),
        stderr: io.stderr.is_some(),
        tty: io.tty,
    };
    let streams = match options.transport {
        Transport::Spdy => open_spdy(&target, options, want).await?,
        Transport::WebSocket => open_websocket(&target, options, want).await?,
    };
    copy(streams, io).await
}

async fn open_spdy(target: &Target, options: &Options, io: Want) -> Result<Streams, ClientError> {
    let protocols = if options.protocols.is_empty() {
        SPDY_REMOTE_COMMAND.iter().map(|p| p.to_string()).collect()
    } else {
        options.protocols.clone()
    };
    let (transport, chosen) = connect::spdy(target, &protocols).await?;
    let version = match chosen {
        None => RemoteCommandVersion::V1,
        Some(name) => {
            RemoteCommandVersion::from_name(&name).ok_or_else(|| ClientError::BadResponse {
                url: target.url.clone(),
                reason: format!("server chose unknown protocol {name:?}"),
            })?
        }
    };
    let (session, _incoming) = Session::new(transport, Role::Client, spdy::Config::default());
    let open = |kind: &'static str, fin: bool| {
        let session = session.clone();
        async move {
            session
                .open_stream(Headers::new().with(STREAM_TYPE, kind), fin)
                .await
                .map(spdy::Stream::split)
                .map_err(|source| ClientError::Stream {
                    what: kind.into(),
                    source,
                })
        }
    };
    // The order client-go uses; streams we never write are half-closed.
    let (error, _) = open("error", true).await?;
    let stdin = match io.stdin {
        true => Some(Box::new(open("stdin", false).await?.1) as BoxWrite),
        false => None,
    };
    let stdout = match io.stdout {
        true => Some(Box::new(open("stdout", true).await?.0) as BoxRead),
        false => None,
    };
    let stderr = match io.stderr && !io.tty {
        true => Some(Box::new(open("stderr", true).await?.0) as BoxRead),
        false => None,
    };
    let resize = if io.tty && version.has_resize() {
        Some(Box::new(open("resize", false).await?.1) as BoxWrite)
    } else {
        None
    };
    Ok(Streams {
        version,
        stdin,
        stdout,
        stderr,
        resize,
        error: Box::new(error),
        connection: Connection::Spdy(session),
    })
}

async fn open_websocket(
    target: &Target,
    options: &Options,
    io: Want,
) -> Result<Streams, ClientError> {
    let protocols = if options.protocols.is_empty() {
        vec![REMOTE_COMMAND_V5.to_owned(), REMOTE_COMMAND_V4.to_owned()]
    } else {
        options.protocols.clone()
    };
    let (ws, chosen) = connect::websocket(target, &protocols).await?;
    let protocol = match chosen {
        None => UNNAMED,
        Some(name) => *REMOTE_COMMAND
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ClientError::BadResponse {
                url: target.url.clone(),
                reason: format!("server chose unknown protocol {name:?}"),
            })?,
    };
    let conn = ChannelConn::from_stream(ws, protocol);
    let (mut mux, mut readers) = Mux::start(conn, &[STDOUT, STDERR, ERROR]);
    let stdin = io.stdin.then(|| Box::new(mux.output(STDIN)) as BoxWrite);
    let resize = io.tty.then(|| Box::new(mux.output(RESIZE)) as BoxWrite);
    let mut take = |ch: u8, wanted: bool| {
        readers
            .remove(&ch)
            .filter(|_| wanted)
            .map(|r| Box::new(r) as BoxRead)
    };
    let stdout = take(STDOUT, io.stdout);
    let stderr = take(STDERR, io.stderr);
    let error = take(ERROR, true).ok_or_else(|| ClientError::BadResponse {
        url: target.url.clone(),
        reason: "no error channel".into(),
    })?;
    Ok(Streams {
        version: protocol.remote_command_version(),
        stdin,
        stdout,
        stderr,
        resize,
        error,
        connection: Connection::WebSocket(mux),
    })
}

/// Copies `remote` into `local` (or discards it) until end-of-file.
async fn pipe(
    remote: Option<BoxRead>,
    local: Option<BoxWrite>,
    what: &'static str,
) -> Result<(), ClientError> {
    let Some(mut remote) = remote else {
        return Ok(());
    };
    let err = |source| ClientError::Io { what, source };
    match local {
        Some(mut local) => {
            tokio::io::copy(&mut remote, &mut local)
                .await
                .map_err(err)?;
            local.flush().await.map_err(err)?;
        }
        None => {
            tokio::io::copy(&mut remote, &mut tokio::io::sink())
                .await
                .map_err(err)?;
        }
    }
    Ok(())
}

async fn copy(streams: Streams, io: CommandIo) -> Result<i32, ClientError> {
    let Streams {
        version,
        stdin,
        stdout,
        stderr,
        resize,
        mut error,
        connection,
    } = streams;
    let CommandIo {
        stdin: local_in,
        stdout: local_out,
        stderr: local_err,
        resize: sizes,
        ..
    } = io;
    let inputs = async move {
        let stdin = async {
            if let (Some(mut local), Some(mut remote)) = (local_in, stdin) {
                let _ = tokio::io::copy(&mut local, &mut remote).await;
                let _ = remote.shutdown().await;
            }
        };
        let sizes = async {
            if let (Some(mut rx), Some(mut remote)) = (sizes, resize) {
                while let Some(size) = rx.recv().await {
                    let Ok(msg) = serde_json::to_vec(&size) else {
                        continue;
                    };
                    if remote.write_all(&msg).await.is_err() {
                        break;
                    }
                }
            }
        };
        tokio::join!(stdin, sizes);
        // The command ends when its outputs do, not its inputs.
        std::future::pending::<Infallible>().await
    };
    let outputs = async move {
        let status = async {
            let mut buf = Vec::new();
            error
                .read_to_end(&mut buf)
                .await
                .map(|_| buf)
                .map_err(|source| ClientError::Io {
                    what: "reading the error stream",
                    source,
                })
        };
        tokio::try_join!(
            pipe(stdout, local_out, "copying stdout"),
            pipe(stderr, local_err, "copying stderr"),
            status,
        )
    };
    let result = match select(Box::pin(outputs), Box::pin(inputs)).await {
        Either::Left((r, _)) => r,
        Either::Right((never, _)) => match never {},
    };
    match connection {
        Connection::Spdy(session) => session.close().await,
        Connection::WebSocket(mux) => drop(mux),
    }
    let (_, _, status) = result?;
    exit_code(version, &status)
}

/// The exit code in an error-stream message.
pub(super) fn exit_code(version: RemoteCommandVersion, msg: &[u8]) -> Result<i32, ClientError> {
    if version.json_status() {
        if msg.is_empty() {
            return Err(ClientError::BadStatus(
                "the connection ended without a status".into(),
            ));
        }
        let status: Status = serde_json::from_slice(msg).map_err(|e| {
            ClientError::BadStatus(format!("{e}: {}", String::from_utf8_lossy(msg)))
        })?;
        return status
            .exit_code()
            .ok_or_else(|| ClientError::Remote(status.message.clone()));
    }
    if msg.is_empty() {
        return Ok(0);
    }
    let text = String::from_utf8_lossy(msg);
    text.strip_prefix(EXIT_TEXT_PREFIX)
        .and_then(|code| code.trim().parse().ok())
        .ok_or_else(|| ClientError::Remote(text.into_owned()))
}
