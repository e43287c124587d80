//! Median and 90th percentile of a series of timings.

use std::time::Duration;

/// The summary of one runtime's samples for one case.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub median: Duration,
    pub p90: Duration,
    pub samples: usize,
}

impl Summary {
    /// Summarises `samples`; `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort();
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        };
        // Nearest-rank percentile: the smallest sample with at least 90% at or below it.
        let p90 = sorted[(n * 9).div_ceil(10) - 1];
        Some(Summary {
            median,
            p90,
            samples: n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn odd_and_even_medians() {
        assert_eq!(
            Summary::of(&ms(&[3, 1, 2])).unwrap().median,
            Duration::from_millis(2)
        );
        assert_eq!(
            Summary::of(&ms(&[4, 1, 2, 3])).unwrap().median,
            Duration::from_micros(2500)
        );
    }

    #[test]
    fn p90_is_nearest_rank() {
        let samples = ms(&[10, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(Summary::of(&samples).unwrap().p90, Duration::from_millis(9));
        assert_eq!(
            Summary::of(&ms(&[5])).unwrap().p90,
            Duration::from_millis(5)
        );
        assert_eq!(
            Summary::of(&ms(&[1, 2, 3])).unwrap().p90,
            Duration::from_millis(3)
        );
    }

    #[test]
    fn empty_has_no_summary() {
        assert!(Summary::of(&[]).is_none());
    }
}
