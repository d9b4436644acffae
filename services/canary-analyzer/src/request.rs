//! A look as it arrives: [`validate`] checks every field of a
//! `JudgeLookRequest` before anything reads it, and [`analysis_of`] reads
//! the spec a rollout's first look carries, so that the judgement
//! (pure, in [`crate::judgement`]) only ever sees counts that add up and
//! times that fit its arithmetic. Public for the fuzz targets.

use crate::judgement;
use paved_grpc::status;
use paved_proto::canary_analyzer::v1::JudgeLookRequest;
use paved_spec::{Analysis, Judge, Source};
use tonic::Status;

/// A spec's analysis, and how many times a rollout of it may decide on a
/// step (steps × (1 + extensions)).
pub fn analysis_of(spec_yaml: &str, spec_path: &str) -> Result<(Analysis, u32), Status> {
    let spec = paved_spec::parse(spec_yaml, spec_path)
        .map_err(|e| status::invalid_argument("INVALID_SPEC", e.to_string(), [e.violation("spec_yaml")]))?;
    let analysis = spec.analysis();
    let steps = u32::try_from(spec.rollout.steps.len()).unwrap_or(u32::MAX);
    let decisions = steps.saturating_mul(analysis.max_extensions.saturating_add(1));
    Ok((analysis, decisions))
}

/// The Prometheus metrics of `analysis` that `req` queries, with their
/// query: Kayenta judges a step's values once, at its end; only an SLO is
/// watched at every look.
pub fn queried<'a>(analysis: &'a Analysis, req: &JudgeLookRequest) -> impl Iterator<Item = (&'a String, &'a str)> {
    let over = req.interval_over;
    analysis.metrics.iter().filter_map(move |(name, metric)| match &metric.source {
        Source::Prometheus { query } if over || metric.judges.contains(&Judge::Slo) => Some((name, query.as_str())),
        _ => None,
    })
}

/// More requests than a look can hold: a million a second for a day.
const MAX_REQUESTS: u64 = 86_400_000_000;

pub fn validate(req: &JudgeLookRequest) -> Result<(), Status> {
    if req.rollout_id.is_empty() {
        return Err(missing_rollout_id());
    }
    // They name the decision's event and label its metrics.
    for (field, name) in [("environment", &req.environment), ("workload", &req.workload)] {
        paved_spec::validate_name(name).map_err(|e| invalid(field, e))?;
    }
    if req.look == 0 {
        return Err(invalid("look", "look is 1-based: the first look of a rollout is 1".into()));
    }
    if req.weight.saturating_add(req.baseline_weight) > 100 {
        return Err(invalid(
            "weight",
            format!("canary and baseline shares add up to more than 100%: {} and {}", req.weight, req.baseline_weight),
        ));
    }
    if req.canary.is_none() {
        return Err(invalid("canary", "the canary's request counts are required".into()));
    }
    for (field, counts) in [("canary", &req.canary), ("baseline", &req.baseline)] {
        if let Some(c) = counts {
            if c.requests > MAX_REQUESTS {
                return Err(invalid(&format!("{field}.requests"), format!("{} requests in one look; at most {MAX_REQUESTS}", c.requests)));
            }
            if c.errors > c.requests {
                return Err(invalid(&format!("{field}.errors"), format!("{} errors out of {} requests", c.errors, c.requests)));
            }
            if c.latency.len() > paved_judge::histogram::BUCKETS {
                return Err(invalid(&format!("{field}.latency"), format!("at most {} buckets", paved_judge::histogram::BUCKETS)));
            }
            let timed = c.latency.iter().try_fold(0u64, |sum, n| sum.checked_add(*n));
            if timed.is_none_or(|n| n > c.requests) {
                return Err(invalid(
                    &format!("{field}.latency"),
                    format!("the latency histogram counts more than the {} requests", c.requests),
                ));
            }
        }
    }
    // Seconds within ±3,000 years: milliseconds fit an i64 with room.
    for (field, t) in [("start_time", &req.start_time), ("end_time", &req.end_time), ("step_start_time", &req.step_start_time)] {
        if t.as_ref().is_some_and(|t| t.seconds.unsigned_abs() > 100_000_000_000) {
            return Err(invalid(field, "a time outside the years ±3000".into()));
        }
    }
    if judgement::millis(req.end_time.as_ref()) < judgement::millis(req.start_time.as_ref()) {
        return Err(invalid("end_time", "the look ends before it starts".into()));
    }
    Ok(())
}

/// A look that cannot be judged as sent (INVALID_LOOK), naming the field.
pub(crate) fn invalid(field: &str, message: String) -> Status {
    status::invalid_argument("INVALID_LOOK", message.clone(), [(field.to_string(), message)])
}

pub(crate) fn missing_rollout_id() -> Status {
    let message = "rollout_id is required".to_string();
    status::invalid_argument("MISSING_FIELD", message.clone(), [("rollout_id".to_string(), message)])
}
