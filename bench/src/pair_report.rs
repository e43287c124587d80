//! Report pieces shared by the benches that compare berth with one peer
//! (pull, CRI): a table of each subject's median (p90) per case with the
//! speed-up `peer/berth` of the medians, and a verdict line against a
//! target speed-up.

use crate::cases::CaseResult;
use crate::report::{align, cell, median_ratio, ratio};

/// The table; `names` are the outcome columns, berth first, then the peer.
pub fn table(names: [&str; 2], rows: &[CaseResult]) -> String {
    let [berth, peer] = names;
    let mut lines = vec![vec![
        "case (median, p90)".to_string(),
        berth.to_string(),
        peer.to_string(),
        format!("{peer}/{berth}"),
    ]];
    for row in rows {
        let mut line = vec![row.name.clone()];
        line.extend(row.outcomes.iter().map(cell));
        line.push(match (row.outcomes.first(), row.outcomes.get(1)) {
            (Some(ours), Some(theirs)) => ratio(theirs, ours),
            _ => "n/a".to_string(),
        });
        lines.push(line);
    }
    align(&lines)
}

/// `case: 3.10x, met` (or `NOT met`, or `not measured`) for the speed-up
/// of berth over the peer in `row`.
pub fn verdict(row: Option<&CaseResult>, target: f64) -> String {
    let speedup = row.and_then(|row| median_ratio(row.outcomes.get(1)?, row.outcomes.first()?));
    let judged = match speedup {
        Some(value) if value >= target => format!("{value:.2}x, met"),
        Some(value) => format!("{value:.2}x, NOT met"),
        None => "not measured".to_string(),
    };
    let name = row.map_or("?", |row| row.name.as_str());
    format!("  {name}: {judged}\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cases::Outcome;
    use crate::stats::Summary;

    fn measured(millis: u64) -> Outcome {
        Outcome::Measured(Summary {
            median: Duration::from_millis(millis),
            p90: Duration::from_millis(millis * 2),
            samples: 3,
        })
    }

    #[test]
    fn speedup_is_peer_over_berth() {
        let row = CaseResult {
            name: "pull".into(),
            outcomes: vec![measured(100), measured(250)],
        };
        let text = table(["berth", "containerd"], std::slice::from_ref(&row));
        assert!(
            text.lines().next().unwrap().ends_with("containerd/berth"),
            "{text}"
        );
        assert!(text.lines().nth(1).unwrap().ends_with("2.50x"), "{text}");
        assert_eq!(verdict(Some(&row), 1.0), "  pull: 2.50x, met\n");
        assert_eq!(verdict(Some(&row), 3.0), "  pull: 2.50x, NOT met\n");
    }

    #[test]
    fn unavailable_peer_is_not_measured() {
        let row = CaseResult {
            name: "pull".into(),
            outcomes: vec![measured(100), Outcome::Unavailable("gone".into())],
        };
        assert!(table(["berth", "containerd"], std::slice::from_ref(&row)).contains("n/a (gone)"));
        assert_eq!(verdict(Some(&row), 1.0), "  pull: not measured\n");
    }
}
