//! What the consumers do, as Prometheus metrics per stream and consumer
//! group — for the alert rules in `deploy/prometheus/rules/`:
//!
//! - `paved_stream_handled_total` — events handled;
//! - `paved_stream_workload_events_total` — of those, the ones about a
//!   workload (subject `environments/<env>/workloads/<name>`), labelled
//!   with its `environment` and `workload`;
//! - `paved_stream_handler_failures_total` — handler attempts that failed
//!   (each is retried; a run of them is a consumer stuck);
//! - `paved_stream_dead_letters_total` — events moved to `<stream>.dead`;
//! - `paved_stream_consumer_lag_seconds` — how long after it was published
//!   the last handled event was handled; 0 once the group has caught up
//!   (a read found nothing new).

use paved_proto::events::v1::Envelope;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
};
use std::sync::{LazyLock, atomic::AtomicU64};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    stream: String,
    group: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadLabels {
    stream: String,
    group: String,
    environment: String,
    workload: String,
}

struct Metrics {
    handled: Family<Labels, Counter>,
    by_workload: Family<WorkloadLabels, Counter>,
    failures: Family<Labels, Counter>,
    dead_letters: Family<Labels, Counter>,
    lag: Family<Labels, Gauge<f64, AtomicU64>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        handled: Family::default(),
        by_workload: Family::default(),
        failures: Family::default(),
        dead_letters: Family::default(),
        lag: Family::default(),
    };
    paved_telemetry::register("stream_handled", "Events handled by a consumer group", m.handled.clone());
    paved_telemetry::register("stream_workload_events", "Events about a workload handled by a consumer group", m.by_workload.clone());
    paved_telemetry::register("stream_handler_failures", "Handler attempts that failed (each is retried)", m.failures.clone());
    paved_telemetry::register("stream_dead_letters", "Events moved to the dead-letter stream", m.dead_letters.clone());
    paved_telemetry::register("stream_consumer_lag_seconds", "Publish to handling of the last handled event", m.lag.clone());
    m
});

fn labels(stream: &str, group: &str) -> Labels {
    Labels { stream: stream.to_string(), group: group.to_string() }
}

/// Makes the group's series exist from its start (at 0), so that an alert
/// on their increase sees the first one.
pub(crate) fn started(stream: &str, group: &str) {
    let l = labels(stream, group);
    for family in [&METRICS.handled, &METRICS.failures, &METRICS.dead_letters] {
        family.get_or_create(&l).inc_by(0);
    }
}

/// `events` handled, the last one the latest.
pub(crate) fn handled<'a>(stream: &str, group: &str, events: impl IntoIterator<Item = &'a Envelope>) {
    let l = labels(stream, group);
    let mut last = None;
    let mut n = 0;
    for e in events {
        n += 1;
        last = e.time.as_ref();
        if let Some((environment, workload)) = crate::event::workload_of(&e.subject) {
            let labels = WorkloadLabels {
                stream: l.stream.clone(),
                group: l.group.clone(),
                environment: environment.into(),
                workload: workload.into(),
            };
            METRICS.by_workload.get_or_create(&labels).inc();
        }
    }
    METRICS.handled.get_or_create(&l).inc_by(n);
    if let Some(t) = last {
        let published_ms = paved_proto::millis_from_timestamp(t);
        let lag = (chrono::Utc::now().timestamp_millis() - published_ms).max(0) as f64 / 1000.0;
        METRICS.lag.get_or_create(&l).set(lag);
    }
}

/// A read found nothing new: the group is not behind.
pub(crate) fn caught_up(stream: &str, group: &str) {
    METRICS.lag.get_or_create(&labels(stream, group)).set(0.0);
}

pub(crate) fn failed(stream: &str, group: &str) {
    METRICS.failures.get_or_create(&labels(stream, group)).inc();
}

pub(crate) fn dead_lettered(stream: &str, group: &str) {
    METRICS.dead_letters.get_or_create(&labels(stream, group)).inc();
}
