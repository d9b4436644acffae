//! The log's metrics, for the audit dashboard
//! (`deploy/grafana/dashboards/paved-audit.json`): how large the tree is,
//! how far its checkpoints trail it, how long appends and reads take, and
//! how many entries concern each workload.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
};
use std::{sync::LazyLock, time::Duration};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadLabels {
    /// `checkpoint`, `tile`, `entries`, `inclusion`, `consistency`.
    operation: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadLabels {
    environment: String,
    workload: String,
}

struct Metrics {
    by_workload: Family<WorkloadLabels, Counter>,
    size: Gauge,
    checkpoint_size: Gauge,
    checkpoint_time: Gauge,
    append: Histogram,
    reads: Family<ReadLabels, Histogram, fn() -> Histogram>,
}

/// 0.5 ms to about 8 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.000_5, 2.0, 15))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        by_workload: Family::default(),
        size: Gauge::default(),
        checkpoint_size: Gauge::default(),
        checkpoint_time: Gauge::default(),
        append: latency(),
        reads: Family::new_with_constructor(latency),
    };
    paved_telemetry::register("audit_log_size", "Entries in the audit log's tree", m.size.clone());
    paved_telemetry::register("audit_log_checkpoint_size", "Entries the latest signed checkpoint covers", m.checkpoint_size.clone());
    paved_telemetry::register(
        "audit_log_checkpoint_timestamp_seconds",
        "When the latest checkpoint was signed (Unix seconds)",
        m.checkpoint_time.clone(),
    );
    paved_telemetry::register("audit_log_append_duration_seconds", "One batch appended to the audit log", m.append.clone());
    paved_telemetry::register("audit_log_read_duration_seconds", "Reads of the audit log, by operation", m.reads.clone());
    paved_telemetry::register("audit_log_workload_entries", "Entries appended that concern a workload", m.by_workload.clone());
    m
});

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A batch appended: the tree's new size, and how long it took.
pub fn appended(size: u64, took: Duration) {
    METRICS.size.set(gauge(size));
    METRICS.append.observe(took.as_secs_f64());
}

/// An entry appended that concerns `workload`
/// (`environments/<env>/workloads/<name>`, as `entry::workload` names it).
pub fn concerns(workload: &str) {
    let Some((environment, name)) = paved_stream::event::workload_of(workload) else { return };
    METRICS.by_workload.get_or_create(&WorkloadLabels { environment: environment.into(), workload: name.into() }).inc();
}

/// The latest checkpoint: it covers `size` entries and was signed at
/// `at_ms` (Unix ms).
pub fn signed(size: u64, at_ms: i64) {
    METRICS.checkpoint_size.set(gauge(size));
    METRICS.checkpoint_time.set(at_ms / 1000);
}

/// A read of `operation` that took `took`.
pub fn read(operation: &str, took: Duration) {
    METRICS.reads.get_or_create(&ReadLabels { operation: operation.to_string() }).observe(took.as_secs_f64());
}
