//! The network benchmark's cases: one pod's setup and teardown, and a burst
//! of pods set up at once then torn down at once, each path sampled in turn
//! (see `cases::interleaved`). Pod namespaces are created and removed
//! outside the timed part: both paths get the same kind of namespace.

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_cni::PodNetworkRequest;
use tokio::runtime::Runtime;

use crate::cases::{availability, interleaved, progress, CaseResult};
use crate::error::BenchError;
use crate::interrupt;
use crate::net_session::NetSession;
use crate::pod_network::PodNetwork;

/// How many samples and how big the bursts are.
#[derive(Debug, Clone, Copy)]
pub struct NetPlan {
    /// Samples of the single-pod cases.
    pub samples: usize,
    /// Samples of the burst cases.
    pub burst_samples: usize,
    /// Pods per burst.
    pub concurrency: usize,
}

/// The single-pod rows.
pub const SINGLE_CASES: [&str; 3] = ["setup", "teardown", "setup + teardown"];

/// The burst rows for bursts of `concurrency` pods.
pub fn burst_cases(concurrency: usize) -> [String; 3] {
    [
        format!("{concurrency} pods, concurrent setup"),
        format!("{concurrency} pods, concurrent teardown"),
        format!("{concurrency} pods, setup + teardown"),
    ]
}

/// Runs every case and returns the report's rows.
pub fn run_all(session: &NetSession, plan: NetPlan) -> Result<Vec<CaseResult>, BenchError> {
    let runtime = &session.runtime;
    let available = availability(&session.paths, |path| probe(runtime, path))?;
    let mut rows = Vec::new();

    progress("pod setup / teardown");
    rows.extend(interleaved(
        &session.paths,
        &available,
        &SINGLE_CASES,
        plan.samples,
        |_, path| cycle(runtime, path),
    )?);

    let names = burst_cases(plan.concurrency);
    progress(&names[2]);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    rows.extend(interleaved(
        &session.paths,
        &available,
        &names,
        plan.burst_samples,
        |_, path| burst(runtime, path, plan.concurrency),
    )?);
    Ok(rows)
}

/// One untimed pod cycle per path (also a warm-up: the CNI bridge and the
/// plugins' chains appear on first use) that checks the hostPort shows up
/// in the node's ruleset after setup and is gone after teardown.
fn probe(runtime: &Runtime, path: &Arc<PodNetwork>) -> Result<(), BenchError> {
    let pod = path.new_pod()?;
    let checked = runtime.block_on(async {
        path.setup(&pod).await?;
        let mapped = path.host_port_in_ruleset(&pod)?;
        path.teardown(&pod.id).await?;
        let unmapped = !path.host_port_in_ruleset(&pod)?;
        match (mapped, unmapped) {
            (true, true) => Ok(()),
            (false, _) => Err(misbehaved(path, "setup left no hostPort rule")),
            (true, false) => Err(misbehaved(path, "teardown left the hostPort rule")),
        }
    });
    let discarded = runtime.block_on(path.discard(&pod.id));
    checked.and(discarded)
}

fn misbehaved(path: &PodNetwork, what: &str) -> BenchError {
    BenchError::Misbehaved {
        runtime: path.name(),
        what: what.to_string(),
    }
}

/// `setup`, `teardown` and their sum for one pod.
fn cycle(runtime: &Runtime, path: &Arc<PodNetwork>) -> Result<Vec<Duration>, BenchError> {
    let pod = path.new_pod()?;
    let timed = runtime.block_on(async {
        let setup = path.setup(&pod).await?;
        let teardown = path.teardown(&pod.id).await?;
        Ok(vec![setup, teardown, setup + teardown])
    });
    let discarded = runtime.block_on(path.discard(&pod.id));
    timed.and_then(|durations| discarded.map(|()| durations))
}

/// The total wall time of `count` pods set up by one task each, all at
/// once, then of their teardowns, all at once, and the sum.
fn burst(
    runtime: &Runtime,
    path: &Arc<PodNetwork>,
    count: usize,
) -> Result<Vec<Duration>, BenchError> {
    let mut pods = Vec::with_capacity(count);
    let created = (0..count).try_for_each(|_| {
        interrupt::check()?;
        pods.push(Arc::new(path.new_pod()?));
        Ok(())
    });
    let timed = created.and_then(|()| {
        runtime.block_on(async {
            let setup = all_at_once(path, &pods, "setup", |path, pod| async move {
                path.setup(&pod).await.map(|_| ())
            })
            .await?;
            let teardown = all_at_once(path, &pods, "teardown", |path, pod| async move {
                path.teardown(&pod.id).await.map(|_| ())
            })
            .await?;
            Ok(vec![setup, teardown, setup + teardown])
        })
    });
    let mut discarded = Ok(());
    for pod in &pods {
        if let Err(error) = runtime.block_on(path.discard(&pod.id)) {
            discarded = discarded.and(Err(error));
        }
    }
    timed.and_then(|durations| discarded.map(|()| durations))
}

/// Spawns `work(path, pod)` for every pod at once and waits for all of
/// them; returns the wall time, or the first failure once all are done.
async fn all_at_once<W, F>(
    path: &Arc<PodNetwork>,
    pods: &[Arc<PodNetworkRequest>],
    op: &'static str,
    work: W,
) -> Result<Duration, BenchError>
where
    W: Fn(Arc<PodNetwork>, Arc<PodNetworkRequest>) -> F,
    F: std::future::Future<Output = Result<(), BenchError>> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = pods
        .iter()
        .map(|pod| tokio::spawn(work(Arc::clone(path), Arc::clone(pod))))
        .collect();
    let mut first_error = None;
    for (task, pod) in tasks.into_iter().zip(pods) {
        let outcome = task.await.unwrap_or_else(|join| {
            Err(BenchError::Task {
                path: path.name(),
                op,
                pod: pod.id.clone(),
                reason: join.to_string(),
            })
        });
        if let Err(error) = outcome {
            first_error.get_or_insert(error);
        }
    }
    let elapsed = started.elapsed();
    first_error.map_or(Ok(elapsed), Err)
}
