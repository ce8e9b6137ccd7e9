//! Per-tool counters and latency histograms, cheap enough to update on every call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Buckets per doubling of latency: 4 gives percentiles within ~19%.
const STEPS_PER_DOUBLING: f64 = 4.0;
/// Buckets from 1 µs to about 2^32 µs (70 minutes).
const BUCKETS: usize = 32 * STEPS_PER_DOUBLING as usize;

/// A lock-free latency histogram with logarithmic buckets.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one observation.
    pub fn record(&self, elapsed: Duration) {
        let micros = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
        self.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The latency at quantile `q` (0..=1) in milliseconds: the upper bound of its bucket.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let total = self.count.load(Ordering::Relaxed);
        if total == 0 {
            return 0.0;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= rank {
                return upper_bound_micros(index) / 1000.0;
            }
        }
        upper_bound_micros(BUCKETS - 1) / 1000.0
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Sum of all observations, in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
    }

    /// Cumulative counts at every doubling of latency, from 16 µs to about 67 s, as
    /// `(upper bound in seconds, observations at or below it)`: exact, because each bound is a
    /// bucket boundary. This is the shape of a Prometheus histogram.
    pub fn cumulative_by_doubling(&self) -> Vec<(f64, u64)> {
        let steps = STEPS_PER_DOUBLING as usize;
        let mut seen = 0;
        let mut out = Vec::new();
        for (index, bucket) in self.buckets.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if index % steps == 0 && (4 * steps..=26 * steps).contains(&index) {
                out.push((upper_bound_micros(index) / 1e6, seen));
            }
        }
        out
    }

    /// Mean latency in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        let count = self.count.load(Ordering::Relaxed);
        if count == 0 {
            return 0.0;
        }
        self.sum_micros.load(Ordering::Relaxed) as f64 / count as f64 / 1000.0
    }
}

fn bucket_of(micros: u64) -> usize {
    if micros <= 1 {
        return 0;
    }
    let index = ((micros as f64).log2() * STEPS_PER_DOUBLING).ceil() as usize;
    index.min(BUCKETS - 1)
}

fn upper_bound_micros(index: usize) -> f64 {
    2f64.powf(index as f64 / STEPS_PER_DOUBLING)
}

/// What the framework counts for one tool.
#[derive(Default)]
pub struct ToolMetrics {
    calls: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    cache_hits: AtomicU64,
    retries: AtomicU64,
    latency: Histogram,
}

impl ToolMetrics {
    /// Records a finished call.
    pub fn record_call(&self, elapsed: Duration, failed: bool, timed_out: bool, cached: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if timed_out {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
        }
        if cached {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        self.latency.record(elapsed);
    }

    /// The latency histogram.
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }

    /// Records one retry of a transient failure.
    pub fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// A consistent-enough copy for reporting.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let calls = self.calls.load(Ordering::Relaxed);
        let errors = self.errors.load(Ordering::Relaxed);
        MetricsSnapshot {
            calls,
            errors,
            timeouts: self.timeouts.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            success_rate: if calls == 0 {
                1.0
            } else {
                (calls - errors) as f64 / calls as f64
            },
            latency_ms: LatencySummary {
                mean: self.latency.mean_ms(),
                p50: self.latency.quantile_ms(0.50),
                p95: self.latency.quantile_ms(0.95),
                p99: self.latency.quantile_ms(0.99),
            },
        }
    }
}

/// Reported figures for one tool.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsSnapshot {
    /// Finished calls, cached or not.
    pub calls: u64,
    /// Calls that ended in an error result.
    pub errors: u64,
    /// Calls that hit their deadline.
    pub timeouts: u64,
    /// Calls answered from the result cache.
    pub cache_hits: u64,
    /// Retries after transient errors.
    pub retries: u64,
    /// Share of calls without error, 1.0 when there were none.
    pub success_rate: f64,
    /// Latency, bucketed (each figure is the upper bound of its bucket).
    pub latency_ms: LatencySummary,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_land_in_the_right_bucket() {
        let histogram = Histogram::default();
        for _ in 0..90 {
            histogram.record(Duration::from_micros(100));
        }
        for _ in 0..10 {
            histogram.record(Duration::from_millis(50));
        }
        let p50 = histogram.quantile_ms(0.5);
        let p99 = histogram.quantile_ms(0.99);
        assert!((0.1..0.125).contains(&p50), "p50 {p50}");
        assert!((50.0..60.0).contains(&p99), "p99 {p99}");
    }
}
