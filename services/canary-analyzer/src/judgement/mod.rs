//! A look's judgement: the workload's analysis applied to every look of the
//! rollout so far. A pure function of its inputs — the looks as the
//! provisioner sent them, the Prometheus values fetched for them — so a
//! stored rollout can be judged again with another analysis (replay).
//!
//! What a look needs of the earlier ones is kept in a [`Rollout`] as running
//! totals (each metric's sequential test and its dispersion, the canary's
//! totals, the current step's totals, each burn-rate window's sums), so
//! judging a look costs the same at look 10 as at look 5,000 (`cargo xtask
//! bench looks` measures both). Only the Kayenta judge, once a step's
//! interval is over, reads that step's looks one by one.
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

mod checks;

use checks::{BadEvents, Judgement, Over, SloEvents, kayenta_config, per_look};
use paved_judge::{
    histogram, kayenta, slo,
    verdict::{StepEvidence, StepVerdict, Test, judge_step},
};
use paved_proto::canary_analyzer::v1::{Check, Decision, JudgeLookRequest, RequestCounts, Verdict};
use paved_spec::{Analysis, Judge, Slo, Source};
use std::{collections::BTreeMap, time::Duration};

/// A Prometheus metric's values during the step: the canary's and the
/// baseline's, or why there are none (Prometheus down, no series, only NaN).
pub type Fetched = BTreeMap<String, Result<(Vec<f64>, Vec<f64>), String>>;

/// Judges the last of `looks` (all of the rollout's, in order): the earlier
/// ones observed, then the last judged with `fetched`. See [`Rollout::new`]
/// for `decisions`.
pub fn judge(analysis: &Analysis, looks: &[JudgeLookRequest], fetched: &Fetched, decisions: u32) -> Decision {
    let Some((now, earlier)) = looks.split_last() else { return Decision { reason: "no look to judge".into(), ..Decision::default() } };
    let mut rollout = Rollout::new(analysis.clone(), decisions);
    for look in earlier {
        rollout.observe(look);
    }
    rollout.judge(now, fetched)
}

/// One rollout's judgement so far.
pub struct Rollout {
    analysis: Analysis,
    /// How many times a rollout with this analysis may decide whether a
    /// step passes (steps × (1 + extensions)); the proof that the canary
    /// keeps its SLO, a fixed-sample test, shares α among them.
    decisions: u32,
    /// The last look observed: its number and end (ms).
    last: Option<(u64, i64)>,
    /// When the first look began (ms): the burn-rate guard's clock.
    first_start: Option<i64>,
    /// The canary's requests over all looks.
    canary_total: RequestCounts,
    /// Per proxy metric judged sequentially, its bad events over all looks.
    bad: BTreeMap<String, BadEvents>,
    /// Per proxy metric with an SLO, the canary's (requests, bad) over all
    /// looks and its burn-rate guard.
    slo_totals: BTreeMap<String, SloTotals>,
    /// The current step (index, start ms), its totals (canary, baseline)
    /// and its looks: a step's looks are consecutive.
    step: Option<(u32, i64)>,
    step_totals: (RequestCounts, RequestCounts),
    step_looks: Vec<(Option<RequestCounts>, Option<RequestCounts>)>,
}

/// A proxy metric's SLO over the rollout: which requests are bad for it,
/// the canary's (requests, bad), and the guard on how fast it burns.
struct SloTotals {
    over: Over,
    totals: (u64, u64),
    burn: slo::BurnRate,
}

impl Rollout {
    pub fn new(analysis: Analysis, decisions: u32) -> Self {
        let mut bad = BTreeMap::new();
        let mut slo_totals = BTreeMap::new();
        for (name, metric) in &analysis.metrics {
            if metric.judges.contains(&Judge::Sequential)
                && let Some(events) = BadEvents::new(&metric.source, f64::from(metric.max_change_ppm) / 1e6)
            {
                bad.insert(name.clone(), events);
            }
            if let Some(SloEvents { budget, over }) = SloEvents::of(metric) {
                let burn = slo::BurnRate::new(budget, &slo::CANARY_WINDOWS);
                slo_totals.insert(name.clone(), SloTotals { over, totals: (0, 0), burn });
            }
        }
        Self {
            analysis,
            decisions,
            last: None,
            first_start: None,
            canary_total: RequestCounts::default(),
            bad,
            slo_totals,
            step: None,
            step_totals: Default::default(),
            step_looks: Vec::new(),
        }
    }

    pub fn analysis(&self) -> &Analysis {
        &self.analysis
    }

    /// The number and end (ms) of the last look observed.
    pub fn last(&self) -> Option<(u64, i64)> {
        self.last
    }

    /// Adds a look judged before (or to be judged now) to the totals.
    pub fn observe(&mut self, look: &JudgeLookRequest) {
        let none = RequestCounts::default();
        let (canary, baseline) = (look.canary.as_ref().unwrap_or(&none), look.baseline.as_ref().unwrap_or(&none));
        let end = millis(look.end_time.as_ref());
        self.last = Some((look.look, end));
        let first = *self.first_start.get_or_insert_with(|| millis(look.start_time.as_ref()));
        if let Some(c) = &look.canary {
            add(&mut self.canary_total, c);
            // The guard's clock: when the look ended, since the first began.
            let at = Duration::from_millis(u64::try_from(end - first).unwrap_or(0));
            for s in self.slo_totals.values_mut() {
                let bad = s.over.bad(c);
                s.totals = (s.totals.0 + c.requests, s.totals.1 + bad);
                s.burn.push(slo::Sample { at, requests: c.requests, bad });
            }
        }
        for events in self.bad.values_mut() {
            events.observe(canary, baseline);
        }
        let step = (look.step, millis(look.step_start_time.as_ref()));
        if self.step != Some(step) {
            self.step = Some(step);
            self.step_totals = Default::default();
            self.step_looks.clear();
        }
        add(&mut self.step_totals.0, canary);
        add(&mut self.step_totals.1, baseline);
        self.step_looks.push((look.canary.clone(), look.baseline.clone()));
    }

    /// Observes `now` and judges it, with the Prometheus values `fetched`
    /// for it.
    pub fn judge(&mut self, now: &JudgeLookRequest, fetched: &Fetched) -> Decision {
        self.observe(now);
        let analysis = &self.analysis;
        let (canary, baseline) = &self.step_totals;
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
                    if compared && let Some(bad) = self.bad.get(name) {
                        let kept = self.slo_kept(metric, alpha / f64::from(self.decisions.max(1)));
                        j.sequential(name, bad, metric, max_change, kept);
                    }
                    if metric.judges.contains(&Judge::Slo)
                        && let Some(s) = self.slo_totals.get(name)
                    {
                        j.slo_guard(name, metric, &s.burn, s.totals);
                    }
                    j.describe(name, &metric.source, canary, baseline);
                    if metric.judges.contains(&Judge::Kayenta) && now.interval_over {
                        let (c, b) = per_look(&metric.source, &self.step_looks);
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
        let tests: Vec<Test<'_>> =
            j.tests.iter().map(|(kind, test, tolerated, _)| Test { kind, test, tolerated_ratio: *tolerated }).collect();
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

    /// How the canary was shown within its SLO at level α over all looks,
    /// if it was.
    fn slo_kept(&self, metric: &paved_spec::Metric, alpha: f64) -> Option<String> {
        let SloEvents { budget, over } = SloEvents::of(metric)?;
        let (requests, bad) = (self.canary_total.requests, over.bad(&self.canary_total));
        slo::within_budget(requests, bad, budget, alpha).then(|| {
            format!("the canary is within its SLO: {bad} of {requests} requests over it, {:.2}% allowed (α {alpha})", budget * 100.0)
        })
    }
}

fn add(total: &mut RequestCounts, c: &RequestCounts) {
    total.requests += c.requests;
    total.errors += c.errors;
    histogram::merge(&mut total.latency, &c.latency);
}

pub fn millis(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, paved_proto::millis_from_timestamp)
}

#[cfg(test)]
mod tests;
