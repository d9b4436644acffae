//! Each replica's usage as Prometheus metrics, the way cAdvisor exposes a
//! container's, so that a Prometheus scraping the provisioner holds the
//! history the cost scheduler can right-size from (see `docs/cost.md`):
//!
//! - `paved_instance_cpu_seconds_total` — CPU seconds (user and system, the
//!   reaped children's included) since the replica's process started;
//! - `paved_instance_memory_bytes` — resident memory now;
//! - `paved_instance_memory_peak_bytes` — the most it has held;
//!
//! labelled `environment`, `workload`, `revision` (its id), `replica` (its
//! index; `instance` is Prometheus' own target label) and `baseline`
//! (`true` for a rollout's baseline replicas of the stable revision).
//!
//! `/proc` is read every few seconds, not at each scrape: naming a replica
//! needs the database, which a scrape must not wait on.

use crate::handle::{InstanceUsage, Provisioner};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};
use std::{
    collections::HashMap,
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio_util::sync::CancellationToken;

/// How often the replicas are read.
pub(crate) const EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    environment: String,
    workload: String,
    revision: String,
    replica: String,
    baseline: String,
}

/// The last read of each provisioner in this process (tests run several),
/// by a number of its own.
#[derive(Debug, Default)]
struct Snapshots(Mutex<HashMap<u64, Vec<InstanceUsage>>>);

impl Snapshots {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<InstanceUsage>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

static SNAPSHOTS: LazyLock<Arc<Snapshots>> = LazyLock::new(|| {
    let snapshots = Arc::new(Snapshots::default());
    paved_telemetry::register_collector(snapshots.clone());
    snapshots
});

static NEXT: AtomicU64 = AtomicU64::new(0);

/// What a gauge reads of a replica.
type Read = fn(&InstanceUsage) -> u64;

impl Collector for Snapshots {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshots = self.lock();
        let rows: Vec<(Labels, &InstanceUsage)> = snapshots.values().flatten().map(|u| (labels(u), u)).collect();
        if rows.is_empty() {
            return Ok(());
        }
        let cpu = ConstCounter::new(0.0f64);
        let mut family = encoder.encode_descriptor(
            "instance_cpu_seconds",
            "CPU seconds a workload replica used since its process started",
            None,
            cpu.metric_type(),
        )?;
        for (labels, u) in &rows {
            ConstCounter::new(u.usage.cpu_seconds).encode(family.encode_family(labels)?)?;
        }
        let gauges: [(&str, &str, Read); 2] = [
            ("instance_memory_bytes", "Resident memory of a workload replica", |u| u.usage.memory_bytes),
            ("instance_memory_peak_bytes", "The most resident memory a workload replica has held", |u| u.usage.memory_peak_bytes),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, ConstGauge::new(0i64).metric_type())?;
            for (labels, u) in &rows {
                ConstGauge::new(i64::try_from(value(u)).unwrap_or(i64::MAX)).encode(family.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}

fn labels(u: &InstanceUsage) -> Labels {
    Labels {
        environment: u.environment.clone(),
        workload: u.workload.clone(),
        revision: u.revision_id.clone(),
        replica: u.usage.instance.to_string(),
        baseline: u.baseline.to_string(),
    }
}

/// Reads the replicas every `every` until `shutdown`, then takes this
/// provisioner's series away.
pub(crate) async fn run(provisioner: Provisioner, every: Duration, shutdown: CancellationToken) {
    let snapshots = SNAPSHOTS.clone();
    let me = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut ticks = paved_service::Ticks::new(every, shutdown);
    while ticks.next().await {
        match provisioner.instance_usage().await {
            Ok(rows) => {
                snapshots.lock().insert(me, rows);
            }
            Err(e) => tracing::warn!(error = %e, "cannot name the replicas for their usage metrics; trying again"),
        }
    }
    snapshots.lock().remove(&me);
}
