//! `berthd`: the berth node agent. Serves CRI v1 (RuntimeService and
//! ImageService) on a unix socket (default `/run/berth/berth.sock`, mode
//! 0660); config from `--config FILE` (default `/etc/berth/config.toml`),
//! every key also a flag. It also keeps the pods of the manifest files in
//! `--pod-manifest-dir` running (static pods, through its own socket), and
//! serves exec/attach/port-forward streams on `[streaming]` (loopback).
//! SIGTERM/SIGINT stop serving; pods keep running.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use berth_agent::config::{Config, ConfigFlags};
use berth_agent::daemon::runtime_service::RuntimeServiceImpl;
use berth_agent::daemon::streaming::DaemonBackend;
use berth_agent::daemon::Daemon;
use berth_agent::image_service::ImageServiceImpl;
use berth_agent::streaming::server::StreamingServer;
use berth_proto::v1::{
    image_service_server::ImageServiceServer, runtime_service_server::RuntimeServiceServer,
};
use clap::Parser;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

#[derive(Parser)]
#[command(
    name = "berthd",
    version,
    about = "berth node agent: CRI v1 server and container runtime"
)]
struct Cli {
    #[command(flatten)]
    flags: ConfigFlags,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match Config::load(&cli.flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berthd: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berthd: start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berthd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Binds the socket, refusing to steal it from a live berthd.
async fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            bail!("{}: another berthd is listening there", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("remove stale {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(listener)
}

/// How long in-flight calls may run on after SIGTERM.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(3);

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("signal received: stopping (pods keep running)");
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let listen = cfg.listen.clone();
    let daemon = Daemon::open(cfg).await.context("start")?;
    let streaming_addr = SocketAddr::new(daemon.cfg.streaming.address, daemon.cfg.streaming.port);
    let streaming = Arc::new(
        StreamingServer::bind(streaming_addr, Arc::new(DaemonBackend::new(daemon.clone())))
            .await
            .context("start the streaming server")?,
    );
    tracing::info!(url = %streaming.base_url(), "serving exec, attach and port-forward");
    let listener = bind(&listen).await?;
    tracing::info!(socket = %listen.display(), "serving CRI v1");
    // Static pods: the kubelet half talks to this same socket.
    let kubelet = berth_agent::kubelet::start(&daemon.cfg).context("start the kubelet")?;
    let images = ImageServiceImpl::new(daemon.images.clone(), Some(daemon.container_dir("")));
    // After the signal, calls in flight get DRAIN to finish; event streams
    // (GetContainerEvents) never do, so they are cut then.
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .add_service(RuntimeServiceServer::new(RuntimeServiceImpl::new(
            daemon.clone(),
            streaming.clone(),
        )))
        .add_service(ImageServiceServer::new(images))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
            shutdown_signal().await;
            let _ = stopping.send(());
        });
    let result = tokio::select! {
        r = server => r,
        () = async {
            if stopped.await.is_ok() {
                tokio::time::sleep(DRAIN).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::info!("calls still open after {DRAIN:?} (event streams): closing them");
            Ok(())
        }
    };
    kubelet.abort();
    // Open exec/attach sessions end with berthd (their processes live on in
    // the pods, as after a kill -9).
    if let Ok(streaming) = Arc::try_unwrap(streaming) {
        streaming.shutdown().await;
    }
    let _ = std::fs::remove_file(&listen);
    result.context("serve")
}
