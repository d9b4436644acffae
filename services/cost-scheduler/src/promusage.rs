//! Use read from Prometheus instead of the samples, for right-sizing: one
//! range query for each replica's cores and one for its resident memory,
//! each point of each series one sample. The defaults read what the
//! provisioner exports (`paved_instance_*`); on Kubernetes the operator
//! points them at cAdvisor's series instead (see `docs/cost.md`).
//!
//! A query names its workload through `$ENVIRONMENT` and `$WORKLOAD`, and
//! the rate window through `$RANGE`.

use crate::rightsize::Usage;
use paved_prometheus::{Prometheus, ProviderError};
use std::time::{Duration, SystemTime};

/// Cores each replica used, averaged over `$RANGE`.
pub const DEFAULT_CPU_QUERY: &str = "sum by (revision, replica) (rate(paved_instance_cpu_seconds_total{environment=\"$ENVIRONMENT\",workload=\"$WORKLOAD\",baseline=\"false\"}[$RANGE]))";
/// Each replica's resident memory.
pub const DEFAULT_MEMORY_QUERY: &str =
    "sum by (revision, replica) (paved_instance_memory_bytes{environment=\"$ENVIRONMENT\",workload=\"$WORKLOAD\",baseline=\"false\"})";

/// Prometheus keeps at most 11,000 points per series in an answer.
const MAX_POINTS: u32 = 10_000;

/// How a workload's use is read from Prometheus.
pub struct PromUsage {
    client: Prometheus,
    cpu_query: String,
    memory_query: String,
    /// The finest step asked for (the sample interval).
    resolution: Duration,
}

/// What was asked of Prometheus, for the evidence.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Asked {
    pub cpu_query: String,
    pub memory_query: String,
    pub step: Duration,
}

impl PromUsage {
    pub fn new(url: &str, cpu_query: Option<String>, memory_query: Option<String>, resolution: Duration) -> Self {
        Self {
            client: Prometheus::new(url, Duration::from_secs(10)),
            cpu_query: cpu_query.unwrap_or_else(|| DEFAULT_CPU_QUERY.to_string()),
            memory_query: memory_query.unwrap_or_else(|| DEFAULT_MEMORY_QUERY.to_string()),
            resolution,
        }
    }

    /// The workload's use from `start` to `end`, and what was asked.
    pub async fn usage(
        &self,
        environment: &str,
        workload: &str,
        start: SystemTime,
        end: SystemTime,
    ) -> (Asked, Result<Usage, ProviderError>) {
        let window = end.duration_since(start).unwrap_or_default();
        let step = step(window, self.resolution);
        let asked = Asked {
            cpu_query: substitute(&self.cpu_query, environment, workload, step),
            memory_query: substitute(&self.memory_query, environment, workload, step),
            step,
        };
        let values = async |query: &str| -> Result<Vec<f64>, ProviderError> {
            let series = self.client.query_range(query, start, end, step).await?;
            Ok(series.into_iter().flat_map(|s| s.values).map(|(_, v)| v).filter(|v| v.is_finite()).collect())
        };
        let usage = async {
            let cores = values(&asked.cpu_query).await?;
            let memory_bytes = values(&asked.memory_query).await?;
            let memory_peak_bytes = memory_bytes.iter().copied().fold(0.0, f64::max);
            Ok(Usage { cores, memory_bytes, memory_peak_bytes })
        }
        .await;
        (asked, usage)
    }
}

/// The step: the resolution, or coarser so the window fits Prometheus'
/// limit of points; whole seconds.
fn step(window: Duration, resolution: Duration) -> Duration {
    let fits = window.as_secs().div_ceil(u64::from(MAX_POINTS));
    Duration::from_secs(resolution.as_secs().max(fits).max(1))
}

/// The rate window: four steps, at least a minute — a rate needs two
/// scrapes inside it, and scrape intervals of 15 to 30 s are common.
fn range(step: Duration) -> String {
    format!("{}s", (step.as_secs() * 4).max(60))
}

fn substitute(query: &str, environment: &str, workload: &str, step: Duration) -> String {
    // Both are DNS labels (checked before): nothing to escape in PromQL.
    query.replace("$ENVIRONMENT", environment).replace("$WORKLOAD", workload).replace("$RANGE", &range(step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_fit_the_window_and_queries_name_the_workload() {
        let day = Duration::from_secs(86_400);
        assert_eq!(step(7 * day, Duration::from_secs(15)), Duration::from_secs(61), "7 days in 10,000 points");
        assert_eq!(step(Duration::from_secs(600), Duration::from_secs(15)), Duration::from_secs(15));
        assert_eq!(step(Duration::from_secs(60), Duration::ZERO), Duration::from_secs(1));
        let q = substitute(DEFAULT_CPU_QUERY, "dev", "cart", Duration::from_secs(61));
        assert_eq!(
            q,
            "sum by (revision, replica) (rate(paved_instance_cpu_seconds_total{environment=\"dev\",workload=\"cart\",baseline=\"false\"}[244s]))"
        );
        assert!(substitute(DEFAULT_MEMORY_QUERY, "dev", "cart", Duration::from_secs(1)).contains("workload=\"cart\""));
        assert_eq!(range(Duration::from_secs(1)), "60s");
    }
}
