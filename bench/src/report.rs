//! The printed report: the machine, the runtimes, and a table with each
//! runtime's median (p90) per case plus berth's ratio to each peer.

use std::fmt::Write as _;
use std::time::Duration;

use crate::cases::{CaseResult, Outcome, Plan};

/// The runtime the ratios are taken of.
pub const SUBJECT: &str = "berth";

/// Longest n/a reason shown in a cell; the full one is listed below the table.
const CELL_REASON_CHARS: usize = 40;

/// What the report says about one runtime in its header.
pub struct RuntimeInfo {
    pub name: &'static str,
    pub binary: String,
    pub version: Option<String>,
}

/// Renders the whole report.
pub fn render(plan: Plan, runtimes: &[RuntimeInfo], rows: &[CaseResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "berth-bench runtime: {} samples per case ({} for batches), kernel {}, cgroup {}",
        plan.samples,
        plan.batch_samples,
        kernel_release(),
        cgroup_mode()
    );
    for info in runtimes {
        let _ = writeln!(
            out,
            "  {:<6} {} ({})",
            info.name,
            info.binary,
            info.version.as_deref().unwrap_or("version unknown")
        );
    }
    out.push('\n');
    out.push_str(&table(runtimes, rows));
    let names: Vec<&str> = runtimes.iter().map(|info| info.name).collect();
    out.push_str(&notes(&names, rows));
    out
}

/// The full reason of every distinct n/a cell, below the table; `names`
/// are the subjects of the outcome columns, in order.
pub fn notes(names: &[&str], rows: &[CaseResult]) -> String {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for row in rows {
        for (name, outcome) in names.iter().zip(&row.outcomes) {
            if let Outcome::Unavailable(reason) = outcome {
                if !seen.contains(&(name, reason.as_str())) {
                    seen.push((name, reason));
                }
            }
        }
    }
    let mut out = String::new();
    if !seen.is_empty() {
        out.push_str("\nn/a:\n");
    }
    for (name, reason) in seen {
        let _ = writeln!(out, "  {name}: {reason}");
    }
    out
}

/// The table: one row per case, one `median (p90 ...)` column per runtime, then
/// `berth/<peer>` ratio columns of the medians.
fn table(runtimes: &[RuntimeInfo], rows: &[CaseResult]) -> String {
    let subject = runtimes.iter().position(|info| info.name == SUBJECT);
    let peers: Vec<usize> = (0..runtimes.len())
        .filter(|index| Some(*index) != subject)
        .collect();

    let mut header = vec!["case (median, p90)".to_string()];
    header.extend(runtimes.iter().map(|info| info.name.to_string()));
    if subject.is_some() {
        header.extend(
            peers
                .iter()
                .map(|peer| format!("{SUBJECT}/{}", runtimes[*peer].name)),
        );
    }
    let mut lines = vec![header];
    for row in rows {
        let mut line = vec![row.name.clone()];
        line.extend(row.outcomes.iter().map(cell));
        if let Some(subject) = subject {
            line.extend(
                peers
                    .iter()
                    .map(|peer| ratio(&row.outcomes[subject], &row.outcomes[*peer])),
            );
        }
        lines.push(line);
    }
    align(&lines)
}

/// Pads every column to its widest cell.
pub fn align(lines: &[Vec<String>]) -> String {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            lines
                .iter()
                .filter_map(|line| line.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let padded: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `median (p90 ...)`, or `n/a (reason)`.
pub fn cell(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Measured(summary) => {
            format!(
                "{} (p90 {})",
                duration(summary.median),
                duration(summary.p90)
            )
        }
        Outcome::Unavailable(reason) => format!("n/a ({})", shorten(reason)),
    }
}

/// `text` cut to [`CELL_REASON_CHARS`], marked with `...` when cut.
fn shorten(text: &str) -> String {
    if text.chars().count() <= CELL_REASON_CHARS {
        return text.to_string();
    }
    let kept: String = text.chars().take(CELL_REASON_CHARS - 3).collect();
    format!("{}...", kept.trim_end())
}

/// The ratio of the medians, `numerator / denominator`, as `1.23x`.
pub fn ratio(numerator: &Outcome, denominator: &Outcome) -> String {
    median_ratio(numerator, denominator)
        .map(|value| format!("{value:.2}x"))
        .unwrap_or_else(|| "n/a".to_string())
}

/// `numerator`'s median over `denominator`'s, when both were measured.
pub fn median_ratio(numerator: &Outcome, denominator: &Outcome) -> Option<f64> {
    match (numerator, denominator) {
        (Outcome::Measured(numerator), Outcome::Measured(denominator))
            if !denominator.median.is_zero() =>
        {
            Some(numerator.median.as_secs_f64() / denominator.median.as_secs_f64())
        }
        _ => None,
    }
}

/// Milliseconds with one decimal, or seconds with two past ten seconds.
fn duration(value: Duration) -> String {
    let millis = value.as_secs_f64() * 1000.0;
    if millis >= 10_000.0 {
        format!("{:.2} s", value.as_secs_f64())
    } else {
        format!("{millis:.1} ms")
    }
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// `v2`, `v1 hybrid` (v1 controllers plus an unused unified mount) or `v1`.
fn cgroup_mode() -> &'static str {
    let root = std::path::Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        "v2"
    } else if root.join("unified").is_dir() {
        "v1 hybrid"
    } else {
        "v1"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Summary;

    fn measured(millis: u64) -> Outcome {
        Outcome::Measured(Summary {
            median: Duration::from_millis(millis),
            p90: Duration::from_millis(millis + 1),
            samples: 3,
        })
    }

    fn info(name: &'static str) -> RuntimeInfo {
        RuntimeInfo {
            name,
            binary: name.to_string(),
            version: None,
        }
    }

    #[test]
    fn ratios_and_unavailable_peers() {
        let rows = vec![CaseResult {
            name: "run".to_string(),
            outcomes: vec![
                measured(30),
                measured(60),
                Outcome::Unavailable("cgroups in hybrid mode not supported".to_string()),
            ],
        }];
        let text = table(&[info("berth"), info("runc"), info("crun")], &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("berth/runc") && lines[0].contains("berth/crun"));
        assert!(lines[1].contains("30.0 ms (p90 31.0 ms)"));
        assert!(lines[1].contains("0.50x"));
        assert!(lines[1].contains("n/a (cgroups in hybrid mode not supported)"));
        let long = "x".repeat(100);
        assert_eq!(shorten(&long).chars().count(), CELL_REASON_CHARS);
        assert!(lines[1].trim_end().ends_with("n/a"));
    }

    #[test]
    fn long_durations_in_seconds() {
        assert_eq!(duration(Duration::from_millis(12_345)), "12.35 s");
        assert_eq!(duration(Duration::from_micros(1_250)), "1.2 ms");
    }
}
