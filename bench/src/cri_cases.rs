//! The CRI bench's measurements. Per subject: one untimed probe pod (also
//! the warm-up), the daemon's idle memory, then N pods started one at a
//! time with the subjects taking turns per pod (the order rotates), the
//! memory with all N running, and the N pods stopped and removed, again
//! taking turns. A subject that fails is unavailable from then on, with
//! the reason; its pods are removed when the session closes.

use std::time::{Duration, Instant};

use crate::cri_client::{CriClient, StartedPod, START_RPCS, STOP_RPCS};
use crate::cri_session::CriSession;
use crate::error::BenchError;
use crate::interrupt;
use crate::procs::Memory;

/// p50 and p95 (nearest rank) of one subject's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub p50: Duration,
    pub p95: Duration,
    pub samples: usize,
}

impl Latency {
    /// `None` without samples.
    pub fn of(samples: &[Duration]) -> Option<Latency> {
        let mut sorted = samples.to_vec();
        sorted.sort();
        Some(Latency {
            p50: nearest_rank(&sorted, 50)?,
            p95: nearest_rank(&sorted, 95)?,
            samples: sorted.len(),
        })
    }
}

/// The smallest sample with at least `percent`% of them at or below it.
fn nearest_rank(sorted: &[Duration], percent: usize) -> Option<Duration> {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The daemon's and its helpers' memory at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryAt {
    pub daemon: Memory,
    pub helpers: Memory,
    pub helper_count: usize,
}

/// The latency rows: a pod's start, each of its RPCs, its stop and removal,
/// each of those RPCs.
pub fn latency_rows() -> Vec<String> {
    let mut rows = vec![START_ROW.to_string()];
    rows.extend(START_RPCS.iter().map(|rpc| format!("  {rpc}")));
    rows.push(STOP_ROW.to_string());
    rows.extend(STOP_RPCS.iter().map(|rpc| format!("  {rpc}")));
    rows
}

/// The row of a whole pod start (index 0 of [`latency_rows`]).
pub const START_ROW: &str = "start: run sandbox, create, start";
/// The row of a whole pod stop and removal.
pub const STOP_ROW: &str = "stop + remove: container, sandbox";

/// One subject's samples per row of [`latency_rows`].
fn row_series(
    start: &[Duration],
    start_rpcs: &[[Duration; 3]],
    stop: &[[Duration; 4]],
) -> Vec<Vec<Duration>> {
    let mut series = vec![start.to_vec()];
    series.extend((0..START_RPCS.len()).map(|k| start_rpcs.iter().map(|d| d[k]).collect()));
    series.push(stop.iter().map(|d| d.iter().sum()).collect());
    series.extend((0..STOP_RPCS.len()).map(|k| stop.iter().map(|d| d[k]).collect()));
    series
}

/// Everything measured for one subject.
#[derive(Debug, Clone, Default)]
pub struct SubjectResult {
    /// Per row of [`latency_rows`] (empty if the subject failed).
    pub latencies: Vec<Option<Latency>>,
    /// The daemon alone, after the probe pod came and went.
    pub idle: Option<Memory>,
    /// With every pod running.
    pub loaded: Option<MemoryAt>,
    /// Why the subject could not be measured (fully), if it could not.
    pub failure: Option<String>,
}

/// Runs the whole bench with `pods` pods per subject.
pub fn run_all(session: &CriSession, pods: usize) -> Result<Vec<SubjectResult>, BenchError> {
    let count = session.subjects.len();
    let mut results = vec![SubjectResult::default(); count];
    let mut clients: Vec<Option<CriClient>> = Vec::with_capacity(count);
    for (subject, result) in session.subjects.iter().zip(&mut results) {
        match &subject.client {
            Ok(client) => clients.push(Some(client.clone())),
            Err(reason) => {
                result.failure = Some(reason.clone());
                clients.push(None);
            }
        }
    }
    let mut disable = |index: usize, error: BenchError, clients: &mut Vec<Option<CriClient>>| {
        results[index].failure = Some(error.reason());
        clients[index] = None;
    };

    eprintln!("berth-bench: probe pod");
    for index in 0..count {
        let Some(client) = clients[index].as_mut() else {
            continue;
        };
        interrupt::check()?;
        let place = session.subjects[index].place(&session.run);
        let probed = session.runtime.block_on(async {
            let pod = client.start_pod(&place, pods).await?;
            client.stop_pod(&pod).await.map(|_| ())
        });
        match probed {
            Err(BenchError::Interrupted) => return Err(BenchError::Interrupted),
            Err(error) => disable(index, error, &mut clients),
            Ok(()) => {}
        }
    }
    let idle: Vec<Option<Memory>> = (0..count)
        .map(|index| {
            clients[index].as_ref()?;
            session.subjects[index]
                .memory()
                .map(|(daemon, _, _)| daemon)
        })
        .collect();

    eprintln!("berth-bench: starting {pods} pods per subject");
    let mut started: Vec<Vec<StartedPod>> = vec![Vec::new(); count];
    let mut start_times: Vec<Vec<Duration>> = vec![Vec::new(); count];
    for n in 0..pods {
        for offset in 0..count {
            let index = (n + offset) % count;
            let Some(client) = clients[index].as_mut() else {
                continue;
            };
            interrupt::check()?;
            let place = session.subjects[index].place(&session.run);
            let begun = Instant::now();
            match session.runtime.block_on(client.start_pod(&place, n)) {
                Ok(pod) => {
                    start_times[index].push(begun.elapsed());
                    started[index].push(pod);
                }
                Err(error) => disable(index, error, &mut clients),
            }
        }
    }
    let loaded: Vec<Option<MemoryAt>> = (0..count)
        .map(|index| {
            clients[index].as_ref()?;
            let (daemon, helpers, helper_count) = session.subjects[index].memory()?;
            Some(MemoryAt {
                daemon,
                helpers,
                helper_count,
            })
        })
        .collect();

    eprintln!("berth-bench: stopping and removing the pods");
    let mut stop_times: Vec<Vec<[Duration; 4]>> = vec![Vec::new(); count];
    for n in 0..pods {
        for offset in 0..count {
            let index = (n + offset) % count;
            let (Some(client), Some(pod)) = (clients[index].as_mut(), started[index].get(n)) else {
                continue;
            };
            interrupt::check()?;
            match session.runtime.block_on(client.stop_pod(pod)) {
                Ok(rpcs) => stop_times[index].push(rpcs),
                Err(error) => disable(index, error, &mut clients),
            }
        }
    }

    for index in 0..count {
        let result = &mut results[index];
        if result.failure.is_none() {
            let rpcs: Vec<[Duration; 3]> =
                started[index].iter().map(|pod| pod.start_rpcs).collect();
            result.latencies = row_series(&start_times[index], &rpcs, &stop_times[index])
                .iter()
                .map(|series| Latency::of(series))
                .collect();
            result.idle = idle[index];
            result.loaded = loaded[index];
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let latency = Latency::of(&ms((1..=100).rev())).unwrap();
        assert_eq!(latency.p50, Duration::from_millis(50));
        assert_eq!(latency.p95, Duration::from_millis(95));
        assert_eq!(latency.samples, 100);
        let two = Latency::of(&ms([30, 10])).unwrap();
        assert_eq!(
            (two.p50, two.p95),
            (Duration::from_millis(10), Duration::from_millis(30))
        );
        let one = Latency::of(&ms([7])).unwrap();
        assert_eq!(
            (one.p50, one.p95),
            (Duration::from_millis(7), Duration::from_millis(7))
        );
        assert!(Latency::of(&[]).is_none());
    }

    #[test]
    fn rows_and_series_line_up() {
        let rpc = Duration::from_millis(1);
        let series = row_series(&[rpc * 3], &[[rpc; 3]], &[[rpc; 4]]);
        assert_eq!(series.len(), latency_rows().len());
        assert_eq!(latency_rows()[0], START_ROW);
        assert_eq!(latency_rows()[4], STOP_ROW);
        assert_eq!(series[4], [rpc * 4]);
        assert_eq!(series[1], [rpc]);
    }
}
