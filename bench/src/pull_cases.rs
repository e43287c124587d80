//! The pull benchmark's one case: pull and unpack the bulk image from the
//! local registry, berth and containerd sampled in turn (see
//! `cases::interleaved`), each sample into an empty store: a fresh store
//! root for berth, and for containerd an image store emptied (image, blobs
//! and snapshots) by the untimed cleanup of the sample before.

use std::time::{Duration, Instant};

use berth_agent::images::{ImageStore, RegistryConfig};

use crate::cases::{availability, interleaved, progress, CaseResult};
use crate::containerd::{Containerd, NAME as CONTAINERD};
use crate::error::BenchError;
use crate::pull_session::PullSession;

/// berth's name in the report.
pub const BERTH: &str = "berth";
/// The report's one row.
pub const CASE: &str = "pull + unpack";
/// The containerd namespace the bench pulls into.
const NAMESPACE: &str = "berth-bench";

/// The two subjects, in column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Puller {
    Berth,
    Containerd,
}

impl Puller {
    pub const ALL: [Puller; 2] = [Puller::Berth, Puller::Containerd];
}

/// Runs the case `samples` times per subject and returns the report's row.
pub fn run_all(session: &PullSession, samples: usize) -> Result<Vec<CaseResult>, BenchError> {
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let next_root = || counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    progress("pull + unpack (probe)");
    let available = availability(&Puller::ALL, |puller| {
        pull_once(session, *puller, next_root()).map(|_| ())
    })?;
    progress(CASE);
    interleaved(&Puller::ALL, &available, &[CASE], samples, |_, puller| {
        Ok(vec![pull_once(session, *puller, next_root())?])
    })
}

/// One timed pull into an empty store, checked (all layers unpacked) and
/// undone untimed.
fn pull_once(session: &PullSession, puller: Puller, n: usize) -> Result<Duration, BenchError> {
    let layers = session.image.built.layer_digests.len();
    match puller {
        Puller::Berth => berth_pull(session, n, layers),
        Puller::Containerd => match &session.containerd {
            Ok(containerd) => containerd_pull(containerd, &session.image.reference, layers),
            Err(error) => Err(BenchError::Misbehaved {
                runtime: CONTAINERD,
                what: error.reason(),
            }),
        },
    }
}

fn berth_pull(session: &PullSession, n: usize, layers: usize) -> Result<Duration, BenchError> {
    let reference = &session.image.reference;
    let root = session.berth_root(n);
    let store_error = |op| {
        let reference = reference.clone();
        move |source| BenchError::ImageStore {
            op,
            reference,
            source: Box::new(source),
        }
    };
    let timed = ImageStore::open(&root, RegistryConfig::default())
        .map_err(store_error("open store for"))
        .and_then(|store| {
            let started = Instant::now();
            let image = session
                .runtime
                .block_on(store.pull(reference, None))
                .map_err(store_error("pull"))?;
            let elapsed = started.elapsed();
            let snapshots = count_entries(&root.join("snapshots"));
            if image.chain_ids.len() != layers || snapshots < layers {
                return Err(BenchError::Misbehaved {
                    runtime: BERTH,
                    what: format!(
                        "pulled {} layers into {snapshots} snapshots, expected {layers}",
                        image.chain_ids.len()
                    ),
                });
            }
            Ok(elapsed)
        });
    let removed = std::fs::remove_dir_all(&root).map_err(|source| BenchError::Io {
        op: "remove",
        path: root.clone(),
        source,
    });
    timed.and_then(|elapsed| removed.map(|()| elapsed))
}

fn containerd_pull(
    containerd: &Containerd,
    reference: &str,
    layers: usize,
) -> Result<Duration, BenchError> {
    let started = Instant::now();
    let pulled = containerd.ctr(NAMESPACE, &["images", "pull", "--plain-http", reference]);
    let elapsed = started.elapsed();
    let checked = pulled.and_then(|_| {
        let snapshots = data_lines(&containerd.ctr(NAMESPACE, &["snapshots", "ls"])?);
        if snapshots == layers {
            Ok(elapsed)
        } else {
            Err(BenchError::Misbehaved {
                runtime: CONTAINERD,
                what: format!("pull left {snapshots} snapshots, expected {layers}"),
            })
        }
    });
    let removed = empty_containerd(containerd, reference);
    checked.and_then(|elapsed| removed.map(|()| elapsed))
}

/// Removes the image and waits for containerd's garbage collector to drop
/// its blobs and snapshots, so the next sample starts from nothing.
fn empty_containerd(containerd: &Containerd, reference: &str) -> Result<(), BenchError> {
    // Not there if the pull failed early: ignore that failure.
    let _ = containerd.ctr(NAMESPACE, &["images", "rm", "--sync", reference]);
    let snapshots = data_lines(&containerd.ctr(NAMESPACE, &["snapshots", "ls"])?);
    let blobs = data_lines(&containerd.ctr(NAMESPACE, &["content", "ls"])?);
    if snapshots == 0 && blobs == 0 {
        Ok(())
    } else {
        Err(BenchError::Misbehaved {
            runtime: CONTAINERD,
            what: format!("removing the image left {snapshots} snapshots and {blobs} blobs"),
        })
    }
}

/// Lines of a `ctr ... ls` table below its header.
fn data_lines(table: &str) -> usize {
    table
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .count()
}

fn count_entries(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctr_tables_count_rows_below_the_header() {
        assert_eq!(data_lines("KEY PARENT KIND\n"), 0);
        assert_eq!(data_lines("KEY PARENT KIND\na  b c\nd e f\n\n"), 2);
        assert_eq!(data_lines(""), 0);
    }
}
