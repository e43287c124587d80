//! The network bench's printed report: the paths compared, a table with each
//! path's median (p90) per case and the ratio cni/builtin of the medians,
//! and whether the built-in network meets its target against the plugins.

use std::fmt::Write as _;

use crate::cases::CaseResult;
use crate::net_cases::NetPlan;
use crate::report::{align, cell, kernel_release, median_ratio, notes, ratio};

/// The path the ratios are taken against (the denominator).
pub const BUILTIN: &str = "builtin";
/// The path compared with it (the numerator).
pub const CNI: &str = "cni";
/// How many times faster than the plugins the built-in network must be
/// (issue #5).
pub const TARGET_SPEEDUP: f64 = 5.0;

/// What the report says about one path in its header.
pub struct PathInfo<'a> {
    pub name: &'static str,
    pub description: &'a str,
}

/// Renders the whole report; `paths` are the outcome columns, in order;
/// `verdict_cases` are the rows judged against [`TARGET_SPEEDUP`].
pub fn render(
    plan: NetPlan,
    paths: &[PathInfo],
    rows: &[CaseResult],
    verdict_cases: &[&str],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "berth-bench network: {} samples per case ({} per burst of {} pods), kernel {}, \
         private node network namespace",
        plan.samples,
        plan.burst_samples,
        plan.concurrency,
        kernel_release()
    );
    for path in paths {
        let _ = writeln!(out, "  {:<8} {}", path.name, path.description);
    }
    out.push('\n');
    let names: Vec<&str> = paths.iter().map(|path| path.name).collect();
    out.push_str(&table(&names, rows));
    out.push_str(&verdict(&names, rows, verdict_cases));
    out.push_str(&notes(&names, rows));
    out
}

/// Where `name` is among the columns.
fn column(names: &[&str], name: &str) -> Option<usize> {
    names.iter().position(|candidate| *candidate == name)
}

/// One row per case: a `median (p90 ...)` column per path, then cni/builtin.
fn table(names: &[&str], rows: &[CaseResult]) -> String {
    let mut header = vec!["case (median, p90)".to_string()];
    header.extend(names.iter().map(|name| name.to_string()));
    header.push(format!("{CNI}/{BUILTIN}"));
    let mut lines = vec![header];
    for row in rows {
        let mut line = vec![row.name.clone()];
        line.extend(row.outcomes.iter().map(cell));
        line.push(row_ratio(names, row).unwrap_or_else(|| "n/a".to_string()));
        lines.push(line);
    }
    align(&lines)
}

fn row_ratio(names: &[&str], row: &CaseResult) -> Option<String> {
    let cni = row.outcomes.get(column(names, CNI)?)?;
    let builtin = row.outcomes.get(column(names, BUILTIN)?)?;
    Some(ratio(cni, builtin))
}

/// One line per judged case: the speed-up and whether it meets the target.
fn verdict(names: &[&str], rows: &[CaseResult], cases: &[&str]) -> String {
    let mut out = format!("\ntarget: {BUILTIN} at least {TARGET_SPEEDUP:.0}x faster than {CNI}\n");
    for case in cases {
        let speedup = rows.iter().find(|row| row.name == *case).and_then(|row| {
            let cni = row.outcomes.get(column(names, CNI)?)?;
            let builtin = row.outcomes.get(column(names, BUILTIN)?)?;
            median_ratio(cni, builtin)
        });
        let judged = match speedup {
            Some(value) if value >= TARGET_SPEEDUP => format!("{value:.2}x, met"),
            Some(value) => format!("{value:.2}x, NOT met"),
            None => "not measured".to_string(),
        };
        let _ = writeln!(out, "  {case}: {judged}");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cases::Outcome;
    use crate::stats::Summary;

    fn measured(micros: u64) -> Outcome {
        Outcome::Measured(Summary {
            median: Duration::from_micros(micros),
            p90: Duration::from_micros(micros * 2),
            samples: 5,
        })
    }

    fn row(name: &str, builtin: Outcome, cni: Outcome) -> CaseResult {
        CaseResult {
            name: name.to_string(),
            outcomes: vec![builtin, cni],
        }
    }

    const NAMES: [&str; 2] = [BUILTIN, CNI];

    #[test]
    fn ratio_column_is_cni_over_builtin() {
        let rows = vec![
            row("setup", measured(2_000), measured(30_000)),
            row("teardown", measured(1_000), measured(3_000)),
        ];
        let text = table(&NAMES, &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].trim_end().ends_with("cni/builtin"), "{text}");
        assert!(lines[1].contains("2.0 ms (p90 4.0 ms)"), "{text}");
        assert!(lines[1].contains("30.0 ms (p90 60.0 ms)"), "{text}");
        assert!(lines[1].trim_end().ends_with("15.00x"), "{text}");
        assert!(lines[2].trim_end().ends_with("3.00x"), "{text}");
    }

    #[test]
    fn verdict_judges_each_case_against_the_target() {
        let rows = vec![
            row("setup + teardown", measured(1_000), measured(5_000)),
            row("burst", measured(1_000), measured(4_990)),
            row(
                "broken",
                measured(1_000),
                Outcome::Unavailable("bridge: not found".to_string()),
            ),
        ];
        let text = verdict(&NAMES, &rows, &["setup + teardown", "burst", "broken", "x"]);
        assert!(text.contains("setup + teardown: 5.00x, met"), "{text}");
        assert!(text.contains("burst: 4.99x, NOT met"), "{text}");
        assert!(text.contains("broken: not measured"), "{text}");
        assert!(text.contains("x: not measured"), "{text}");
    }

    #[test]
    fn unavailable_paths_show_their_reason_and_no_ratio() {
        let rows = vec![row(
            "setup",
            measured(1_000),
            Outcome::Unavailable("portmap: not found".to_string()),
        )];
        let plan = NetPlan {
            samples: 1,
            burst_samples: 1,
            concurrency: 2,
        };
        let paths = [
            PathInfo {
                name: BUILTIN,
                description: "bridge b",
            },
            PathInfo {
                name: CNI,
                description: "plugins",
            },
        ];
        let text = render(plan, &paths, &rows, &["setup"]);
        let line = text.lines().find(|l| l.starts_with("setup ")).unwrap();
        assert!(line.contains("n/a (portmap: not found)"), "{text}");
        assert!(line.trim_end().ends_with("n/a"), "{text}");
        assert!(text.contains("  cni: portmap: not found"), "{text}");
        assert!(text.contains("setup: not measured"), "{text}");
    }
}
