//! Cost by team, environment or workload over a window, from what the
//! database holds (read by `report`). Pure: the same inputs always give
//! the same report, which the tests below and `cargo xtask bench cost` use.
//!
//! - **Replica-hours**: the time each revision was healthy (from the
//!   runtime's events) times its replicas.
//! - **By request**: replica-hours × the resources the spec requested.
//! - **By use**: the CPU time and memory the replicas' processes used
//!   (samples), at the same prices.
//! - **Savings**: the hours a workload slept × its replicas × the
//!   resources it requests (or, when it requests none, those it used on
//!   average while awake): what it would have cost awake.

use crate::prices::{GIB, PriceSheet};
use std::collections::{BTreeMap, HashMap};

const HOUR_MS: f64 = 3_600_000.0;

/// What a revision asked for and who pays, from its spec.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Revision {
    pub environment: String,
    pub workload: String,
    /// Empty when its spec names none.
    pub team: String,
    pub replicas: u32,
    /// Requested cores and bytes; 0 when not requested.
    pub cpu_request: f64,
    pub memory_request: f64,
}

/// A revision's samples within the window, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Used {
    pub samples: u64,
    pub interval_ms: f64,
    pub cpu_ms: f64,
    /// Σ memory × interval.
    pub memory_byte_ms: f64,
}

/// What the window holds, per revision id.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub revisions: HashMap<String, Revision>,
    /// Healthy time within the window.
    pub running_ms: HashMap<String, f64>,
    pub used: HashMap<String, Used>,
    /// Asleep time within the window, by the revision that slept.
    pub slept_ms: HashMap<String, f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Team,
    Environment,
    Workload,
}

/// One group's figures. The names above the grouping are empty (a line
/// by team has no workload).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Line {
    pub team: String,
    pub environment: String,
    pub workload: String,
    pub replica_hours: f64,
    pub requested_cost: f64,
    pub used_cost: f64,
    pub cpu_core_hours: f64,
    pub memory_gib_hours: f64,
    pub slept_hours: f64,
    pub savings: f64,
    pub samples: u64,
}

impl Line {
    fn add(&mut self, other: &Line) {
        self.replica_hours += other.replica_hours;
        self.requested_cost += other.requested_cost;
        self.used_cost += other.used_cost;
        self.cpu_core_hours += other.cpu_core_hours;
        self.memory_gib_hours += other.memory_gib_hours;
        self.slept_hours += other.slept_hours;
        self.savings += other.savings;
        self.samples += other.samples;
    }
}

/// The report's lines (most costly first) and their total.
pub fn attribute(inputs: &Inputs, sheet: &PriceSheet, by: GroupBy) -> (Vec<Line>, Line) {
    let unknown = Revision::default();
    let mut groups: BTreeMap<(String, String, String), Line> = BTreeMap::new();
    let ids = inputs.running_ms.keys().chain(inputs.used.keys()).chain(inputs.slept_ms.keys());
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            continue;
        }
        let r = inputs.revisions.get(id).unwrap_or(&unknown);
        let line = revision_line(r, inputs, id, sheet);
        let key = match by {
            GroupBy::Team => (r.team.clone(), String::new(), String::new()),
            GroupBy::Environment => (String::new(), r.environment.clone(), String::new()),
            GroupBy::Workload => (r.team.clone(), r.environment.clone(), r.workload.clone()),
        };
        let group =
            groups.entry(key.clone()).or_insert_with(|| Line { team: key.0, environment: key.1, workload: key.2, ..Line::default() });
        group.add(&line);
    }
    let mut total = Line::default();
    let mut lines: Vec<Line> = groups.into_values().collect();
    for line in &lines {
        total.add(line);
    }
    lines.sort_by(|a, b| b.requested_cost.max(b.used_cost).total_cmp(&a.requested_cost.max(a.used_cost)));
    (lines, total)
}

fn revision_line(r: &Revision, inputs: &Inputs, id: &str, sheet: &PriceSheet) -> Line {
    let prices = sheet.prices(&r.environment);
    let replicas = f64::from(r.replicas.max(1));
    let replica_hours = inputs.running_ms.get(id).copied().unwrap_or(0.0) / HOUR_MS * replicas;
    let used = inputs.used.get(id).copied().unwrap_or_default();
    let cpu_core_hours = used.cpu_ms / HOUR_MS;
    let memory_gib_hours = used.memory_byte_ms / GIB / HOUR_MS;
    let slept_hours = inputs.slept_ms.get(id).copied().unwrap_or(0.0) / HOUR_MS;
    // Asleep, it would have run its requests; with none, what it used.
    let (cores, bytes) = if r.cpu_request > 0.0 || r.memory_request > 0.0 || used.interval_ms <= 0.0 {
        (r.cpu_request, r.memory_request)
    } else {
        (used.cpu_ms / used.interval_ms, used.memory_byte_ms / used.interval_ms)
    };
    Line {
        replica_hours,
        requested_cost: prices.cost(r.cpu_request, r.memory_request, replica_hours),
        used_cost: cpu_core_hours * prices.cpu_core_hour + memory_gib_hours * prices.memory_gib_hour,
        cpu_core_hours,
        memory_gib_hours,
        slept_hours,
        savings: prices.cost(cores, bytes, slept_hours * replicas),
        samples: used.samples,
        ..Line::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(team: &str, environment: &str, workload: &str, cpu: f64, memory: f64) -> Revision {
        Revision {
            environment: environment.into(),
            workload: workload.into(),
            team: team.into(),
            replicas: 2,
            cpu_request: cpu,
            memory_request: memory,
        }
    }

    fn inputs() -> Inputs {
        let mut i = Inputs::default();
        i.revisions.insert("a1".into(), revision("shop", "dev", "cart", 0.5, GIB));
        i.revisions.insert("a2".into(), revision("shop", "prod", "cart", 1.0, 2.0 * GIB));
        i.revisions.insert("b1".into(), revision("search", "dev", "index", 0.0, 0.0));
        // Ten hours each; a1 also slept five.
        for id in ["a1", "a2", "b1"] {
            i.running_ms.insert(id.into(), 10.0 * HOUR_MS);
        }
        i.slept_ms.insert("a1".into(), 5.0 * HOUR_MS);
        // b1 used a quarter core and half a GiB on average, over 10 hours.
        i.used.insert(
            "b1".into(),
            Used { samples: 2400, interval_ms: 10.0 * HOUR_MS, cpu_ms: 2.5 * HOUR_MS, memory_byte_ms: 0.5 * GIB * 10.0 * HOUR_MS },
        );
        i.slept_ms.insert("b1".into(), 2.0 * HOUR_MS);
        i
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn by_request_by_use_and_savings() {
        let sheet = PriceSheet::default();
        let (lines, total) = attribute(&inputs(), &sheet, GroupBy::Workload);
        let (cpu, mem) = (sheet.cpu_core_hour, sheet.memory_gib_hour);
        let line = |env: &str, w: &str| lines.iter().find(|l| l.environment == env && l.workload == w).expect("line").clone();
        let dev_cart = line("dev", "cart");
        assert_eq!(dev_cart.team, "shop");
        assert!(close(dev_cart.replica_hours, 20.0), "{dev_cart:?}");
        assert!(close(dev_cart.requested_cost, 20.0 * (0.5 * cpu + mem)), "{dev_cart:?}");
        assert!(close(dev_cart.savings, 5.0 * 2.0 * (0.5 * cpu + mem)), "{dev_cart:?}");
        assert_eq!((dev_cart.used_cost, dev_cart.samples), (0.0, 0), "no samples, nothing used");
        // No requests: nothing by request; by use, what it used; its sleep
        // saved what it used on average.
        let index = line("dev", "index");
        assert_eq!(index.requested_cost, 0.0);
        assert!(close(index.cpu_core_hours, 2.5) && close(index.memory_gib_hours, 5.0), "{index:?}");
        assert!(close(index.used_cost, 2.5 * cpu + 5.0 * mem), "{index:?}");
        assert!(close(index.savings, 2.0 * 2.0 * (0.25 * cpu + 0.5 * mem)), "{index:?}");
        // Most costly first; the total is the sum.
        assert_eq!(lines[0].environment, "prod");
        assert!(close(total.requested_cost, lines.iter().map(|l| l.requested_cost).sum()));
        assert_eq!(total.samples, 2400);
    }

    #[test]
    fn groups_by_team_and_environment() {
        let sheet = PriceSheet::default();
        let (by_team, total) = attribute(&inputs(), &sheet, GroupBy::Team);
        assert_eq!(by_team.iter().map(|l| l.team.as_str()).collect::<Vec<_>>(), ["shop", "search"]);
        assert!(by_team.iter().all(|l| l.environment.is_empty() && l.workload.is_empty()));
        let shop = &by_team[0];
        assert!(close(shop.replica_hours, 40.0), "{shop:?}");
        let (by_env, env_total) = attribute(&inputs(), &sheet, GroupBy::Environment);
        assert_eq!(by_env.len(), 2);
        assert!(close(total.requested_cost, env_total.requested_cost) && close(total.savings, env_total.savings));
        // Prices per environment apply to that environment's revisions.
        let dear = PriceSheet::parse("environments:\n  prod: {cpu_core_hour: 1.0}\n").expect("sheet");
        let (dear_lines, _) = attribute(&inputs(), &dear, GroupBy::Environment);
        let prod = dear_lines.iter().find(|l| l.environment == "prod").expect("prod");
        assert!(close(prod.requested_cost, 20.0 * (1.0 + 2.0 * DEFAULT_MEM)), "{prod:?}");
    }

    const DEFAULT_MEM: f64 = crate::prices::DEFAULT_MEMORY_GIB_HOUR;

    #[test]
    fn a_revision_the_provisioner_never_described_is_still_counted() {
        let mut i = Inputs::default();
        i.running_ms.insert("gone".into(), HOUR_MS);
        let (lines, total) = attribute(&i, &PriceSheet::default(), GroupBy::Team);
        assert_eq!(lines.len(), 1);
        assert!(close(total.replica_hours, 1.0), "counted at one replica: {total:?}");
    }
}
