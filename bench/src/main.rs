//! `berth-bench`: side-by-side benchmarks of berth against its peers.
//! `berth-bench runtime` times berth-runtime, runc and crun on one busybox
//! bundle in one interleaved run; `berth-bench network` times pod network
//! setup and teardown of berth's built-in network against the standard CNI
//! plugins.

mod cases;
mod error;
mod interrupt;
mod net_cases;
mod net_report;
mod net_session;
mod node_netns;
mod pod_network;
mod report;
mod runtime;
mod session;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cases::Plan;
use crate::error::BenchError;
use crate::net_cases::NetPlan;
use crate::net_report::PathInfo;
use crate::net_session::NetSession;
use crate::report::RuntimeInfo;
use crate::session::Session;

#[derive(Parser)]
#[command(name = "berth-bench", about = "Benchmarks berth against its peers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Time run, create/start/delete, exec and batches of runs for
    /// berth-runtime, runc and crun, interleaved.
    Runtime(RuntimeArgs),
    /// Time pod network setup and teardown, one pod and bursts of pods, of
    /// the built-in network and of the CNI bridge/host-local/portmap
    /// plugins, interleaved, in a private node network namespace.
    Network(NetworkArgs),
}

#[derive(clap::Args)]
struct RuntimeArgs {
    /// Samples per single-container case.
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// Samples per batch case (default: samples, at most 5).
    #[arg(long)]
    batch_samples: Option<usize>,
    /// Containers per batch.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Workers of the parallel batch.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// berth-runtime binary (default: next to this binary, i.e.
    /// target/release/berth-runtime).
    #[arg(long)]
    berth: Option<PathBuf>,
    /// runc binary.
    #[arg(long, default_value = "runc")]
    runc: PathBuf,
    /// crun binary.
    #[arg(long, default_value = "crun")]
    crun: PathBuf,
}

#[derive(clap::Args)]
struct NetworkArgs {
    /// Samples per single-pod case.
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// Samples per burst case (default: samples, at most 5).
    #[arg(long)]
    burst_samples: Option<usize>,
    /// Pods set up (then torn down) at once in a burst.
    #[arg(long, default_value_t = 20)]
    concurrency: usize,
    /// Directory of the CNI plugin binaries.
    #[arg(long, default_value = "/usr/lib/cni")]
    cni_bin_dir: PathBuf,
}

/// berth-runtime next to the running binary (both live in target/release).
fn default_berth() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("berth-runtime")))
        .unwrap_or_else(|| PathBuf::from("target/release/berth-runtime"))
}

fn bench_runtimes(args: RuntimeArgs) -> Result<String, BenchError> {
    let plan = Plan {
        samples: args.samples.max(1),
        batch_samples: args.batch_samples.unwrap_or(args.samples.min(5)).max(1),
        batch: args.batch.max(1),
        workers: args.workers.max(1),
    };
    let berth = args.berth.unwrap_or_else(default_berth);
    let session = Session::new(vec![
        ("berth", berth),
        ("runc", args.runc),
        ("crun", args.crun),
    ])?;
    let rows = cases::run_all(&session, plan)?;
    let infos: Vec<RuntimeInfo> = session
        .runtimes
        .iter()
        .map(|runtime| RuntimeInfo {
            name: runtime.name(),
            binary: runtime.binary().display().to_string(),
            version: runtime.version(),
        })
        .collect();
    Ok(report::render(plan, &infos, &rows))
}

fn bench_network(args: NetworkArgs) -> Result<String, BenchError> {
    let plan = NetPlan {
        samples: args.samples.max(1),
        burst_samples: args.burst_samples.unwrap_or(args.samples.min(5)).max(1),
        concurrency: args.concurrency.max(1),
    };
    let mut session = NetSession::new(&args.cni_bin_dir)?;
    let rows = net_cases::run_all(&session, plan)?;
    let infos: Vec<PathInfo> = session
        .paths
        .iter()
        .map(|path| PathInfo {
            name: path.name(),
            description: path.description(),
        })
        .collect();
    let burst_total = &net_cases::burst_cases(plan.concurrency)[2];
    let judged = [net_cases::SINGLE_CASES[2], burst_total.as_str()];
    let report = net_report::render(plan, &infos, &rows, &judged);
    drop(infos);
    session.close()?;
    Ok(report)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Runtime(args) => interrupt::install().and_then(|_| bench_runtimes(args)),
        // The namespace first, while this is the only thread: the signal
        // handler's thread and every later one inherit it.
        Command::Network(args) => node_netns::enter()
            .and_then(|_| interrupt::install())
            .and_then(|_| bench_network(args)),
    };
    match result {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(BenchError::Interrupted) => ExitCode::from(130),
        Err(error) => {
            eprintln!("berth-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
