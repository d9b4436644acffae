//! Cost as Prometheus metrics, for the cost dashboard
//! (`deploy/grafana/dashboards/paved-cost.json`): the month to date per
//! workload, as `paved cost report --by workload --since` the month's
//! start would print it — recomputed from the database, so the figures
//! survive a restart and agree with the report; and each team's forecast
//! month per environment beside its budget. The same loop checks the
//! budgets' thresholds (`budgets::check`).

use crate::{attribute::GroupBy, budgets, forecast::Running, prices::PriceSheet, report};
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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TeamLabels {
    team: String,
    environment: String,
}

type TeamFigures = Family<TeamLabels, Gauge<f64, AtomicU64>>;

struct Metrics {
    requested: Figures,
    used: Figures,
    savings: Figures,
    replica_hours: Figures,
    slept_hours: Figures,
    forecast: TeamFigures,
    budget: TeamFigures,
    budget_ratio: TeamFigures,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let m = Metrics {
        requested: Figures::default(),
        used: Figures::default(),
        savings: Figures::default(),
        replica_hours: Figures::default(),
        slept_hours: Figures::default(),
        forecast: TeamFigures::default(),
        budget: TeamFigures::default(),
        budget_ratio: TeamFigures::default(),
    };
    let month = "this month to date, in the price sheet's currency";
    paved_telemetry::register("cost_requested", &format!("Cost by requested resources, {month}"), m.requested.clone());
    paved_telemetry::register("cost_used", &format!("Cost by used resources (sampled), {month}"), m.used.clone());
    paved_telemetry::register("cost_savings", &format!("What sleeping saved (hours asleep at its requests), {month}"), m.savings.clone());
    paved_telemetry::register("cost_replica_hours", "Replica-hours healthy, this month to date", m.replica_hours.clone());
    paved_telemetry::register("cost_slept_hours", "Hours asleep, this month to date", m.slept_hours.clone());
    paved_telemetry::register("cost_forecast_monthly", "A team's month by request at what it runs now", m.forecast.clone());
    paved_telemetry::register("cost_budget_monthly", "A team's monthly budget", m.budget.clone());
    paved_telemetry::register("cost_budget_ratio", "A team's forecast month over its budget (1 is the budget)", m.budget_ratio.clone());
    m
});

/// The start of the current month (UTC), in Unix ms.
pub fn month_start_ms(now: chrono::DateTime<Utc>) -> i64 {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single().map_or(0, |t| t.timestamp_millis())
}

/// What the loop reads and announces with.
pub struct Watch {
    pub db: DatabaseConnection,
    pub sheet: PriceSheet,
    pub running: Running,
    pub relay: paved_stream::outbox::Relay,
}

/// Recomputes the figures and checks the budgets every `every`.
pub async fn run(watch: Watch, every: Duration, shutdown: CancellationToken) {
    let Watch { db, sheet, running, relay } = watch;
    let mut ticks = paved_service::Ticks::new(every, shutdown);
    while ticks.next().await {
        let now = Utc::now();
        match report::report(&db, &sheet, GroupBy::Workload, month_start_ms(now), now.timestamp_millis()).await {
            Ok(r) => publish(&r),
            Err(e) => tracing::warn!(error = %e, "cannot compute the cost metrics; trying again"),
        }
        if let Err(e) = budgets::check(&db, &running, &sheet.currency, &relay).await {
            tracing::warn!(error = %e, "cannot check the budgets; trying again");
        }
        match budgets::list(&db).await {
            Ok(all) => publish_teams(&running, &all),
            Err(e) => tracing::warn!(error = %e, "cannot read the budgets; trying again"),
        }
    }
}

fn publish_teams(running: &Running, budgets: &[budgets::Budget]) {
    let Some(teams) = running.by_team() else { return };
    let m = &*METRICS;
    for family in [&m.forecast, &m.budget, &m.budget_ratio] {
        family.clear();
    }
    for ((team, environment), cost) in &teams {
        m.forecast.get_or_create(&TeamLabels { team: team.clone(), environment: environment.clone() }).set(*cost);
    }
    for b in budgets {
        let labels = TeamLabels { team: b.team.clone(), environment: b.environment.clone() };
        let forecast = teams.get(&(b.team.clone(), b.environment.clone())).copied().unwrap_or(0.0);
        m.budget.get_or_create(&labels).set(b.monthly);
        m.budget_ratio.get_or_create(&labels).set(forecast / b.monthly);
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
