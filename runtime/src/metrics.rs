//! Metrics of tasks and processors, in one place, rendered as Prometheus text.
//!
//! Every metric name the runtime exports is defined here, so names and labels stay consistent.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of latency buckets, in microseconds.
const LATENCY_BUCKETS_MICROS: [u64; 16] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    1_000_000, 5_000_000,
];

/// A task counter's name, help text and field.
type CounterField = (&'static str, &'static str, fn(&TaskMetrics) -> &AtomicU64);

/// A lock-free latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_MICROS.len()],
    overflow: AtomicU64,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl LatencyHistogram {
    pub fn record(&self, elapsed: Duration) {
        let micros = elapsed.as_micros() as u64;
        match LATENCY_BUCKETS_MICROS
            .iter()
            .position(|bound| micros <= *bound)
        {
            Some(bucket) => self.buckets[bucket].fetch_add(1, Ordering::Relaxed),
            None => self.overflow.fetch_add(1, Ordering::Relaxed),
        };
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The upper bound (µs) of the bucket holding the given quantile (0.0..=1.0).
    pub fn quantile_upper_bound_micros(&self, quantile: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let target = ((total as f64) * quantile).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (bucket, bound) in self.buckets.iter().zip(LATENCY_BUCKETS_MICROS) {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= target {
                return Some(bound);
            }
        }
        Some(u64::MAX)
    }

    pub fn render_into(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bucket, bound) in self.buckets.iter().zip(LATENCY_BUCKETS_MICROS) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{}\"}} {cumulative}",
                bound as f64 / 1_000_000.0
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
            self.count()
        );
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1_000_000.0
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count());
    }
}

/// Counters of one task (one sub-topology partition).
#[derive(Debug, Default)]
pub struct TaskMetrics {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub dead_letters: AtomicU64,
    pub commits: AtomicU64,
    pub restarts: AtomicU64,
    pub timers_fired: AtomicU64,
    /// Records behind the end of the task's input partitions, at the last poll.
    pub lag: AtomicU64,
    pub process_latency: LatencyHistogram,
    pub commit_latency: LatencyHistogram,
    /// Approximate keys per store, updated at commit.
    pub store_keys: Mutex<BTreeMap<String, u64>>,
}

/// Counters of one processor, summed over its tasks.
#[derive(Debug, Default)]
pub struct ProcessorMetrics {
    pub records: AtomicU64,
    pub errors: AtomicU64,
}

/// Every metric of an application.
#[derive(Debug, Default)]
pub struct MetricsRegistry {
    tasks: Mutex<BTreeMap<String, Arc<TaskMetrics>>>,
    processors: Mutex<BTreeMap<String, Arc<ProcessorMetrics>>>,
}

/// Totals over every task.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSummary {
    pub records_in: u64,
    pub records_out: u64,
    pub dead_letters: u64,
    pub commits: u64,
    pub restarts: u64,
    pub timers_fired: u64,
    pub lag: u64,
}

impl MetricsRegistry {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The metrics of a task id such as `0_3`, shared across restarts of that task.
    pub fn task(&self, task_id: &str) -> Arc<TaskMetrics> {
        self.tasks
            .lock()
            .expect("metrics lock poisoned")
            .entry(task_id.to_string())
            .or_default()
            .clone()
    }

    pub fn processor(&self, name: &str) -> Arc<ProcessorMetrics> {
        self.processors
            .lock()
            .expect("metrics lock poisoned")
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    pub fn summary(&self) -> MetricsSummary {
        let tasks = self.tasks.lock().expect("metrics lock poisoned");
        let mut summary = MetricsSummary::default();
        for task in tasks.values() {
            summary.records_in += task.records_in.load(Ordering::Relaxed);
            summary.records_out += task.records_out.load(Ordering::Relaxed);
            summary.dead_letters += task.dead_letters.load(Ordering::Relaxed);
            summary.commits += task.commits.load(Ordering::Relaxed);
            summary.restarts += task.restarts.load(Ordering::Relaxed);
            summary.timers_fired += task.timers_fired.load(Ordering::Relaxed);
            summary.lag += task.lag.load(Ordering::Relaxed);
        }
        summary
    }

    /// Prometheus text exposition of every metric, labelled by application.
    pub fn render_prometheus(&self, application_id: &str) -> String {
        let mut out = String::new();
        let tasks = self.tasks.lock().expect("metrics lock poisoned");
        let counters: [CounterField; 6] = [
            (
                "orderflow_task_records_in_total",
                "Records read by a task.",
                |task| &task.records_in,
            ),
            (
                "orderflow_task_records_out_total",
                "Records written by a task's sinks.",
                |task| &task.records_out,
            ),
            (
                "orderflow_task_dead_letters_total",
                "Records sent to a dead-letter topic.",
                |task| &task.dead_letters,
            ),
            (
                "orderflow_task_commits_total",
                "Commits of a task.",
                |task| &task.commits,
            ),
            (
                "orderflow_task_restarts_total",
                "Restarts of a task after a panic.",
                |task| &task.restarts,
            ),
            (
                "orderflow_task_timers_fired_total",
                "Timers fired by a task.",
                |task| &task.timers_fired,
            ),
        ];
        for (name, help, field) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (task_id, task) in tasks.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{application=\"{application_id}\",task=\"{task_id}\"}} {}",
                    field(task).load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP orderflow_task_lag_records Records behind the input's end.\n# TYPE orderflow_task_lag_records gauge"
        );
        for (task_id, task) in tasks.iter() {
            let _ = writeln!(
                out,
                "orderflow_task_lag_records{{application=\"{application_id}\",task=\"{task_id}\"}} {}",
                task.lag.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP orderflow_store_keys Approximate keys in a store partition.\n# TYPE orderflow_store_keys gauge"
        );
        for (task_id, task) in tasks.iter() {
            for (store, keys) in task
                .store_keys
                .lock()
                .expect("metrics lock poisoned")
                .iter()
            {
                let _ = writeln!(
                    out,
                    "orderflow_store_keys{{application=\"{application_id}\",task=\"{task_id}\",store=\"{store}\"}} {keys}"
                );
            }
        }
        for (name, help, field) in [
            (
                "orderflow_task_process_seconds",
                "Time to process one record through a task.",
                (|task: &TaskMetrics| &task.process_latency)
                    as fn(&TaskMetrics) -> &LatencyHistogram,
            ),
            (
                "orderflow_task_commit_seconds",
                "Time to commit a task.",
                |task: &TaskMetrics| &task.commit_latency,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (task_id, task) in tasks.iter() {
                field(task).render_into(
                    &mut out,
                    name,
                    &format!("application=\"{application_id}\",task=\"{task_id}\""),
                );
            }
        }
        drop(tasks);
        let processors = self.processors.lock().expect("metrics lock poisoned");
        let _ = writeln!(
            out,
            "# HELP orderflow_processor_records_total Records handled by a processor.\n# TYPE orderflow_processor_records_total counter"
        );
        for (processor, metrics) in processors.iter() {
            let _ = writeln!(
                out,
                "orderflow_processor_records_total{{application=\"{application_id}\",processor=\"{processor}\"}} {}",
                metrics.records.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP orderflow_processor_errors_total Records a processor failed.\n# TYPE orderflow_processor_errors_total counter"
        );
        for (processor, metrics) in processors.iter() {
            let _ = writeln!(
                out,
                "orderflow_processor_errors_total{{application=\"{application_id}\",processor=\"{processor}\"}} {}",
                metrics.errors.load(Ordering::Relaxed)
            );
        }
        out
    }
}
