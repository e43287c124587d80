//! `berth port-forward POD [LOCAL:]REMOTE...`, as kubectl's: a listener per
//! mapping and local address, one PortForward URL and a single SPDY upgrade
//! on it ([`PortForwardSession`]), and per accepted connection one
//! forwarded connection, copied both ways. A connection's failure (nothing
//! listens in the pod) is printed and ends only that connection; the end of
//! the session ends berth with an error; SIGINT/SIGTERM end it cleanly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use berth_agent::cri_client::CriClient;
use berth_agent::streaming::client::{ClientError, Options, PortForwardSession};
use berth_proto::v1 as cri;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::kube::Kube;
use crate::target;

/// How long a connection the pod ended waits for the error stream to say
/// whether that was a failure.
const ERROR_WAIT: Duration = Duration::from_secs(5);
/// How long the session's close (GOAWAY, flush) may take at the end.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

#[derive(clap::Args)]
pub struct PortForwardArgs {
    /// Pod name (a manifest pod) or pod sandbox id.
    pod: String,
    /// `LOCAL:REMOTE`, `:REMOTE` (a free local port) or `PORT` (the same
    /// port on both sides).
    #[arg(required = true, value_parser = parse_mapping, value_name = "[LOCAL:]REMOTE")]
    ports: Vec<Mapping>,
    /// Local addresses to listen on (comma-separated IP addresses, or
    /// `localhost` for 127.0.0.1 and ::1).
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    address: Vec<String>,
    /// The manifest pod's namespace.
    #[arg(short, long, default_value = "default")]
    namespace: String,
}

/// A local port (0: any free one) and the pod's port it forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    local: u16,
    remote: u16,
}

/// `what` is "local ", "remote " or "".
fn parse_port(s: &str, what: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .map_err(|e| format!("{what}port {s:?}: {e}"))
}

fn parse_mapping(s: &str) -> Result<Mapping, String> {
    let (local, remote) = match s.split_once(':') {
        Some(("", remote)) => (0, parse_port(remote, "remote ")?),
        Some((local, remote)) => (parse_port(local, "local ")?, parse_port(remote, "remote ")?),
        None => {
            let p = parse_port(s, "")?;
            (p, p)
        }
    };
    if remote == 0 {
        return Err(format!("{s:?}: the remote port must be 1-65535"));
    }
    Ok(Mapping { local, remote })
}

/// An address to listen on; `optional` ones (localhost's ::1) are skipped
/// when they cannot be bound.
struct ListenAddr {
    ip: IpAddr,
    optional: bool,
}

fn listen_addrs(names: &[String]) -> anyhow::Result<Vec<ListenAddr>> {
    let mut out = Vec::new();
    for name in names {
        if name == "localhost" {
            out.push(ListenAddr {
                ip: Ipv4Addr::LOCALHOST.into(),
                optional: false,
            });
            out.push(ListenAddr {
                ip: Ipv6Addr::LOCALHOST.into(),
                optional: true,
            });
            continue;
        }
        let ip = name
            .parse()
            .with_context(|| format!("--address {name:?}: not an IP address or localhost"))?;
        out.push(ListenAddr {
            ip,
            optional: false,
        });
    }
    if out.is_empty() {
        bail!("--address: no address to listen on");
    }
    Ok(out)
}

/// A bound listener and where its connections go.
struct Forward {
    listener: TcpListener,
    local: SocketAddr,
    remote: u16,
}

/// Binds every mapping on every address; `:REMOTE` takes one free port for
/// all addresses.
async fn bind(mappings: &[Mapping], addrs: &[ListenAddr]) -> anyhow::Result<Vec<Forward>> {
    let mut out = Vec::new();
    for m in mappings {
        let mut port = m.local;
        for a in addrs {
            let want = SocketAddr::new(a.ip, port);
            let listener = match TcpListener::bind(want).await {
                Ok(l) => l,
                Err(_) if a.optional => continue,
                Err(e) => return Err(e).with_context(|| format!("listen on {want}")),
            };
            let local = listener.local_addr().context("listener address")?;
            port = local.port();
            out.push(Forward {
                listener,
                local,
                remote: m.remote,
            });
        }
    }
    Ok(out)
}

/// Runs `berth port-forward` until a signal or the session's end.
pub async fn port_forward(
    c: &mut CriClient,
    kube: &Kube,
    a: &PortForwardArgs,
) -> anyhow::Result<()> {
    let pod = target::sandbox(c, kube, &a.namespace, &a.pod).await?;
    let forwards = bind(&a.ports, &listen_addrs(&a.address)?).await?;
    let mut ports: Vec<i32> = a.ports.iter().map(|m| i32::from(m.remote)).collect();
    ports.sort_unstable();
    ports.dedup();
    let url = c
        .runtime
        .port_forward(cri::PortForwardRequest {
            pod_sandbox_id: pod.clone(),
            port: ports,
        })
        .await
        .with_context(|| format!("port-forward to pod sandbox {pod}"))?
        .into_inner()
        .url;
    let session = PortForwardSession::connect(&url, &Options::spdy())
        .await
        .with_context(|| format!("port-forward to pod sandbox {pod}"))?;
    let session = Arc::new(session);
    let mut term = signal(SignalKind::terminate()).context("install signal handlers")?;
    let mut int = signal(SignalKind::interrupt()).context("install signal handlers")?;

    let (lost_tx, mut lost) = mpsc::channel::<ClientError>(1);
    let mut tasks = JoinSet::new();
    for f in forwards {
        println!("Forwarding from {} -> {}", f.local, f.remote);
        tasks.spawn(accept(f, Arc::clone(&session), lost_tx.clone()));
    }
    drop(lost_tx);
    let result = tokio::select! {
        _ = int.recv() => Ok(()),
        _ = term.recv() => Ok(()),
        Some(e) = lost.recv() => Err(anyhow::Error::new(e)
            .context(format!("lost the port-forward connection to pod sandbox {pod}"))),
    };
    tasks.shutdown().await;
    if let Ok(session) = Arc::try_unwrap(session) {
        let _ = tokio::time::timeout(CLOSE_WAIT, session.close()).await;
    }
    result
}

/// Accepts connections on `f` and forwards each on its own task.
async fn accept(f: Forward, session: Arc<PortForwardSession>, lost: mpsc::Sender<ClientError>) {
    let mut conns = JoinSet::new();
    loop {
        let local = match f.listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("berth: accept on {}: {e}", f.local);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        println!("Handling connection for {}", f.local.port());
        let (session, lost) = (Arc::clone(&session), lost.clone());
        let (local_port, remote) = (f.local.port(), f.remote);
        conns.spawn(async move {
            if let Err(e) = forward(&session, local, local_port, remote).await {
                let _ = lost.send(e).await;
            }
        });
        // Reap the finished ones as we go.
        while conns.try_join_next().is_some() {}
    }
}

/// Forwards one local connection; an error only when the session is gone.
async fn forward(
    session: &PortForwardSession,
    mut local: TcpStream,
    local_port: u16,
    remote: u16,
) -> Result<(), ClientError> {
    let conn = session.open(remote).await?;
    let (mut from_pod, mut to_pod): (ReadHalf<_>, WriteHalf<_>) = tokio::io::split(conn);
    let (mut from_local, mut to_local) = local.split();
    // The pod's end-of-file ends the connection (as on berthd's side); the
    // local end-of-file only half-closes it.
    let down = async {
        let r = tokio::io::copy(&mut from_pod, &mut to_local).await;
        let _ = to_local.shutdown().await;
        r
    };
    let up = async {
        tokio::io::copy(&mut from_local, &mut to_pod).await?;
        to_pod.shutdown().await?;
        std::future::pending::<std::io::Result<u64>>().await
    };
    let ended = tokio::select! {
        r = down => r,
        r = up => r,
    };
    if ended.is_ok() {
        let mut conn = from_pod.unsplit(to_pod);
        if let Ok(Some(msg)) = tokio::time::timeout(ERROR_WAIT, conn.remote_error()).await {
            eprintln!("berth: an error occurred forwarding {local_port} -> {remote}: {msg}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_parse_as_kubectl_writes_them() {
        let m = |local, remote| Mapping { local, remote };
        assert_eq!(parse_mapping("8080:80"), Ok(m(8080, 80)));
        assert_eq!(parse_mapping(":80"), Ok(m(0, 80)));
        assert_eq!(parse_mapping("0:80"), Ok(m(0, 80)));
        assert_eq!(parse_mapping("80"), Ok(m(80, 80)));
        assert!(parse_mapping("80:0").is_err());
        assert!(parse_mapping("0").is_err());
        assert!(parse_mapping("x:80")
            .unwrap_err()
            .contains("local port \"x\""));
        assert!(parse_mapping("8080:70000").unwrap_err().contains("remote"));
        assert!(parse_mapping("").is_err());
    }

    #[test]
    fn addresses() {
        let a = listen_addrs(&["localhost".into()]).unwrap();
        assert_eq!(a.len(), 2);
        assert!(!a[0].optional && a[1].optional);
        assert!(listen_addrs(&["0.0.0.0".into(), "::".into()]).is_ok());
        assert!(listen_addrs(&["example.com".into()]).is_err());
    }
}
