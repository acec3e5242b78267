//! Latency statistics: nearest-rank percentiles, summaries and a log-scale histogram (pure).

use serde::Serialize;

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50_ms: u64,
    /// 95th percentile.
    pub p95_ms: u64,
    /// 99th percentile.
    pub p99_ms: u64,
    /// Largest sample.
    pub max_ms: u64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

/// The nearest-rank `p`-th percentile (0 < `p` <= 100) of ascending `sorted` samples: the
/// smallest sample such that at least `p` % of the samples are at or below it. `None` when
/// there are no samples.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(f64::MIN_POSITIVE, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Summarizes `samples` (any order); `None` when empty.
pub fn summarize(mut samples: Vec<u64>) -> Option<LatencySummary> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let sum: u128 = samples.iter().map(|&s| u128::from(s)).sum();
    Some(LatencySummary {
        count: samples.len() as u64,
        p50_ms: percentile(&samples, 50.0)?,
        p95_ms: percentile(&samples, 95.0)?,
        p99_ms: percentile(&samples, 99.0)?,
        max_ms: *samples.last()?,
        mean_ms: sum as f64 / samples.len() as f64,
    })
}

/// Upper bounds (inclusive, ms) of the histogram buckets: 1-2-5 steps from 10 ms to 60 s; a
/// last, open bucket holds everything above.
pub const HISTOGRAM_BOUNDS_MS: [u64; 14] = [
    10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 45_000, 60_000,
];

/// Latency counts per [`HISTOGRAM_BOUNDS_MS`] bucket (plus one overflow bucket).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Histogram {
    /// Inclusive upper bound of each bucket, in ms (the overflow bucket has none).
    pub bounds_ms: Vec<u64>,
    /// Samples per bucket; one more entry than `bounds_ms` (the overflow bucket).
    pub counts: Vec<u64>,
}

impl Histogram {
    /// The histogram of `samples`.
    pub fn of(samples: &[u64]) -> Histogram {
        let mut counts = vec![0u64; HISTOGRAM_BOUNDS_MS.len() + 1];
        for &s in samples {
            let i = HISTOGRAM_BOUNDS_MS.partition_point(|&b| b < s);
            counts[i] += 1;
        }
        Histogram {
            bounds_ms: HISTOGRAM_BOUNDS_MS.to_vec(),
            counts,
        }
    }

    /// A short label of bucket `i` (`≤10ms`, `≤1s`, `>60s`).
    pub fn label(&self, i: usize) -> String {
        match self.bounds_ms.get(i) {
            Some(&b) => format!("≤{}", short_ms(b)),
            None => format!(">{}", short_ms(self.bounds_ms.last().copied().unwrap_or(0))),
        }
    }
}

/// `850ms`, `2s`, `1.5s`.
pub fn short_ms(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{:.1}s", ms as f64 / 1_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&s, 50.0), Some(50));
        assert_eq!(percentile(&s, 95.0), Some(95));
        assert_eq!(percentile(&s, 99.0), Some(99));
        assert_eq!(percentile(&s, 100.0), Some(100));
        assert_eq!(percentile(&s, 0.5), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        // Ten samples: P95 and P99 are the largest (rank 10), P50 the fifth.
        let s: Vec<u64> = (1..=10).map(|x| x * 10).collect();
        assert_eq!(percentile(&s, 50.0), Some(50));
        assert_eq!(percentile(&s, 95.0), Some(100));
        assert_eq!(percentile(&s, 90.0), Some(90));
    }

    #[test]
    fn summary_sorts_and_averages() {
        let s = summarize(vec![300, 100, 200, 400]).expect("samples");
        assert_eq!(s.count, 4);
        assert_eq!(s.p50_ms, 200);
        assert_eq!(s.p99_ms, 400);
        assert_eq!(s.max_ms, 400);
        assert!((s.mean_ms - 250.0).abs() < 1e-9);
        assert_eq!(summarize(Vec::new()), None);
    }

    #[test]
    fn histogram_buckets_are_inclusive_with_overflow() {
        let h = Histogram::of(&[0, 10, 11, 20, 999, 1_000, 60_000, 60_001, 1 << 40]);
        assert_eq!(h.counts.len(), HISTOGRAM_BOUNDS_MS.len() + 1);
        assert_eq!(h.counts[0], 2); // 0, 10
        assert_eq!(h.counts[1], 2); // 11, 20
        assert_eq!(h.counts[6], 2); // 999, 1000
        assert_eq!(h.counts[13], 1); // 60000
        assert_eq!(h.counts[14], 2); // overflow
        assert_eq!(h.counts.iter().sum::<u64>(), 9);
        assert_eq!(h.label(0), "≤10ms");
        assert_eq!(h.label(6), "≤1s");
        assert_eq!(h.label(14), ">60s");
        assert_eq!(short_ms(1_500), "1.5s");
    }
}
