//! `berth-bench`: side-by-side benchmarks of berth against its peers.
//! `berth-bench runtime` times berth-runtime, runc and crun on one busybox
//! bundle in one interleaved run; `berth-bench network` times pod network
//! setup and teardown of berth's built-in network against the standard CNI
//! plugins; `berth-bench pull` times pulling and unpacking a ~100 MB image
//! from a local registry with berth's image store and with containerd;
//! `berth-bench cri` times pod start and stop over the CRI and measures the
//! memory of berthd and containerd with their per-pod helpers.

mod berthd;
mod cases;
mod containerd;
mod cri_cases;
mod cri_client;
mod cri_pod;
mod cri_report;
mod cri_session;
mod error;
mod interrupt;
mod net_cases;
mod net_report;
mod net_session;
mod node_netns;
mod pair_report;
mod pod_network;
mod procs;
mod pull_cases;
mod pull_report;
mod pull_session;
mod report;
mod runtime;
mod session;
mod stats;
mod sweep;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use berth_fixtures::BulkImage;

use crate::cases::Plan;
use crate::containerd::Containerd;
use crate::cri_report::SubjectInfo;
use crate::cri_session::{CriPrograms, CriSession};
use crate::error::BenchError;
use crate::net_cases::NetPlan;
use crate::net_report::PathInfo;
use crate::net_session::NetSession;
use crate::pull_report::PeerInfo;
use crate::pull_session::{PullPrograms, PullSession};
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
    /// Time pulling and unpacking a multi-layer image of about 100 MB from a
    /// local registry, berth's image store against containerd's `ctr`,
    /// interleaved.
    Pull(PullArgs),
    /// Time pod start (RunPodSandbox, CreateContainer, StartContainer) and
    /// stop + remove over the CRI, and measure the daemons' memory with
    /// their per-pod helpers, for berthd and containerd side by side (or
    /// for the given endpoints), in a private node network namespace.
    Cri(CriArgs),
}

#[derive(clap::Args)]
struct CriArgs {
    /// Pods per subject.
    #[arg(long, default_value_t = 50)]
    pods: usize,
    /// Measure this CRI endpoint (`unix:///path`) instead of starting
    /// berthd and containerd; repeatable. Memory is not measured then.
    #[arg(long)]
    endpoint: Vec<String>,
    /// The berthd binary (default: next to this binary, i.e.
    /// target/release/berthd).
    #[arg(long)]
    berthd: Option<PathBuf>,
    /// Keep berthd's log here, at debug level (its step timings), instead
    /// of a warn-level log in the run's temporary directory.
    #[arg(long)]
    berthd_log: Option<PathBuf>,
    /// The containerd binary.
    #[arg(long, default_value = "containerd")]
    containerd: PathBuf,
    /// The ctr binary.
    #[arg(long, default_value = "ctr")]
    ctr: PathBuf,
    /// Directory of the CNI plugin binaries (containerd's pods).
    #[arg(long, default_value = "/usr/lib/cni")]
    cni_bin_dir: PathBuf,
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

#[derive(clap::Args)]
struct PullArgs {
    /// Samples per subject.
    #[arg(long, default_value_t = 10)]
    samples: usize,
    /// Layers of random files on top of the busybox layer.
    #[arg(long, default_value_t = 6)]
    layers: usize,
    /// Files per layer.
    #[arg(long, default_value_t = 16)]
    files_per_layer: usize,
    /// MiB of file data over all layers (before compression).
    #[arg(long, default_value_t = 100)]
    size_mib: usize,
    /// The registry binary.
    #[arg(long, default_value = berth_fixtures::registry::DEFAULT_REGISTRY_BINARY)]
    registry: PathBuf,
    /// The containerd binary.
    #[arg(long, default_value = "containerd")]
    containerd: PathBuf,
    /// The ctr binary.
    #[arg(long, default_value = "ctr")]
    ctr: PathBuf,
}

/// `name` next to the running binary (they all live in target/release).
fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .unwrap_or_else(|| PathBuf::from("target/release").join(name))
}

/// berth-runtime next to the running binary.
fn default_berth() -> PathBuf {
    sibling("berth-runtime")
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

fn bench_pull(args: PullArgs) -> Result<String, BenchError> {
    let shape = BulkImage {
        layers: args.layers.max(1),
        files_per_layer: args.files_per_layer.max(1),
        total_bytes: args.size_mib.max(1) << 20,
        ..BulkImage::default()
    };
    let programs = PullPrograms {
        registry: &args.registry,
        containerd: &args.containerd,
        ctr: &args.ctr,
    };
    let samples = args.samples.max(1);
    let session = PullSession::new(shape, &programs)?;
    let rows = pull_cases::run_all(&session, samples)?;
    let peer = PeerInfo {
        name: containerd::NAME,
        binary: args.containerd.display().to_string(),
        version: Containerd::version(&args.containerd),
    };
    Ok(pull_report::render(samples, &session.image, &peer, &rows))
}

fn bench_cri(args: CriArgs) -> Result<String, BenchError> {
    let berthd = args.berthd.unwrap_or_else(|| sibling("berthd"));
    let programs = CriPrograms {
        endpoints: &args.endpoint,
        berthd: &berthd,
        berthd_log: args.berthd_log.as_deref(),
        containerd: &args.containerd,
        ctr: &args.ctr,
        cni_bin_dir: &args.cni_bin_dir,
    };
    let pods = args.pods.max(1);
    let mut session = CriSession::new(&programs)?;
    let results = cri_cases::run_all(&session, pods)?;
    let infos: Vec<SubjectInfo> = session
        .subjects
        .iter()
        .map(|subject| SubjectInfo {
            name: &subject.name,
            endpoint: &subject.endpoint,
            version: subject.version.as_deref(),
        })
        .collect();
    let report = cri_report::render(pods, &infos, &results);
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
        Command::Pull(args) => interrupt::install().and_then(|_| bench_pull(args)),
        // Bridges, veths and rule tables of both daemons' pods stay in the
        // bench's own node namespace, as in the network bench.
        Command::Cri(args) => node_netns::enter()
            .and_then(|_| interrupt::install())
            .and_then(|_| bench_cri(args)),
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
