//! `berth`: the command line of a berth node. It talks to berthd over the
//! CRI socket (`--socket`, default `/run/berth/berth.sock`), like crictl,
//! and reads the image store directly for `images import`.
//!
//! One module per group: [`images`] (images, pull, rmi, import),
//! [`pods`] (pods, ps, inspect, stop, rm, exec), [`logs`],
//! [`table`] (column output).

mod images;
mod logs;
mod pods;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use berth_agent::cri_client::{self, CriClient};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "Run and inspect pods on a berth node"
)]
struct Cli {
    /// berthd's CRI socket.
    #[arg(
        long,
        global = true,
        env = "BERTH_SOCKET",
        default_value = "/run/berth/berth.sock"
    )]
    socket: PathBuf,
    /// berthd's root directory (for `images import`).
    #[arg(
        long,
        global = true,
        env = "BERTH_ROOT",
        default_value = "/var/lib/berth"
    )]
    root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// berthd's version and runtime conditions.
    Version,
    /// Pod sandboxes.
    Pods(pods::PodsArgs),
    /// Containers.
    Ps(pods::PsArgs),
    /// A pod's or container's full status (JSON).
    Inspect {
        /// Pod or container id (a unique prefix is enough).
        id: String,
    },
    /// Stop a pod (its containers and network).
    Stop {
        /// Pod id.
        pod: String,
    },
    /// Remove a pod (stopping it first).
    Rm {
        /// Pod id.
        pod: String,
    },
    /// Run a command in a running container and print its output.
    Exec {
        /// Container id.
        container: String,
        /// Seconds before it is killed (0: no limit).
        #[arg(long, default_value_t = 0)]
        timeout: i64,
        /// The command.
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// A container's log.
    Logs(logs::LogsArgs),
    /// Images: list them, or `images import FILE`.
    Images(images::ImagesArgs),
    /// Pull an image from a registry.
    Pull {
        /// Image reference.
        image: String,
    },
    /// Remove an image.
    Rmi {
        /// Image reference or id.
        image: String,
    },
}

async fn client(socket: &std::path::Path) -> anyhow::Result<CriClient> {
    cri_client::connect(socket).await.with_context(|| {
        format!(
            "connect to berthd at {} (is berthd running?)",
            socket.display()
        )
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Images(a) = &cli.command {
        if let Some(images::ImagesCommand::Import { file }) = &a.command {
            return images::import(&cli.root, file);
        }
    }
    let mut c = client(&cli.socket).await?;
    match cli.command {
        Command::Version => pods::version(&mut c).await,
        Command::Pods(a) => pods::pods(&mut c, &a).await,
        Command::Ps(a) => pods::ps(&mut c, &a).await,
        Command::Inspect { id } => pods::inspect(&mut c, &id).await,
        Command::Stop { pod } => pods::stop(&mut c, &pod).await,
        Command::Rm { pod } => pods::rm(&mut c, &pod).await,
        Command::Exec {
            container,
            timeout,
            cmd,
        } => pods::exec(&mut c, &container, cmd, timeout).await,
        Command::Logs(a) => logs::logs(&mut c, &a).await,
        Command::Images(_) => images::list(&mut c).await,
        Command::Pull { image } => images::pull(&mut c, &image).await,
        Command::Rmi { image } => images::rmi(&mut c, &image).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(code) = e.downcast_ref::<pods::ExitStatus>() {
                return ExitCode::from(code.0);
            }
            eprintln!("berth: {e:#}");
            ExitCode::FAILURE
        }
    }
}
