//! A look's judgement: the workload's analysis applied to every look of the
//! rollout so far. A pure function of its inputs — the looks as the
//! provisioner sent them, the Prometheus values fetched for them — so a
//! stored rollout can be judged again with another analysis (replay).
//!
//! Per metric, the judges it names:
//! - **sequential** (error rate, latency): canary against baseline on bad
//!   events — 5xx answers; requests slower than the baseline's quantile as
//!   the looks *before* this one measured it (a threshold fixed before the
//!   look keeps the test valid). Over the whole rollout, so α is spent once.
//! - **slo**: the canary alone against the metric's limit — the burn-rate
//!   guard for proxy metrics, the mean for Prometheus values.
//! - **kayenta**: Mann-Whitney and Hodges-Lehmann on the step's values (per
//!   look for proxy metrics), scored with weights; only when the step's
//!   interval is over, as Kayenta judges once per interval.
//!
//! The verdict: fail on any failure; continue while the interval runs;
//! then pass only when every judge had enough to go on, otherwise
//! inconclusive with what was missing (the provisioner extends the step).

use paved_judge::{
    histogram, kayenta,
    sequential::{Counts, Sequential},
    slo,
    verdict::{StepEvidence, StepVerdict, Test, judge_step},
};
use paved_proto::canary_analyzer::v1::{Check, Decision, JudgeLookRequest, RequestCounts, Verdict};
use paved_spec::{Analysis, Direction, Judge, Metric, Slo, Source};
use std::{collections::BTreeMap, time::Duration};

/// A Prometheus metric's values during the step: the canary's and the
/// baseline's, or why there are none (Prometheus down, no series, only NaN).
pub type Fetched = BTreeMap<String, Result<(Vec<f64>, Vec<f64>), String>>;

/// Confidence of the quantile intervals and Kayenta's shift intervals.
const CONFIDENCE: f64 = 0.98;

/// Judges the last of `looks` (all of the rollout's, in order).
/// `decisions`: how many times a rollout with this analysis may decide
/// whether a step passes (steps × (1 + extensions)); the proof that the
/// canary keeps its SLO, a fixed-sample test, shares α among them.
pub fn judge(analysis: &Analysis, looks: &[JudgeLookRequest], fetched: &Fetched, decisions: u32) -> Decision {
    let Some(now) = looks.last() else { return Decision { reason: "no look to judge".into(), ..Decision::default() } };
    let step: Vec<&JudgeLookRequest> = looks.iter().filter(|l| l.step == now.step && l.step_start_time == now.step_start_time).collect();
    let (canary, baseline) = (sum(step.iter().map(|l| l.canary.as_ref())), sum(step.iter().map(|l| l.baseline.as_ref())));
    // No baseline by design: a first revision, or a step of all traffic. A
    // baseline that should be there but took no traffic is not this case.
    let compared = !now.baseline_revision_id.is_empty() && now.weight < 100;
    let alpha = f64::from(analysis.alpha_ppm) / 1e6;
    let mut j = Judgement { checks: Vec::new(), failures: Vec::new(), missing: Vec::new(), tests: Vec::new(), burns: Vec::new() };
    let mut kayenta_results: Vec<(kayenta::MetricResult, kayenta::MetricConfig, u32)> = Vec::new();
    for (name, metric) in &analysis.metrics {
        let max_change = f64::from(metric.max_change_ppm) / 1e6;
        match &metric.source {
            Source::ErrorRate | Source::Latency { .. } => {
                if canary.requests < u64::from(metric.min_samples) || (compared && baseline.requests < u64::from(metric.min_samples)) {
                    j.missing.push(format!("{name}: fewer than {} requests on a side in this step", metric.min_samples));
                }
                if metric.judges.contains(&Judge::Sequential) && compared {
                    let bad = BadEvents::of(&metric.source, looks, max_change);
                    let kept = slo_kept(metric, looks, alpha / f64::from(decisions.max(1)));
                    j.sequential(name, &bad, metric, max_change, kept);
                }
                if metric.judges.contains(&Judge::Slo) {
                    j.slo_guard(name, metric, looks);
                }
                j.describe(name, &metric.source, &canary, &baseline);
                if metric.judges.contains(&Judge::Kayenta) && now.interval_over {
                    let (c, b) = per_look(&metric.source, &step);
                    let config = kayenta_config(name, metric);
                    kayenta_results.push((kayenta::classify(&config, &c, &b), config, metric.weight));
                }
            }
            Source::Prometheus { .. } => {
                // Without a baseline (at 100%) only the canary's SLO applies.
                let kayenta = metric.judges.contains(&Judge::Kayenta) && compared && now.interval_over;
                let limit = match metric.slo {
                    Some(Slo::ValueMicros(limit)) if metric.judges.contains(&Judge::Slo) => Some(limit as f64 / 1e6),
                    _ => None,
                };
                if !kayenta && limit.is_none() {
                    continue;
                }
                match fetched.get(name) {
                    None => j.missing.push(format!("{name}: not fetched")),
                    Some(Err(why)) => {
                        j.missing.push(format!("{name}: {why}"));
                        let judge = if kayenta { "kayenta" } else { "slo" };
                        j.checks.push(Check {
                            metric: name.clone(),
                            judge: judge.into(),
                            outcome: "inconclusive".into(),
                            message: why.clone(),
                            ..Check::default()
                        });
                    }
                    Some(Ok((c, b))) => {
                        if let Some(limit) = limit {
                            j.value_slo(name, metric, c, limit);
                        }
                        if kayenta {
                            let config = kayenta_config(name, metric);
                            kayenta_results.push((kayenta::classify(&config, c, b), config, metric.weight));
                        }
                    }
                }
            }
        }
    }
    let kayenta_outcome = j.kayenta(&kayenta_results, analysis);
    j.record_tests(alpha, now.interval_over);
    let tests: Vec<Test<'_>> = j.tests.iter().map(|(kind, test, tolerated, _)| Test { kind, test, tolerated_ratio: *tolerated }).collect();
    let evidence = StepEvidence { tests: &tests, burn: j.burns.first().map(String::as_str), alpha, interval_over: now.interval_over };
    let step_verdict = judge_step(evidence);
    let mut detectable_ratio = 0.0;
    let (verdict, reason) = if let StepVerdict::Fail(why) = &step_verdict {
        (Verdict::Fail, why.clone())
    } else if let Some(why) = j.failures.first().or(kayenta_outcome.failure.as_ref()) {
        (Verdict::Fail, why.clone())
    } else if !now.interval_over {
        (
            Verdict::Continue,
            format!("step {} held: {} canary and {} baseline requests so far", now.step + 1, canary.requests, baseline.requests),
        )
    } else if canary.requests == 0 && baseline.requests == 0 && !fetched.values().any(Result::is_ok) {
        if analysis.require_traffic {
            (Verdict::Inconclusive, "no requests reached the canary or the baseline in this step; extend the step".into())
        } else {
            (
                Verdict::Pass,
                "idle: no requests in this step, so it was judged on health alone (analysis.require_traffic: true holds it)".into(),
            )
        }
    } else if !compared {
        (Verdict::Pass, format!("no baseline at {}% of traffic: judged on the SLO guards alone: {}", now.weight, j.summary(&["slo"])))
    } else if baseline.requests == 0 {
        (Verdict::Inconclusive, "the baseline received no requests in this step (is it running?); extend the step".into())
    } else if let StepVerdict::Inconclusive { reason, detectable_ratio: d } = step_verdict {
        detectable_ratio = d.filter(|r| r.is_finite()).unwrap_or(0.0);
        (Verdict::Inconclusive, reason)
    } else if let Some(why) = j.missing.first().or(kayenta_outcome.inconclusive.as_ref()) {
        (Verdict::Inconclusive, format!("{why}; extend the step"))
    } else {
        (Verdict::Pass, j.summary(&["sequential", "quantile", "kayenta"]))
    };
    Decision {
        rollout_id: now.rollout_id.clone(),
        look: now.look,
        step: now.step,
        weight: now.weight,
        start_time: now.start_time,
        end_time: now.end_time,
        interval_over: now.interval_over,
        verdict: verdict.into(),
        reason,
        canary_requests: canary.requests,
        baseline_requests: baseline.requests,
        checks: j.checks,
        detectable_ratio,
    }
}

struct Judgement {
    checks: Vec<Check>,
    /// Why the step fails (first first).
    failures: Vec<String>,
    /// What a pass lacks.
    missing: Vec<String>,
    /// (kind, test, tolerated ratio, index of its check)
    tests: Vec<(String, Sequential, f64, usize)>,
    burns: Vec<String>,
}

struct KayentaOutcome {
    failure: Option<String>,
    inconclusive: Option<String>,
}

impl Judgement {
    /// `kept`: how the canary was shown within its SLO, if it was; then a
    /// comparison too thin to show the tolerated ratio does not hold the
    /// step (what matters to users is shown not to have happened).
    fn sequential(&mut self, name: &str, bad: &BadEvents, metric: &Metric, max_change: f64, kept: Option<String>) {
        let t = bad.test.total();
        let (nc, nb) = (t.canary_requests as f64, t.baseline_requests as f64);
        let base_rate = (t.baseline_bad as f64 + 0.5) / nb.max(1.0);
        // What matters: the allowed change, or — where the baseline's rate
        // is tiny — reaching the SLO's rate (an error rate that doubles
        // from 0.01% to 0.02% harms no one).
        let slo_ratio = match metric.slo {
            Some(Slo::ErrorRatePpm(ppm)) if matches!(metric.source, Source::ErrorRate) => f64::from(ppm) / 1e6 / base_rate,
            _ => 0.0,
        };
        let mut tolerated = (1.0 + max_change).max(slo_ratio).max(bad.tolerated);
        let mut message = format!(
            "{}: {} of {} canary requests, {} of {} baseline requests",
            bad.kind, t.canary_bad, t.canary_requests, t.baseline_bad, t.baseline_requests
        );
        if let Some(kept) = kept {
            message = format!("{message}; {kept}");
            tolerated = f64::INFINITY;
        }
        let rate = |bad: u64, n: f64| if n > 0.0 { bad as f64 / n } else { 0.0 };
        let (rc, rb) = (rate(t.canary_bad, nc), rate(t.baseline_bad, nb));
        self.checks.push(Check {
            metric: name.into(),
            judge: "sequential".into(),
            outcome: "pending".into(),
            canary_value: rc,
            baseline_value: rb,
            effect: if rb > 0.0 { rc / rb } else { 0.0 },
            tolerated: if tolerated.is_finite() { tolerated } else { 0.0 },
            message,
            ..Check::default()
        });
        self.tests.push((format!("{name} ({})", bad.kind), bad.test.clone(), tolerated, self.checks.len() - 1));
    }

    /// Each sequential test's evidence into its check (α shared equally,
    /// as [`judge_step`] shares it).
    fn record_tests(&mut self, alpha: f64, interval_over: bool) {
        let alpha = alpha / self.tests.len().max(1) as f64;
        for (_, test, tolerated, at) in &self.tests {
            let e = test.evidence(alpha);
            let detectable = e.detectable_ratio.unwrap_or(f64::INFINITY);
            let check = &mut self.checks[*at];
            check.statistic = e.log_ratio.exp();
            check.threshold = e.log_threshold.exp();
            check.detectable = if detectable.is_finite() { detectable } else { 0.0 };
            if e.dispersion > 1.0 {
                check.message =
                    format!("{}; looks {:.1}× as dispersed as independent events, evidence divided so", check.message, e.dispersion);
            }
            check.outcome = if e.regressed {
                "fail"
            } else if !interval_over {
                "pending"
            } else if detectable <= *tolerated {
                "pass"
            } else {
                "inconclusive"
            }
            .into();
        }
    }

    /// The burn-rate guard on the canary's looks (bad: over the SLO).
    fn slo_guard(&mut self, name: &str, metric: &Metric, looks: &[JudgeLookRequest]) {
        let Some(SloEvents { budget, over }) = SloEvents::of(metric) else { return };
        let bad = |c: &RequestCounts| over.map_or(c.errors, |i| histogram::above(&c.latency, i));
        let first = looks.first().map_or(0, |l| millis(l.start_time.as_ref()));
        let samples: Vec<slo::Sample> = looks
            .iter()
            .filter_map(|l| {
                let c = l.canary.as_ref()?;
                let at = Duration::from_millis(u64::try_from(millis(l.end_time.as_ref()) - first).unwrap_or(0));
                Some(slo::Sample { at, requests: c.requests, bad: bad(c) })
            })
            .collect();
        let (requests, bad_total) = samples.iter().fold((0, 0), |(r, b), s| (r + s.requests, b + s.bad));
        let burn = if requests > 0 && budget > 0.0 { bad_total as f64 / requests as f64 / budget } else { 0.0 };
        let tripped = slo::burn_rate_guard(&samples, budget, &slo::CANARY_WINDOWS);
        self.checks.push(Check {
            metric: name.into(),
            judge: "slo".into(),
            outcome: if tripped.is_some() { "fail" } else { "pass" }.into(),
            statistic: burn,
            threshold: slo::CANARY_WINDOWS[0].max_burn,
            message: tripped.clone().unwrap_or_else(|| {
                format!(
                    "canary: {bad_total} of {requests} requests over the SLO ({:.2}% allowed), a burn rate of {burn:.1}×",
                    budget * 100.0
                )
            }),
            ..Check::default()
        });
        if let Some(why) = tripped {
            self.burns.push(format!("{name}: {why}"));
        }
    }

    /// A Prometheus metric's mean against its limit, on the canary alone.
    fn value_slo(&mut self, name: &str, metric: &Metric, canary: &[f64], limit: f64) {
        let values: Vec<f64> = canary.iter().copied().filter(|v| v.is_finite()).collect();
        if values.len() < metric.min_samples as usize {
            self.missing.push(format!("{name}: {} values of the canary, fewer than min_samples {}", values.len(), metric.min_samples));
            return;
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let over = match metric.direction {
            Direction::Increase => mean > limit,
            Direction::Decrease => mean < limit,
            Direction::Either => mean != limit,
        };
        let message = format!("canary mean {mean:.4} against the SLO {limit} ({:?} harms)", metric.direction).to_lowercase();
        self.checks.push(Check {
            metric: name.into(),
            judge: "slo".into(),
            outcome: if over { "fail" } else { "pass" }.into(),
            canary_value: mean,
            statistic: mean,
            threshold: limit,
            message: message.clone(),
            ..Check::default()
        });
        if over {
            self.failures.push(format!("{name}: {message}"));
        }
    }

    /// Values of the step for the record: the error rate, or the latency
    /// quantile with the canary's confidence interval.
    fn describe(&mut self, name: &str, source: &Source, canary: &RequestCounts, baseline: &RequestCounts) {
        let Source::Latency { quantile_ppm } = source else { return };
        let q = f64::from(*quantile_ppm) / 1e6;
        let value = |c: &RequestCounts| histogram::quantile(&c.latency, q).map_or(0.0, histogram::value);
        let (lower, upper) = histogram::quantile_interval(&canary.latency, q, CONFIDENCE)
            .map_or((0.0, 0.0), |(lo, hi)| (histogram::value(lo), histogram::value(hi)));
        let (c, b) = (value(canary), value(baseline));
        let interval = if upper > 0.0 {
            format!(", {:.0}% interval {:.2}–{:.2} ms", CONFIDENCE * 100.0, lower * 1e3, upper * 1e3)
        } else {
            format!(" (too few requests for a {:.0}% interval)", CONFIDENCE * 100.0)
        };
        self.checks.push(Check {
            metric: name.into(),
            judge: "quantile".into(),
            outcome: "info".into(),
            canary_value: c,
            baseline_value: b,
            lower,
            upper,
            effect: if b > 0.0 { c / b } else { 0.0 },
            message: format!("p{} this step: canary {:.2} ms{interval}; baseline {:.2} ms", q * 100.0, c * 1e3, b * 1e3),
            ..Check::default()
        });
    }

    fn kayenta(&mut self, results: &[(kayenta::MetricResult, kayenta::MetricConfig, u32)], analysis: &Analysis) -> KayentaOutcome {
        let mut outcome = KayentaOutcome { failure: None, inconclusive: None };
        if results.is_empty() {
            return outcome;
        }
        for (r, _, _) in results {
            self.checks.push(Check {
                metric: r.name.clone(),
                judge: "kayenta".into(),
                outcome: match (r.classification, r.failed) {
                    (kayenta::Classification::NoData, _) => "inconclusive",
                    (_, true) => "fail",
                    _ => "pass",
                }
                .into(),
                lower: r.interval.map_or(0.0, |i| i.0),
                upper: r.interval.map_or(0.0, |i| i.1),
                statistic: r.p_value.unwrap_or(0.0),
                threshold: 1.0 - CONFIDENCE,
                effect: r.ratio.unwrap_or(0.0),
                message: r.reason.clone(),
                ..Check::default()
            });
            if r.classification == kayenta::Classification::NoData {
                outcome.inconclusive.get_or_insert_with(|| format!("{}: {}", r.name, r.reason));
            }
        }
        // Too little data is a reason to extend the step, not to fail it
        // (Kayenta fails a critical metric without data; this judge waits).
        let judged: Vec<_> = results.iter().filter(|(r, _, _)| r.classification != kayenta::Classification::NoData).collect();
        if judged.is_empty() {
            return outcome;
        }
        let pairs: Vec<(kayenta::MetricResult, &kayenta::MetricConfig)> = judged.iter().map(|(r, c, _)| (r.clone(), c)).collect();
        // A group weighs what its metrics weigh together.
        let mut weights: Vec<(String, f64)> = Vec::new();
        for (_, c, w) in &judged {
            match weights.iter_mut().find(|(g, _)| *g == c.group) {
                Some((_, sum)) => *sum += f64::from(*w),
                None => weights.push((c.group.clone(), f64::from(*w))),
            }
        }
        let thresholds = kayenta::Thresholds { pass: f64::from(analysis.pass_score), marginal: f64::from(analysis.marginal_score) };
        let score = kayenta::score(&pairs, &weights, thresholds);
        let line = format!("Kayenta score {:.0} (pass ≥ {}, marginal ≥ {})", score.score, analysis.pass_score, analysis.marginal_score);
        match score.verdict {
            kayenta::Verdict::Fail => {
                outcome.failure = Some(score.critical_failure.map_or_else(|| line.clone(), |why| format!("critical metric {why}")));
            }
            kayenta::Verdict::Marginal => {
                outcome.inconclusive.get_or_insert(line);
            }
            kayenta::Verdict::Inconclusive => {
                outcome.inconclusive.get_or_insert_with(|| "no metric of the Kayenta judge had data".into());
            }
            kayenta::Verdict::Pass => {}
        }
        outcome
    }

    /// The evidence of the given judges' checks in a line.
    fn summary(&self, judges: &[&str]) -> String {
        let parts: Vec<String> = self
            .checks
            .iter()
            .filter(|c| judges.contains(&c.judge.as_str()))
            .map(|c| {
                if c.judge == "sequential" || c.judge == "quantile" {
                    c.message.clone()
                } else {
                    format!("{} ({}): {}", c.metric, c.judge, c.message)
                }
            })
            .collect();
        if parts.is_empty() { "none is configured".into() } else { parts.join("; ") }
    }
}

/// A proxy metric's bad events over the rollout, as a sequential test.
struct BadEvents {
    kind: String,
    test: Sequential,
    /// For latency: the ratio of tail rates that a slowdown by the allowed
    /// change would give the baseline's own distribution (1 otherwise).
    tolerated: f64,
}

impl BadEvents {
    /// Over all of `looks`: called only where canary and baseline compare.
    fn of(source: &Source, looks: &[JudgeLookRequest], max_change: f64) -> Self {
        let mut test = Sequential::default();
        let none = RequestCounts::default();
        fn sides<'a>(l: &'a JudgeLookRequest, none: &'a RequestCounts) -> (&'a RequestCounts, &'a RequestCounts) {
            (l.canary.as_ref().unwrap_or(none), l.baseline.as_ref().unwrap_or(none))
        }
        match source {
            Source::Latency { quantile_ppm } => {
                let q = f64::from(*quantile_ppm) / 1e6;
                let mut before: Vec<u64> = Vec::new();
                for l in looks {
                    let (c, b) = sides(l, &none);
                    // The threshold comes from earlier looks only.
                    if let Some(threshold) = histogram::quantile(&before, q) {
                        test.observe(Counts {
                            canary_requests: c.requests,
                            canary_bad: histogram::above(&c.latency, threshold),
                            baseline_requests: b.requests,
                            baseline_bad: histogram::above(&b.latency, threshold),
                        });
                    }
                    histogram::merge(&mut before, &b.latency);
                }
                let kind = format!("requests slower than the baseline's p{}", q * 100.0);
                Self { kind, test, tolerated: latency_tolerance(&before, q, max_change) }
            }
            _ => {
                for l in looks {
                    let (c, b) = sides(l, &none);
                    test.observe(Counts {
                        canary_requests: c.requests,
                        canary_bad: c.errors,
                        baseline_requests: b.requests,
                        baseline_bad: b.errors,
                    });
                }
                Self { kind: "5xx answers".into(), test, tolerated: 1.0 }
            }
        }
    }
}

/// For a latency metric the tolerated ratio of tail rates: the baseline
/// slowed down by the allowed change would have F(T / (1 + change)) of its
/// requests over the threshold T instead of F(T).
fn latency_tolerance(baseline: &[u64], q: f64, max_change: f64) -> f64 {
    let Some(threshold) = histogram::quantile(baseline, q) else { return 1.0 + max_change };
    let over = histogram::above(baseline, threshold);
    let shifted = histogram::bucket_of(histogram::value(threshold) / (1.0 + max_change));
    if over == 0 || shifted >= threshold {
        return 1.0 + max_change;
    }
    (histogram::above(baseline, shifted) as f64 / over as f64).max(1.0 + max_change)
}

/// A proxy metric's SLO as bad events: the share allowed, and for latency
/// the bucket past which a request is slower than the SLO (errors otherwise).
struct SloEvents {
    budget: f64,
    over: Option<usize>,
}

impl SloEvents {
    fn of(metric: &Metric) -> Option<Self> {
        match (&metric.slo, &metric.source) {
            (Some(Slo::ErrorRatePpm(ppm)), Source::ErrorRate) => Some(Self { budget: f64::from(*ppm) / 1e6, over: None }),
            (Some(Slo::LatencyMs(ms)), Source::Latency { quantile_ppm }) => {
                Some(Self { budget: 1.0 - f64::from(*quantile_ppm) / 1e6, over: Some(histogram::bucket_of(*ms as f64 / 1000.0)) })
            }
            _ => None,
        }
    }
}

/// How the canary was shown within its SLO at level α, if it was.
fn slo_kept(metric: &Metric, looks: &[JudgeLookRequest], alpha: f64) -> Option<String> {
    let SloEvents { budget, over } = SloEvents::of(metric)?;
    let canary = sum(looks.iter().map(|l| l.canary.as_ref()));
    let (requests, bad) = (canary.requests, over.map_or(canary.errors, |i| histogram::above(&canary.latency, i)));
    slo::within_budget(requests, bad, budget, alpha)
        .then(|| format!("the canary is within its SLO: {bad} of {requests} requests over it, {:.2}% allowed (α {alpha})", budget * 100.0))
}

fn kayenta_config(name: &str, metric: &Metric) -> kayenta::MetricConfig {
    let direction = match metric.direction {
        Direction::Increase => kayenta::Direction::Increase,
        Direction::Decrease => kayenta::Direction::Decrease,
        Direction::Either => kayenta::Direction::Either,
    };
    let nan = metric.nan_micros.map_or(paved_judge::NanStrategy::Remove, |v| paved_judge::NanStrategy::Replace(v as f64 / 1e6));
    kayenta::MetricConfig {
        critical: metric.critical,
        allowed_change: f64::from(metric.max_change_ppm) / 1e6,
        nan,
        ..kayenta::MetricConfig::new(name, metric.group.as_deref().unwrap_or(name), direction)
    }
}

/// A proxy metric per look of the step, for the Kayenta judge: the error
/// rate, or the latency quantile (looks without requests give none).
fn per_look(source: &Source, step: &[&JudgeLookRequest]) -> (Vec<f64>, Vec<f64>) {
    let value = |c: Option<&RequestCounts>| -> Option<f64> {
        let c = c?;
        match source {
            Source::Latency { quantile_ppm } => histogram::quantile(&c.latency, f64::from(*quantile_ppm) / 1e6).map(histogram::value),
            _ => (c.requests > 0).then(|| c.errors as f64 / c.requests as f64),
        }
    };
    (step.iter().filter_map(|l| value(l.canary.as_ref())).collect(), step.iter().filter_map(|l| value(l.baseline.as_ref())).collect())
}

fn sum<'a>(counts: impl Iterator<Item = Option<&'a RequestCounts>>) -> RequestCounts {
    let mut total = RequestCounts::default();
    for c in counts.flatten() {
        total.requests += c.requests;
        total.errors += c.errors;
        histogram::merge(&mut total.latency, &c.latency);
    }
    total
}

pub fn millis(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, paved_proto::millis_from_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use paved_proto::timestamp_from_millis;

    const SPEC: &str = "name: web\ncommand: [hello]\n";

    /// `n` requests of which `errors` failed, all at `ms` milliseconds.
    fn counts(n: u64, errors: u64, ms: f64) -> RequestCounts {
        let mut latency = vec![0; histogram::BUCKETS];
        latency[histogram::bucket_of(ms / 1000.0)] = n;
        RequestCounts { requests: n, errors, latency }
    }

    /// Looks of one second each at a step that began at 0.
    fn look(i: u32, canary: RequestCounts, baseline: RequestCounts, over: bool) -> JudgeLookRequest {
        JudgeLookRequest {
            rollout_id: "r".into(),
            baseline_revision_id: "stable".into(),
            look: u64::from(i),
            weight: 20,
            baseline_weight: 20,
            start_time: Some(timestamp_from_millis(i64::from(i - 1) * 1000)),
            end_time: Some(timestamp_from_millis(i64::from(i) * 1000)),
            step_start_time: Some(timestamp_from_millis(0)),
            interval_over: over,
            canary: Some(canary),
            baseline: Some(baseline),
            spec_yaml: SPEC.into(),
            ..JudgeLookRequest::default()
        }
    }

    fn analysis(extra: &str) -> Analysis {
        paved_spec::parse(&format!("{SPEC}{extra}"), "paved.yaml").expect("valid").analysis()
    }

    fn run(analysis: &Analysis, looks: &[JudgeLookRequest]) -> Decision {
        judge(analysis, looks, &Fetched::new(), 1)
    }

    #[test]
    fn an_identical_canary_passes_once_the_interval_is_over_and_the_traffic_suffices() {
        let a = analysis("");
        let looks: Vec<_> = (1..=5).map(|i| look(i, counts(400, 0, 2.0), counts(400, 0, 2.0), i == 5)).collect();
        let mid = run(&a, &looks[..3]);
        assert_eq!(mid.verdict(), Verdict::Continue, "{}", mid.reason);
        let end = run(&a, &looks);
        assert_eq!(end.verdict(), Verdict::Pass, "{}", end.reason);
        assert!(end.reason.contains("5xx answers: 0 of 2000 canary requests"), "{}", end.reason);
        assert!(end.checks.iter().any(|c| c.judge == "slo" && c.metric == "p99"), "{:?}", end.checks);
        // Too little traffic to show anything: inconclusive, never a pass.
        let thin: Vec<_> = (1..=2).map(|i| look(i, counts(20, 0, 2.0), counts(20, 0, 2.0), i == 2)).collect();
        let d = run(&a, &thin);
        assert_eq!(d.verdict(), Verdict::Inconclusive, "{}", d.reason);
        assert!(d.reason.contains("extend the step"), "{}", d.reason);
    }

    #[test]
    fn errors_and_slowness_fail_before_the_interval_ends() {
        let a = analysis("");
        // 5% errors against none: no single look fails a canary (a burst
        // could be all it shows); a few do.
        let bad: Vec<_> = (1..=6).map(|i| look(i, counts(400, 20, 2.0), counts(400, 0, 2.0), false)).collect();
        assert_eq!(run(&a, &bad[..1]).verdict(), Verdict::Continue);
        let first = (1..=6).find(|&n| run(&a, &bad[..n]).verdict() == Verdict::Fail).expect("fails within 6 looks");
        let d = run(&a, &bad[..first]);
        assert!(
            d.reason.starts_with(&format!("errors (5xx answers): {} of {} canary requests against 0 of", 20 * first, 400 * first)),
            "{}",
            d.reason
        );
        // +30% latency: every canary request slower than the baseline's p99
        // as the earlier looks measured it (none before the first look).
        let slow: Vec<_> = (1..=8).map(|i| look(i, counts(400, 0, 13.0), counts(400, 0, 10.0), false)).collect();
        assert_eq!(run(&a, &slow[..1]).verdict(), Verdict::Continue, "no threshold before the first look");
        let first = (2..=8).find(|&n| run(&a, &slow[..n]).verdict() == Verdict::Fail).expect("fails within 8 looks");
        let d = run(&a, &slow[..first]);
        assert!(d.reason.starts_with("p99 (requests slower than the baseline's p99)"), "{}", d.reason);
    }

    #[test]
    fn idle_steps_missing_baselines_and_missing_prometheus_data_say_so() {
        let idle = [look(1, counts(0, 0, 1.0), counts(0, 0, 1.0), true)];
        let d = run(&analysis(""), &idle);
        assert_eq!(d.verdict(), Verdict::Pass, "{}", d.reason);
        assert!(d.reason.starts_with("idle: no requests"), "{}", d.reason);
        let strict = run(&analysis("analysis:\n  require_traffic: true\n"), &idle);
        assert_eq!(strict.verdict(), Verdict::Inconclusive, "{}", strict.reason);

        let no_baseline = [look(1, counts(500, 0, 1.0), counts(0, 0, 1.0), true)];
        let d = run(&analysis(""), &no_baseline);
        assert_eq!(d.verdict(), Verdict::Inconclusive, "{}", d.reason);
        // A baseline that is not ready (no share of traffic) below 100%: no pass.
        let mut unready = no_baseline[0].clone();
        unready.baseline_weight = 0;
        assert_eq!(run(&analysis(""), &[unready]).verdict(), Verdict::Inconclusive);
        // At 100% there is no baseline by design: the SLO guards alone.
        let mut full = no_baseline[0].clone();
        (full.weight, full.baseline_weight) = (100, 0);
        let d = run(&analysis(""), &[full]);
        assert_eq!(d.verdict(), Verdict::Pass, "{}", d.reason);
        assert!(d.reason.starts_with("no baseline at 100% of traffic"), "{}", d.reason);

        let prom = analysis("analysis:\n  metrics:\n    queue:\n      kind: prometheus\n      query: q\n");
        let looks = [look(1, counts(500, 0, 1.0), counts(500, 0, 1.0), true)];
        let down = Fetched::from([("queue".to_string(), Err("Prometheus at http://127.0.0.1:1 is unreachable: refused".to_string()))]);
        let d = judge(&prom, &looks, &down, 1);
        assert_eq!(d.verdict(), Verdict::Inconclusive, "{}", d.reason);
        assert!(d.reason.starts_with("queue: Prometheus at http://127.0.0.1:1 is unreachable"), "{}", d.reason);
        // Values that differ: the Kayenta judge fails the step.
        let up =
            Fetched::from([("queue".to_string(), Ok(((0..30).map(|v| 100.0 + f64::from(v)).collect(), (0..30).map(f64::from).collect())))]);
        let d = judge(&prom, &looks, &up, 1);
        assert_eq!(d.verdict(), Verdict::Fail, "{}", d.reason);
        let same = Fetched::from([("queue".to_string(), Ok(((0..30).map(f64::from).collect(), (0..30).map(f64::from).collect())))]);
        assert_eq!(judge(&prom, &looks, &same, 1).verdict(), Verdict::Pass);
    }

    #[test]
    fn kayenta_groups_weigh_their_metrics_together() {
        let metric = |group: &str, weight: u32| format!("kind: prometheus\n      query: q\n      group: {group}\n      weight: {weight}\n");
        let spec = format!(
            "analysis:\n  metrics:\n    a:\n      {}    b:\n      {}    c:\n      {}",
            metric("g", 1),
            metric("g", 1),
            metric("h", 2)
        );
        let a = analysis(&spec);
        let looks = [look(1, counts(500, 0, 1.0), counts(500, 0, 1.0), true)];
        let flat: Vec<f64> = (0..30).map(f64::from).collect();
        let high: Vec<f64> = (0..30).map(|v| 100.0 + f64::from(v)).collect();
        // One of g's two metrics fails: g scores 50% at weight 2, h 100% at
        // weight 2: 75, marginal (pass 95, marginal 75): not a pass.
        let fetched = Fetched::from([
            ("a".to_string(), Ok((high, flat.clone()))),
            ("b".to_string(), Ok((flat.clone(), flat.clone()))),
            ("c".to_string(), Ok((flat.clone(), flat))),
        ]);
        let d = judge(&a, &looks, &fetched, 1);
        assert_eq!(d.verdict(), Verdict::Inconclusive, "{}", d.reason);
        assert!(d.reason.starts_with("Kayenta score 75 "), "{}", d.reason);
    }
}
