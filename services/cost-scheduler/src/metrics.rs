//! Cost as Prometheus metrics, for the cost dashboard
//! (`deploy/grafana/dashboards/paved-cost.json`): the month to date per
//! workload, as `paved cost report --by workload --since` the month's
//! start would print it — recomputed from the database, so the figures
//! survive a restart and agree with the report.

use crate::{attribute::GroupBy, prices::PriceSheet, report};
use chrono::{Datelike, TimeZone, Utc};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge},
};
use sea_orm::DatabaseConnection;
use std::sync::{LazyLock, atomic::AtomicU64};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    team: String,
    environment: String,
    workload: String,
}

type Figures = Family<Labels, Gauge<f64, AtomicU64>>;

struct Metrics {
    requested: Figures,
    used: Figures,
    savings: Figures,
    replica_hours: Figures,
    slept_hours: Figures,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        requested: Figures::default(),
        used: Figures::default(),
        savings: Figures::default(),
        replica_hours: Figures::default(),
        slept_hours: Figures::default(),
    };
    let month = "this month to date, in the price sheet's currency";
    paved_telemetry::register("cost_requested", &format!("Cost by requested resources, {month}"), m.requested.clone());
    paved_telemetry::register("cost_used", &format!("Cost by used resources (sampled), {month}"), m.used.clone());
    paved_telemetry::register("cost_savings", &format!("What sleeping saved (hours asleep at its requests), {month}"), m.savings.clone());
    paved_telemetry::register("cost_replica_hours", "Replica-hours healthy, this month to date", m.replica_hours.clone());
    paved_telemetry::register("cost_slept_hours", "Hours asleep, this month to date", m.slept_hours.clone());
    m
});

/// The start of the current month (UTC), in Unix ms.
pub fn month_start_ms(now: chrono::DateTime<Utc>) -> i64 {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single().map_or(0, |t| t.timestamp_millis())
}

/// Recomputes the figures every `every`.
pub async fn run(db: DatabaseConnection, sheet: PriceSheet, every: Duration, shutdown: CancellationToken) {
    let mut ticks = paved_service::Ticks::new(every, shutdown);
    while ticks.next().await {
        let now = Utc::now();
        match report::report(&db, &sheet, GroupBy::Workload, month_start_ms(now), now.timestamp_millis()).await {
            Ok(r) => publish(&r),
            Err(e) => tracing::warn!(error = %e, "cannot compute the cost metrics; trying again"),
        }
    }
}

fn publish(report: &report::Report) {
    let m = &*METRICS;
    for family in [&m.requested, &m.used, &m.savings, &m.replica_hours, &m.slept_hours] {
        family.clear();
    }
    for line in &report.lines {
        let labels = Labels { team: line.team.clone(), environment: line.environment.clone(), workload: line.workload.clone() };
        m.requested.get_or_create(&labels).set(line.requested_cost);
        m.used.get_or_create(&labels).set(line.used_cost);
        m.savings.get_or_create(&labels).set(line.savings);
        m.replica_hours.get_or_create(&labels).set(line.replica_hours);
        m.slept_hours.get_or_create(&labels).set(line.slept_hours);
    }
}
