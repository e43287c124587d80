//! The CRI bench's printed report: the subjects, a latency table (p50 and
//! p95 of pod start and of pod stop + remove), a memory table (daemon idle
//! and loaded, helpers, per pod), and issue #4's targets for berthd.

use std::fmt::Write as _;
use std::time::Duration;

use crate::berthd;
use crate::containerd;
use crate::cri_cases::{latency_rows, Latency, SubjectResult};
use crate::report::{align, kernel_release};

/// Pod start at least this many times faster than containerd's.
pub const START_SPEEDUP: f64 = 3.0;
/// Per-pod overhead of berthd under this many bytes of RSS (2 MB).
pub const PER_POD_RSS: u64 = 2_000_000;
/// berthd's idle RSS under this many bytes (20 MB).
pub const IDLE_RSS: u64 = 20_000_000;

/// What the header says about one subject.
pub struct SubjectInfo<'a> {
    pub name: &'a str,
    pub endpoint: &'a str,
    pub version: Option<&'a str>,
}

/// Renders the whole report; `subjects` and `results` are in the same order.
pub fn render(pods: usize, subjects: &[SubjectInfo], results: &[SubjectResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "berth-bench cri: {pods} pods per subject, kernel {}",
        kernel_release()
    );
    for subject in subjects {
        let _ = writeln!(
            out,
            "  {:<10} {} ({})",
            subject.name,
            if subject.endpoint.is_empty() {
                "-"
            } else {
                subject.endpoint
            },
            subject.version.unwrap_or("not running")
        );
    }
    let names: Vec<&str> = subjects.iter().map(|subject| subject.name).collect();
    let pair = pair(&names);
    out.push('\n');
    out.push_str(&latency_table(&names, results, pair));
    out.push('\n');
    out.push_str(&memory_table(pods, &names, results));
    out.push_str(&verdicts(pods, pair, results));
    let failures: Vec<String> = names
        .iter()
        .zip(results)
        .filter_map(|(name, result)| Some(format!("  {name}: {}", result.failure.as_ref()?)))
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\nn/a:\n{}", failures.join("\n"));
    }
    out
}

/// The columns of berthd and containerd, when both are subjects.
fn pair(names: &[&str]) -> Option<(usize, usize)> {
    let find = |wanted: &str| names.iter().position(|name| *name == wanted);
    Some((find(berthd::NAME)?, find(containerd::NAME)?))
}

fn millis(value: Duration) -> String {
    format!("{:.1} ms", value.as_secs_f64() * 1000.0)
}

fn latency_cell(latency: Option<&Latency>, failure: Option<&String>) -> String {
    match (latency, failure) {
        (_, Some(_)) => "n/a".to_string(),
        (Some(latency), None) => format!("{} (p95 {})", millis(latency.p50), millis(latency.p95)),
        (None, None) => "no samples".to_string(),
    }
}

fn speedup(theirs: Option<&Latency>, ours: Option<&Latency>) -> Option<f64> {
    let (theirs, ours) = (theirs?, ours?);
    (!ours.p50.is_zero()).then(|| theirs.p50.as_secs_f64() / ours.p50.as_secs_f64())
}

fn latency_table<'a>(
    names: &[&str],
    results: &'a [SubjectResult],
    pair: Option<(usize, usize)>,
) -> String {
    let mut header = vec!["pod lifecycle (p50, p95)".to_string()];
    header.extend(names.iter().map(|name| name.to_string()));
    if pair.is_some() {
        header.push(format!("{}/{}", containerd::NAME, berthd::NAME));
    }
    let mut lines = vec![header];
    for (row, label) in latency_rows().into_iter().enumerate() {
        let pick = |result: &'a SubjectResult| result.latencies.get(row).and_then(Option::as_ref);
        let mut line = vec![label];
        line.extend(
            results
                .iter()
                .map(|result| latency_cell(pick(result), result.failure.as_ref())),
        );
        if let Some((ours, theirs)) = pair {
            let value = speedup(pick(&results[theirs]), pick(&results[ours]));
            line.push(value.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2}x")));
        }
        lines.push(line);
    }
    align(&lines)
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / f64::from(1 << 20))
}

/// Per-pod overhead: what the daemon grew by plus the helpers, per pod.
fn overhead_rss(result: &SubjectResult, pods: usize) -> Option<u64> {
    let (idle, loaded) = (result.idle?, result.loaded?);
    let total = loaded.daemon.rss + loaded.helpers.rss;
    Some(total.saturating_sub(idle.rss) / pods.max(1) as u64)
}

fn memory_table(pods: usize, names: &[&str], results: &[SubjectResult]) -> String {
    let mut header = vec!["memory".to_string()];
    header.extend(names.iter().map(|name| name.to_string()));
    let mut lines = vec![header];
    let per_pod = move |bytes: u64| mib(bytes / pods.max(1) as u64);
    type Cell<'a> = Box<dyn Fn(&SubjectResult) -> Option<String> + 'a>;
    let rows: Vec<(String, Cell<'_>)> = vec![
        (
            "daemon RSS, idle".into(),
            Box::new(|r| Some(mib(r.idle?.rss))),
        ),
        (
            "daemon PSS, idle".into(),
            Box::new(|r| Some(mib(r.idle?.pss))),
        ),
        (
            format!("daemon RSS, {pods} pods"),
            Box::new(|r| Some(mib(r.loaded?.daemon.rss))),
        ),
        (
            format!("helpers RSS, {pods} pods"),
            Box::new(|r| {
                let loaded = r.loaded?;
                Some(format!(
                    "{} ({} processes)",
                    mib(loaded.helpers.rss),
                    loaded.helper_count
                ))
            }),
        ),
        (
            "(daemon + helpers) / pods, RSS".into(),
            Box::new(move |r| {
                let loaded = r.loaded?;
                Some(per_pod(loaded.daemon.rss + loaded.helpers.rss))
            }),
        ),
        (
            "(daemon + helpers) / pods, PSS".into(),
            Box::new(move |r| {
                let loaded = r.loaded?;
                Some(per_pod(loaded.daemon.pss + loaded.helpers.pss))
            }),
        ),
        (
            "per-pod overhead, RSS".into(),
            Box::new(move |r| Some(mib(overhead_rss(r, pods)?))),
        ),
    ];
    for (label, cell) in rows {
        let mut line = vec![label];
        line.extend(
            results
                .iter()
                .map(|result| cell(result).unwrap_or_else(|| "n/a".to_string())),
        );
        lines.push(line);
    }
    let mut out = align(&lines);
    out.push_str(
        "(per-pod overhead: daemon and helpers with all pods running, minus the idle daemon, per pod)\n",
    );
    out
}

fn verdicts(pods: usize, pair: Option<(usize, usize)>, results: &[SubjectResult]) -> String {
    let judge = |value: Option<String>, met: Option<bool>| match (value, met) {
        (Some(value), Some(true)) => format!("{value}, met"),
        (Some(value), _) => format!("{value}, NOT met"),
        (None, _) => "not measured".to_string(),
    };
    let Some((ours, theirs)) = pair else {
        return String::new();
    };
    let berth = &results[ours];
    let start = speedup(start_row(&results[theirs]), start_row(berth));
    let overhead = overhead_rss(berth, pods);
    let idle = berth.idle.map(|memory| memory.rss);
    let mut out = format!("\ntargets ({}):\n", berthd::NAME);
    let _ = writeln!(
        out,
        "  pod start at least {START_SPEEDUP:.0}x faster than containerd: {}",
        judge(
            start.map(|v| format!("{v:.2}x")),
            start.map(|v| v >= START_SPEEDUP)
        )
    );
    let _ = writeln!(
        out,
        "  per-pod overhead under 2 MB RSS: {}",
        judge(overhead.map(mib), overhead.map(|v| v < PER_POD_RSS))
    );
    let _ = writeln!(
        out,
        "  idle under 20 MB RSS: {}",
        judge(idle.map(mib), idle.map(|v| v < IDLE_RSS))
    );
    out
}

/// The whole pod start's latency (row 0 of `latency_rows`).
fn start_row(result: &SubjectResult) -> Option<&Latency> {
    result.latencies.first().and_then(Option::as_ref)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri_cases::MemoryAt;
    use crate::procs::Memory;

    fn latency(p50: u64, p95: u64) -> Option<Latency> {
        Some(Latency {
            p50: Duration::from_millis(p50),
            p95: Duration::from_millis(p95),
            samples: 10,
        })
    }

    fn result(start: u64, idle: u64, daemon: u64, helpers: u64) -> SubjectResult {
        SubjectResult {
            latencies: (0..latency_rows().len())
                .map(|row| {
                    if row == 0 {
                        latency(start, start * 2)
                    } else {
                        latency(start / 2, start)
                    }
                })
                .collect(),
            idle: Some(Memory {
                rss: idle,
                pss: idle,
            }),
            loaded: Some(MemoryAt {
                daemon: Memory {
                    rss: daemon,
                    pss: daemon,
                },
                helpers: Memory {
                    rss: helpers,
                    pss: helpers / 2,
                },
                helper_count: 10,
            }),
            failure: None,
        }
    }

    fn infos() -> Vec<SubjectInfo<'static>> {
        [berthd::NAME, containerd::NAME]
            .into_iter()
            .map(|name| SubjectInfo {
                name,
                endpoint: "unix:///x",
                version: Some("v"),
            })
            .collect()
    }

    #[test]
    fn tables_ratio_and_targets() {
        const MIB: u64 = 1 << 20;
        let results = vec![
            result(100, 10 * MIB, 12 * MIB, 10 * MIB),
            result(400, 30 * MIB, 40 * MIB, 100 * MIB),
        ];
        let text = render(10, &infos(), &results);
        let start = text.lines().find(|l| l.starts_with("start:")).unwrap();
        assert!(start.contains("100.0 ms (p95 200.0 ms)"), "{text}");
        assert!(start.trim_end().ends_with("4.00x"), "{text}");
        let overhead = text
            .lines()
            .find(|l| l.starts_with("per-pod overhead, RSS"))
            .unwrap();
        // berthd: (12 + 10 - 10) MiB / 10 pods.
        assert!(overhead.contains("1.20 MiB"), "{text}");
        assert!(
            text.contains("3x faster than containerd: 4.00x, met"),
            "{text}"
        );
        assert!(text.contains("under 2 MB RSS: 1.20 MiB, met"), "{text}");
        assert!(
            text.contains("idle under 20 MB RSS: 10.00 MiB, met"),
            "{text}"
        );
        assert!(
            text.contains("2.20 MiB (10 processes)") || text.contains("10.00 MiB (10 processes)")
        );
    }

    #[test]
    fn unavailable_subject_shows_its_reason() {
        let failed = SubjectResult {
            failure: Some("RunPodSandbox: Unimplemented: soon".into()),
            ..SubjectResult::default()
        };
        let results = vec![failed, result(400, 1, 2, 3)];
        let text = render(2, &infos(), &results);
        let start = text.lines().find(|l| l.starts_with("start:")).unwrap();
        assert!(start.contains("n/a"), "{text}");
        assert!(
            text.contains("berthd: RunPodSandbox: Unimplemented: soon"),
            "{text}"
        );
        assert!(
            text.contains("3x faster than containerd: not measured"),
            "{text}"
        );
    }
}
