//! A pass's vocabulary: what the driver does after a pass, how often a held
//! step is looked at, and the step gate of a provisioner without a canary
//! analyzer.

use crate::model::Rollout;
use paved_local::Traffic;
use paved_spec::RolloutPolicy;
use std::time::Duration;

/// What the driver does after a pass.
pub(super) enum Next {
    /// A transition was committed (or lost to another writer): look again.
    Again,
    /// Nothing to do until something changes, or until the instant.
    Wait(Option<tokio::time::Instant>),
    Done,
}

/// How often a step is looked at: a tenth of its interval, within bounds.
/// Each look is a point of the sequential test's dispersion estimate and
/// of the Kayenta judge's series.
pub(super) fn look_every(interval: Duration) -> Duration {
    (interval / 10).clamp(Duration::from_millis(200), Duration::from_secs(15))
}

/// The runtime's name for the rollout's baseline; empty for a first revision.
pub(super) fn baseline_instance(r: &Rollout) -> String {
    r.stable_revision.as_deref().map(crate::model::baseline_key).unwrap_or_default()
}

pub(super) fn step_message(index: usize, steps: &[u32], interval: Duration, before: &str) -> String {
    let weight = steps.get(index).copied().unwrap_or(100);
    format!("{before}; step {} of {}: {weight}% of traffic for {interval:?}", index + 1, steps.len())
}

/// The step gate of a provisioner without a canary analyzer: the canary's
/// share of 5xx answers and its p99 latency during the step must be within
/// the rollout's limits. Returns a summary of the evidence, or why the step
/// failed.
pub fn gate(traffic: &Traffic, policy: &RolloutPolicy) -> Result<String, String> {
    let total = traffic.total();
    if total == 0 {
        return Ok("no canary analyzer configured and no requests during the step: only health was checked".into());
    }
    let errors = traffic.errors();
    let percent = |ppm: f64| ppm / 10_000.0;
    let error_ppm = errors as f64 * 1_000_000.0 / total as f64;
    if error_ppm > f64::from(policy.max_error_ppm) {
        return Err(format!(
            "error rate {:.2}% ({errors} of {total} requests answered 5xx) is above the limit of {:.2}%",
            percent(error_ppm),
            percent(f64::from(policy.max_error_ppm))
        ));
    }
    let p99 = traffic.quantile(0.99).unwrap_or_default();
    if p99 > policy.max_p99_latency {
        return Err(format!("p99 latency {p99:.1?} over {total} requests is above the limit of {:?}", policy.max_p99_latency));
    }
    Ok(format!(
        "no canary analyzer configured; within the limits: {total} requests, error rate {:.2}%, p99 latency ≤ {p99:.1?}",
        percent(error_ppm)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(ok: u64, errors: u64, latency_ms: u64) -> Traffic {
        let mut t = Traffic::default();
        t.classes[1] = ok;
        t.classes[4] = errors;
        let bucket = paved_judge::histogram::bucket_of(latency_ms as f64 / 1000.0);
        t.latency[bucket] = ok + errors;
        t
    }

    #[test]
    fn gate_passes_a_healthy_canary_within_limits() {
        let policy = RolloutPolicy::default();
        let summary = gate(&traffic(1000, 5, 20), &policy).expect("passes");
        assert!(summary.contains("1005 requests") && summary.contains("error rate 0.50%"), "{summary}");
        let idle = gate(&Traffic::default(), &policy).expect("no traffic: health only");
        assert!(idle.contains("only health"), "{idle}");
    }

    #[test]
    fn gate_fails_on_errors_or_latency() {
        let policy = RolloutPolicy::default();
        let e = gate(&traffic(95, 5, 20), &policy).expect_err("5% errors");
        assert!(e.contains("error rate 5.00% (5 of 100 requests answered 5xx) is above the limit of 1.00%"), "{e}");
        let e = gate(&traffic(100, 0, 900), &policy).expect_err("slow");
        assert!(e.contains("p99 latency") && e.contains("above the limit of 500ms"), "{e}");
    }
}
