//! Forecasts: what a spec costs a month by request, and what each team
//! runs in each environment — for `paved plan`, the policy gate's budget
//! rule and the budgets' thresholds.
//!
//! A month is 730 hours (OpenCost's). A spec's month costs its replicas ×
//! its requested CPU and memory × the environment's prices × the hours its
//! schedule keeps it awake over the next 30 days (idleness cannot be
//! foreseen: a workload that sleeps for want of requests costs less).

use crate::prices::PriceSheet;
use chrono::{DateTime, Utc};
use paved_spec::{Schedule, WorkloadSpec};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const MONTH_HOURS: f64 = 730.0;

/// How far ahead the awake share is read, and how finely.
const AHEAD_DAYS: i64 = 30;
const STEP_MINUTES: i64 = 15;

/// The share of the next 30 days a schedule keeps a workload awake (1
/// without one).
pub fn awake_share(schedule: Option<&Schedule>, from: DateTime<Utc>) -> f64 {
    let Some(schedule) = schedule else { return 1.0 };
    let steps = AHEAD_DAYS * 24 * 60 / STEP_MINUTES;
    let awake = (0..steps).filter(|i| schedule.awake_at(from + chrono::Duration::minutes(i * STEP_MINUTES))).count();
    awake as f64 / steps as f64
}

/// A spec's month in `environment`, by request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Monthly {
    pub cost: f64,
    pub awake_share: f64,
}

/// A spec's month in `environment` by `schedule` (its own, or the
/// environment's default: see `paved_spec::ScheduleDefaults::of`).
pub fn monthly(spec: &WorkloadSpec, schedule: Option<&Schedule>, environment: &str, sheet: &PriceSheet, from: DateTime<Utc>) -> Monthly {
    at_share(spec, environment, sheet, awake_share(schedule, from))
}

/// [`monthly`] with the awake share known: a spec whose schedule is the
/// running one's is priced at the share the running one was, so the same
/// spec forecast twice costs the same.
pub fn at_share(spec: &WorkloadSpec, environment: &str, sheet: &PriceSheet, awake_share: f64) -> Monthly {
    let requests = &spec.resources.requests;
    let hours = MONTH_HOURS * awake_share * f64::from(spec.replicas);
    let cost = sheet.prices(environment).cost(requests.cpu_cores().unwrap_or(0.0), requests.memory_bytes().unwrap_or(0.0), hours);
    Monthly { cost, awake_share }
}

/// What runs of one workload: its team, its month, and the schedule that
/// month was priced with (and its awake share); its stable revision and
/// what that requests.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entry {
    pub team: String,
    pub monthly: f64,
    pub schedule: Option<Schedule>,
    pub awake_share: f64,
    pub revision_id: String,
    /// Per replica; 0 when not requested.
    pub cpu_request: f64,
    pub memory_request: f64,
    pub replicas: u32,
}

/// (environment, workload) → what runs.
type Workloads = HashMap<(String, String), Entry>;

/// What runs now: each workload's team and month at its stable revision,
/// kept by the schedule loop (which reads every workload each pass).
/// Unknown until its first pass: budgets are not judged on nothing.
#[derive(Debug, Clone, Default)]
pub struct Running(Arc<Mutex<Option<Workloads>>>);

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Workloads>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces what runs with `workloads`.
    pub fn set(&self, workloads: Workloads) {
        *self.lock() = Some(workloads);
    }

    /// Whether the schedule loop has read the running workloads yet.
    pub fn known(&self) -> bool {
        self.lock().is_some()
    }

    /// What runs of `workload` in `environment`, if it runs.
    pub fn of(&self, environment: &str, workload: &str) -> Option<Entry> {
        self.lock().as_ref()?.get(&(environment.to_string(), workload.to_string())).cloned()
    }

    /// Each team's month in each environment: (team, environment) → cost;
    /// None before the first pass.
    pub fn by_team(&self) -> Option<HashMap<(String, String), f64>> {
        let mut teams = HashMap::new();
        for ((environment, _), e) in self.lock().as_ref()?.iter() {
            *teams.entry((e.team.clone(), environment.clone())).or_insert(0.0) += e.monthly;
        }
        Some(teams)
    }

    /// The team's month in `environment` with `workload` at `cost` instead
    /// of what it runs now.
    pub fn team_with(&self, team: &str, environment: &str, workload: &str, cost: f64) -> f64 {
        let guard = self.lock();
        let others: f64 = guard
            .iter()
            .flatten()
            .filter(|((e, w), entry)| e == environment && entry.team == team && w != workload)
            .map(|(_, entry)| entry.monthly)
            .sum();
        others + cost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> WorkloadSpec {
        let yaml = format!("name: w\ncommand: [hello]\nreplicas: 2\nresources:\n  requests: {{cpu: 500m, memory: 1Gi}}\n{extra}");
        paved_spec::parse(&yaml, "paved.yaml").expect("spec")
    }

    #[test]
    fn a_month_by_request_and_schedule() {
        let sheet = PriceSheet::default();
        let now = Utc::now();
        let always = monthly(&spec(""), None, "dev", &sheet, now);
        assert_eq!(always.awake_share, 1.0);
        let expected = 2.0 * 730.0 * (0.5 * sheet.cpu_core_hour + sheet.memory_gib_hour);
        assert!((always.cost - expected).abs() < 1e-9, "{always:?}");
        // Awake 12 hours every day: half the month.
        let half = spec("schedule:\n  uptime: \"Mon-Sun 08:00-20:00 UTC\"\n");
        let half = monthly(&half, half.schedule.as_ref(), "dev", &sheet, now);
        assert!((half.awake_share - 0.5).abs() < 0.01, "{half:?}");
        assert!((half.cost - expected * half.awake_share).abs() < 1e-9);
        // Nothing requested: nothing by request.
        let none = paved_spec::parse("name: w\ncommand: [hello]\n", "paved.yaml").expect("spec");
        assert_eq!(monthly(&none, None, "dev", &sheet, now).cost, 0.0);
    }

    #[test]
    fn a_team_month_counts_what_runs_with_the_change() {
        let running = Running::default();
        assert!(running.by_team().is_none(), "unknown before the first pass");
        let entry = |team: &str, monthly: f64| Entry { team: team.into(), monthly, awake_share: 1.0, ..Entry::default() };
        let workloads = [
            (("dev".to_string(), "cart".to_string()), entry("shop", 10.0)),
            (("dev".to_string(), "pay".to_string()), entry("shop", 5.0)),
            (("prod".to_string(), "cart".to_string()), entry("shop", 100.0)),
            (("dev".to_string(), "index".to_string()), entry("search", 7.0)),
        ];
        assert!(!running.known());
        running.set(workloads.into_iter().collect());
        assert!(running.known());
        assert_eq!(running.by_team().expect("known")[&("shop".to_string(), "dev".to_string())], 15.0);
        assert_eq!(running.of("dev", "cart"), Some(entry("shop", 10.0)));
        // cart at 20 instead of 10; a new workload adds to what runs.
        assert_eq!(running.team_with("shop", "dev", "cart", 20.0), 25.0);
        assert_eq!(running.team_with("shop", "dev", "new", 1.0), 16.0);
    }
}
