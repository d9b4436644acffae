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
use std::collections::HashSet;
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

impl Metrics {
    /// Takes a workload's series away.
    fn remove(&self, labels: &Labels) {
        for family in [&self.requested, &self.used, &self.savings, &self.replica_hours, &self.slept_hours] {
            family.remove(labels);
        }
    }
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
    let mut mine = Published::default();
    let mut ticks = paved_service::Ticks::new(every, shutdown);
    while ticks.next().await {
        let now = Utc::now();
        match report::report(&db, &sheet, GroupBy::Workload, month_start_ms(now), now.timestamp_millis()).await {
            Ok(r) => publish(&r, &mut mine.workloads),
            Err(e) => tracing::warn!(error = %e, "cannot compute the cost metrics; trying again"),
        }
        if let Err(e) = budgets::check(&db, &running, &sheet.currency, &relay).await {
            tracing::warn!(error = %e, "cannot check the budgets; trying again");
        }
        match budgets::list(&db).await {
            Ok(all) => publish_teams(&running, &all, &mut mine.teams),
            Err(e) => tracing::warn!(error = %e, "cannot read the budgets; trying again"),
        }
    }
    let m = &*METRICS;
    for labels in &mine.workloads {
        m.remove(labels);
    }
    for labels in &mine.teams {
        for family in [&m.forecast, &m.budget, &m.budget_ratio] {
            family.remove(labels);
        }
    }
}

/// The series one loop set, so that it replaces only its own: a series is
/// never missing from a scrape between a clear and the new figures, and
/// schedulers sharing a process (the tests run several platforms) do not
/// take each other's away.
#[derive(Default)]
struct Published {
    workloads: HashSet<Labels>,
    teams: HashSet<TeamLabels>,
}

fn publish_teams(running: &Running, budgets: &[budgets::Budget], mine: &mut HashSet<TeamLabels>) {
    let Some(teams) = running.by_team() else { return };
    let m = &*METRICS;
    let mut now = HashSet::new();
    for ((team, environment), cost) in &teams {
        let labels = TeamLabels { team: team.clone(), environment: environment.clone() };
        m.forecast.get_or_create(&labels).set(*cost);
        now.insert(labels);
    }
    let mut budgeted = HashSet::new();
    for b in budgets {
        let labels = TeamLabels { team: b.team.clone(), environment: b.environment.clone() };
        let forecast = teams.get(&(b.team.clone(), b.environment.clone())).copied().unwrap_or(0.0);
        m.budget.get_or_create(&labels).set(b.monthly);
        m.budget_ratio.get_or_create(&labels).set(forecast / b.monthly);
        budgeted.insert(labels);
    }
    for gone in mine.difference(&now) {
        m.forecast.remove(gone);
    }
    for gone in mine.difference(&budgeted) {
        m.budget.remove(gone);
        m.budget_ratio.remove(gone);
    }
    *mine = now.union(&budgeted).cloned().collect();
}

fn publish(report: &report::Report, mine: &mut HashSet<Labels>) {
    let m = &*METRICS;
    let mut now = HashSet::new();
    for line in &report.lines {
        let labels = Labels { team: line.team.clone(), environment: line.environment.clone(), workload: line.workload.clone() };
        m.requested.get_or_create(&labels).set(line.requested_cost);
        m.used.get_or_create(&labels).set(line.used_cost);
        m.savings.get_or_create(&labels).set(line.savings);
        m.replica_hours.get_or_create(&labels).set(line.replica_hours);
        m.slept_hours.get_or_create(&labels).set(line.slept_hours);
        now.insert(labels);
    }
    for gone in mine.difference(&now) {
        m.remove(gone);
    }
    *mine = now;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::Line;

    fn report(workloads: &[&str]) -> report::Report {
        let line = |w: &&str| Line {
            team: "t".into(),
            environment: "metrics-test".into(),
            workload: w.to_string(),
            requested_cost: 1.5,
            ..Default::default()
        };
        report::Report { lines: workloads.iter().map(line).collect(), total: Line::default() }
    }

    fn exported(workload: &str) -> bool {
        let series = format!(r#"paved_cost_requested{{team="t",environment="metrics-test",workload="{workload}"}} 1.5"#);
        paved_telemetry::encode_metrics().contains(&series)
    }

    /// Two loops in one process: each replaces only its own series, so a
    /// scrape never misses the other's (nor one of its own, as a clear
    /// before the new figures let it).
    #[test]
    fn a_loop_replaces_only_its_own_series() {
        let (mut a, mut b) = (HashSet::new(), HashSet::new());
        publish(&report(&["a1", "a2"]), &mut a);
        publish(&report(&["b1"]), &mut b);
        assert!(exported("a1") && exported("a2") && exported("b1"));
        publish(&report(&["a2"]), &mut a);
        assert!(!exported("a1") && exported("a2") && exported("b1"), "a1 is gone, b1 is not a's to take");
        publish(&report(&[]), &mut b);
        assert!(exported("a2") && !exported("b1"));
    }
}
