//! The runtime benchmark's cases, and the interleaved sampling every bench
//! uses: in every sample each subject (runtime, network path) runs the case
//! once, in an order rotated per sample, so that noise on the shared machine
//! falls on all subjects alike.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::BenchError;
use crate::interrupt;
use crate::runtime::Runtime;
use crate::session::{Session, PROBE_MARKER};
use crate::stats::Summary;

/// How many samples and how big the batches are.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Samples of the single-container cases.
    pub samples: usize,
    /// Samples of the batch cases.
    pub batch_samples: usize,
    /// Containers per batch.
    pub batch: usize,
    /// Workers of the parallel batch.
    pub workers: usize,
}

/// One runtime's result for one case.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Measured(Summary),
    /// The runtime could not do the case here, and why.
    Unavailable(String),
}

/// One row of the report: a case and each runtime's outcome, in runtime order.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub outcomes: Vec<Outcome>,
}

/// Per subject (runtime, network path): `None` if usable, else why not.
pub type Availability = Vec<Option<String>>;

/// Runs every case and returns the report's rows.
pub fn run_all(session: &Session, plan: Plan) -> Result<Vec<CaseResult>, BenchError> {
    let available = probe(session)?;
    let mut rows = Vec::new();

    progress("run /bin/true");
    rows.extend(interleaved(
        &session.runtimes,
        &available,
        &["run /bin/true"],
        plan.samples,
        |_, runtime| Ok(vec![run_true(session, runtime)?]),
    )?);

    progress("create / start / delete");
    rows.extend(interleaved(
        &session.runtimes,
        &available,
        &["create", "start", "delete"],
        plan.samples,
        |_, runtime| lifecycle(session, runtime),
    )?);

    progress("exec /bin/true");
    rows.extend(exec_case(session, &available, plan.samples)?);

    let sequential = format!("{} x run, sequential", plan.batch);
    progress(&sequential);
    rows.extend(interleaved(
        &session.runtimes,
        &available,
        &[&sequential],
        plan.batch_samples,
        |_, runtime| Ok(vec![batch(session, runtime, plan.batch, 1)?]),
    )?);

    let parallel = format!("{} x run, {} workers", plan.batch, plan.workers);
    progress(&parallel);
    rows.extend(interleaved(
        &session.runtimes,
        &available,
        &[&parallel],
        plan.batch_samples,
        |_, runtime| Ok(vec![batch(session, runtime, plan.batch, plan.workers)?]),
    )?);
    Ok(rows)
}

pub fn progress(case: &str) {
    eprintln!("berth-bench: measuring {case}");
}

/// Runs a container that prints [`PROBE_MARKER`] once per runtime (also a
/// warm-up); a runtime that fails, or exits 0 without running it, is
/// unavailable for every case.
fn probe(session: &Session) -> Result<Availability, BenchError> {
    availability(&session.runtimes, |runtime| probe_one(session, runtime))
}

/// Runs `probe` once per subject: a subject whose probe fails is
/// unavailable for every case, with the failure's reason.
pub fn availability<T>(
    subjects: &[T],
    probe: impl Fn(&T) -> Result<(), BenchError>,
) -> Result<Availability, BenchError> {
    subjects
        .iter()
        .map(|subject| match probe(subject) {
            Ok(()) => Ok(None),
            Err(BenchError::Interrupted) => Err(BenchError::Interrupted),
            Err(error) => Ok(Some(error.reason())),
        })
        .collect()
}

/// Samples `measure(index, subject)` (which yields one duration per name in
/// `names`) for every available subject (runtime, network path),
/// interleaved. A subject whose measurement fails is shown as unavailable
/// for these cases, with the failure's reason.
pub fn interleaved<T>(
    subjects: &[T],
    available: &Availability,
    names: &[&str],
    samples: usize,
    measure: impl Fn(usize, &T) -> Result<Vec<Duration>, BenchError>,
) -> Result<Vec<CaseResult>, BenchError> {
    let mut failures = available.clone();
    let mut series = vec![vec![Vec::new(); names.len()]; subjects.len()];
    for sample in 0..samples {
        for offset in 0..subjects.len() {
            let index = (sample + offset) % subjects.len();
            if failures[index].is_some() {
                continue;
            }
            interrupt::check()?;
            match measure(index, &subjects[index]) {
                Ok(durations) => {
                    for (case, duration) in durations.into_iter().enumerate() {
                        series[index][case].push(duration);
                    }
                }
                Err(BenchError::Interrupted) => return Err(BenchError::Interrupted),
                Err(error) => failures[index] = Some(error.reason()),
            }
        }
    }
    Ok(names
        .iter()
        .enumerate()
        .map(|(case, name)| CaseResult {
            name: name.to_string(),
            outcomes: (0..subjects.len())
                .map(|index| outcome(&failures[index], &series[index][case]))
                .collect(),
        })
        .collect())
}

fn outcome(failure: &Option<String>, samples: &[Duration]) -> Outcome {
    match (failure, Summary::of(samples)) {
        (Some(reason), _) => Outcome::Unavailable(reason.clone()),
        (None, Some(summary)) => Outcome::Measured(summary),
        (None, None) => Outcome::Unavailable("no samples".to_string()),
    }
}

fn probe_one(session: &Session, runtime: &Runtime) -> Result<(), BenchError> {
    let id = runtime.new_id("probe");
    let printed = runtime.run_printing(session.echo_bundle(), &id);
    runtime.force_delete(&id);
    expect_marker(runtime, "run", &printed?)
}

/// Fails unless `printed` is the probe marker.
fn expect_marker(runtime: &Runtime, verb: &str, printed: &str) -> Result<(), BenchError> {
    if printed.trim() == PROBE_MARKER {
        Ok(())
    } else {
        let what = if printed.trim().is_empty() {
            format!("{verb} exited 0 but ran nothing")
        } else {
            format!("{verb} printed {printed:?}, not the probe marker")
        };
        Err(BenchError::Misbehaved {
            runtime: runtime.name(),
            what,
        })
    }
}

/// The wall time of `run` of `/bin/true`; the container is deleted afterwards,
/// untimed, in case the runtime keeps it.
fn run_true(session: &Session, runtime: &Runtime) -> Result<Duration, BenchError> {
    let id = runtime.new_id("run");
    let elapsed = runtime.run(session.true_bundle(), &id);
    runtime.force_delete(&id);
    elapsed
}

/// The wall times of `create`, `start` and `delete` of one `/bin/true`
/// container (waiting, untimed, for it to stop before deleting).
fn lifecycle(session: &Session, runtime: &Runtime) -> Result<Vec<Duration>, BenchError> {
    let id = runtime.new_id("cycle");
    let cycle = || -> Result<Vec<Duration>, BenchError> {
        let create = runtime.create(session.true_bundle(), &id)?;
        let start = runtime.start(&id)?;
        runtime.wait_stopped(&id)?;
        let delete = runtime.delete(&id)?;
        Ok(vec![create, start, delete])
    };
    let result = cycle();
    if result.is_err() {
        runtime.force_delete(&id);
    }
    result
}

/// Creates and starts a `sleep 1000` container and checks that it runs and that
/// exec works in it.
fn start_exec_target(session: &Session, runtime: &Runtime, id: &str) -> Result<(), BenchError> {
    runtime.create(session.sleep_bundle(), id)?;
    runtime.start(id)?;
    let status = runtime.status(id)?;
    if status != "running" {
        return Err(BenchError::Misbehaved {
            runtime: runtime.name(),
            what: format!("started container is {status}, not running"),
        });
    }
    let printed = runtime.exec_printing(id, &["/bin/echo", PROBE_MARKER])?;
    expect_marker(runtime, "exec", &printed)
}

/// `exec /bin/true` into one long-running container per runtime.
fn exec_case(
    session: &Session,
    available: &Availability,
    samples: usize,
) -> Result<Vec<CaseResult>, BenchError> {
    let mut usable = available.clone();
    let mut targets = Vec::with_capacity(session.runtimes.len());
    for (runtime, failure) in session.runtimes.iter().zip(usable.iter_mut()) {
        let id = runtime.new_id("exec");
        if failure.is_none() {
            match start_exec_target(session, runtime, &id) {
                Err(BenchError::Interrupted) => return Err(BenchError::Interrupted),
                Err(error) => *failure = Some(error.reason()),
                Ok(()) => {}
            }
        }
        targets.push(id);
    }
    let measured = interleaved(
        &session.runtimes,
        &usable,
        &["exec /bin/true"],
        samples,
        |index, runtime| Ok(vec![runtime.exec(&targets[index], &["/bin/true"])?]),
    );
    for (runtime, id) in session.runtimes.iter().zip(&targets) {
        runtime.force_delete(id);
    }
    measured
}

/// The total wall time of `count` runs of `/bin/true` by `workers` threads.
fn batch(
    session: &Session,
    runtime: &Runtime,
    count: usize,
    workers: usize,
) -> Result<Duration, BenchError> {
    let ids: Vec<String> = (0..count).map(|_| runtime.new_id("batch")).collect();
    let next = AtomicUsize::new(0);
    let first_error = Mutex::new(None);
    let worker = || {
        while let Some(id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
            if let Err(error) =
                interrupt::check().and_then(|_| runtime.run(session.true_bundle(), id))
            {
                let mut slot = first_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                slot.get_or_insert(error);
                // Stop the other workers too.
                next.store(ids.len(), Ordering::Relaxed);
                return;
            }
        }
    };
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(worker);
        }
    });
    let elapsed = started.elapsed();
    for id in &ids {
        runtime.force_delete(id);
    }
    match first_error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        Some(error) => Err(error),
        None => Ok(elapsed),
    }
}
