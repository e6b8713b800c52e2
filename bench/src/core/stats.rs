//! Summaries of latency samples: nearest-rank percentiles and the mean.
//!
//! Kept apart from the scenarios so that every figure is computed the same way (the boto3
//! latencies too: the script hands back its samples).

use std::time::Duration;

/// The figures the table reports for one set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub mean: Duration,
    pub max: Duration,
}

impl Summary {
    /// No samples.
    pub const ZERO: Self = Self {
        count: 0,
        p50: Duration::ZERO,
        p90: Duration::ZERO,
        p99: Duration::ZERO,
        mean: Duration::ZERO,
        max: Duration::ZERO,
    };

    /// Summarises `samples`; `None` when there are none.
    pub fn of(mut samples: Vec<Duration>) -> Option<Self> {
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        let count = samples.len();
        Some(Self {
            count,
            p50: percentile(&samples, 50.0)?,
            p90: percentile(&samples, 90.0)?,
            p99: percentile(&samples, 99.0)?,
            mean: total / u32::try_from(count).ok()?,
            max: *samples.last()?,
        })
    }
}

/// The nearest-rank `p`th percentile of `sorted` (ascending): the smallest sample with at least
/// `p`% of the samples at or below it. `None` when `sorted` is empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// A duration in microseconds with one decimal, for the table.
pub fn micros(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

/// A duration in milliseconds with two decimals, for the table.
pub fn millis(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(us).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(us(50)));
        assert_eq!(percentile(&sorted, 99.0), Some(us(99)));
        assert_eq!(percentile(&sorted, 100.0), Some(us(100)));
        assert_eq!(percentile(&sorted, 0.0), Some(us(1)));
        assert_eq!(percentile(&[us(7)], 99.0), Some(us(7)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn summary_sorts_and_averages() {
        let summary = Summary::of(vec![us(30), us(10), us(20)]).expect("three samples");
        assert_eq!(summary.count, 3);
        assert_eq!(summary.p50, us(20));
        assert_eq!(summary.p99, us(30));
        assert_eq!(summary.mean, us(20));
        assert_eq!(summary.max, us(30));
        assert_eq!(Summary::of(Vec::new()), None);
    }
}
