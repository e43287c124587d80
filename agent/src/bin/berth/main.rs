//! `berth`: the command line of a berth node. It talks to berthd over the
//! CRI socket (`--socket`, default `/run/berth/berth.sock`), like crictl,
//! reads the image store directly for `images import`, and runs manifest
//! pods through berthd's kubelet (its manifest directory and the status
//! files under `--state`, default `/run/berth`).
//!
//! One module per group: [`run`] (berth run), [`kpods`] (manifest pods:
//! pods, describe, stop, rm by name), [`kube`] (the kubelet's files),
//! [`images`] (images, pull, rmi, import), [`pods`] (CRI sandboxes and
//! containers: sandboxes, ps, inspect, stop, rm, exec by id), [`logs`],
//! [`stream`] (exec -i/-t and attach over berthd's streaming server, with
//! [`terminal`] for raw mode and resizes and [`stdio`] for berth's own
//! streams), [`port_forward`], [`target`] (which pod or container a name
//! means), [`table`] (column output).

mod images;
mod kpods;
mod kube;
mod logs;
mod pods;
mod port_forward;
mod run;
mod stdio;
mod stream;
mod table;
mod target;
mod terminal;

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
    /// berthd's runtime state directory (its kubelet's status files).
    #[arg(long, global = true, env = "BERTH_STATE", default_value = "/run/berth")]
    state: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// berthd's version and runtime conditions.
    Version,
    /// Run the pods of a manifest file (berthd keeps them running).
    Run(run::RunArgs),
    /// Manifest pods (NAME READY STATUS RESTARTS AGE IP); `--cri` for sandboxes.
    Pods(kpods::PodsArgs),
    /// A manifest pod's containers, probes, conditions and events.
    Describe {
        /// Pod name.
        pod: String,
        /// Namespace.
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// CRI pod sandboxes (every pod, with its id).
    Sandboxes(pods::PodsArgs),
    /// Containers.
    Ps(pods::PsArgs),
    /// A pod's or container's full status (JSON).
    Inspect {
        /// Pod or container id (a unique prefix is enough).
        id: String,
    },
    /// Stop a pod gracefully: a manifest pod by name (its manifest is kept
    /// as a hidden `.<file>.stopped`), else a sandbox by id.
    Stop {
        /// Pod name, or sandbox id.
        pod: String,
        /// Namespace (manifest pods).
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// Remove a pod: a manifest pod by name (stopped gracefully, manifest
    /// removed), else a sandbox by id.
    Rm {
        /// Pod name, or sandbox id.
        pod: String,
        /// Namespace (manifest pods).
        #[arg(short, long, default_value = "default")]
        namespace: String,
    },
    /// Run a command in a running container: `berth exec [-i] [-t] [-c C]
    /// POD -- CMD...`. Without -i/-t it prints the command's output when it
    /// ends; with them it streams (stdin, a terminal). Exits with the
    /// command's exit code.
    Exec(stream::ExecArgs),
    /// Attach to a running container's stdio: `berth attach [-i] [-t] [-c
    /// C] POD`. Ends when the container exits (with its exit code) or, with
    /// -i, when berth's stdin ends (the container keeps running).
    Attach(stream::AttachArgs),
    /// Forward local ports to a pod: `berth port-forward POD 8080:80 :443
    /// 53`. Ends at Ctrl-C.
    PortForward(port_forward::PortForwardArgs),
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
    let k = kube::Kube::new(&cli.state);
    match &cli.command {
        Command::Run(a) => return run::run(&k, a).await,
        Command::Pods(a) if !a.cri => return kpods::list(&k, a),
        Command::Describe { pod, namespace } => return kpods::describe(&k, namespace, pod),
        Command::Stop { pod, namespace } if kpods::stop(&k, namespace, pod).await? => return Ok(()),
        Command::Rm { pod, namespace } if kpods::rm(&k, namespace, pod).await? => return Ok(()),
        _ => {}
    }
    let mut c = client(&cli.socket).await?;
    match cli.command {
        Command::Version => pods::version(&mut c).await,
        Command::Run(_) | Command::Describe { .. } => Ok(()),
        Command::Pods(a) => {
            let a = pods::PodsArgs { label: a.label };
            pods::pods(&mut c, &a).await
        }
        Command::Sandboxes(a) => pods::pods(&mut c, &a).await,
        Command::Ps(a) => pods::ps(&mut c, &a).await,
        Command::Inspect { id } => pods::inspect(&mut c, &id).await,
        Command::Stop { pod, .. } => pods::stop(&mut c, &pod).await,
        Command::Rm { pod, .. } => pods::rm(&mut c, &pod).await,
        Command::Exec(a) => stream::exec(&mut c, &k, &a).await,
        Command::Attach(a) => stream::attach(&mut c, &k, &a).await,
        Command::PortForward(a) => port_forward::port_forward(&mut c, &k, &a).await,
        Command::Logs(a) => logs::logs(&mut c, &k, &a).await,
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
