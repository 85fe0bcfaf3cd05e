//! What loadgen measures: latency histograms (HdrHistogram, microseconds, 3 significant
//! digits) and completions per second of the run.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// The longest latency recorded exactly; anything slower is clamped to it (and shows as max).
const HIGHEST_MICROS: u64 = 120_000_000;

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_MICROS, 3).expect("valid histogram bounds")
}

pub fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.clamp(1, HIGHEST_MICROS));
}

/// A histogram's percentiles, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |micros: u64| micros as f64 / 1_000.0;
        Self {
            count: histogram.len(),
            mean_ms: histogram.mean() / 1_000.0,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// Completions in each second since the run started.
#[derive(Debug, Clone)]
pub struct Timeline {
    started: Instant,
    per_second: Vec<u64>,
}

impl Timeline {
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            per_second: Vec::new(),
        }
    }

    pub fn mark(&mut self, at: Instant) {
        let second = at.saturating_duration_since(self.started).as_secs() as usize;
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, 0);
        }
        self.per_second[second] += 1;
    }

    pub fn per_second(&self) -> &[u64] {
        &self.per_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reads_percentiles_in_milliseconds() {
        let mut latencies = histogram();
        for millis in 1..=100 {
            record(&mut latencies, Duration::from_millis(millis));
        }
        let summary = LatencySummary::of(&latencies);
        assert_eq!(summary.count, 100);
        assert!((summary.p50_ms - 50.0).abs() < 0.1, "{summary:?}");
        assert!((summary.p99_ms - 99.0).abs() < 0.1, "{summary:?}");
        assert!((summary.max_ms - 100.0).abs() < 0.1, "{summary:?}");
    }

    #[test]
    fn latencies_beyond_the_range_are_clamped_not_lost() {
        let mut latencies = histogram();
        record(&mut latencies, Duration::from_secs(500));
        record(&mut latencies, Duration::ZERO);
        assert_eq!(latencies.len(), 2);
        assert!(latencies.max() >= HIGHEST_MICROS - HIGHEST_MICROS / 1000);
    }

    #[test]
    fn timeline_counts_completions_per_second() {
        let started = Instant::now();
        let mut timeline = Timeline::new(started);
        timeline.mark(started);
        timeline.mark(started + Duration::from_millis(999));
        timeline.mark(started + Duration::from_millis(2_500));
        assert_eq!(timeline.per_second(), &[2, 0, 1]);
    }
}
