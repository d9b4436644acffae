//! The checks of one look's judgement: each judge's evidence as a `Check`
//! for the record, and what fails or holds the step. Built by
//! [`super::Rollout::judge`] from the rollout's running totals, with the
//! running evidence they read ([`BadEvents`]). Nothing here imports the
//! parent module: `judgement` drives, `checks` only computes.

use paved_judge::{
    histogram, kayenta,
    sequential::{Counts, Sequential},
    slo,
};
use paved_proto::canary_analyzer::v1::{Check, RequestCounts};
use paved_spec::{Analysis, Direction, Metric, Slo, Source};

/// Confidence of the quantile intervals and Kayenta's shift intervals.
const CONFIDENCE: f64 = 0.98;

/// A proxy metric's bad events over the rollout, as a sequential test.
pub(super) struct BadEvents {
    kind: String,
    test: Sequential,
    /// For latency: the quantile, and the baseline's latencies of the looks
    /// so far (a look's threshold comes from the looks before it).
    latency: Option<(f64, Vec<u64>)>,
    max_change: f64,
}

impl BadEvents {
    /// For a proxy metric (error rate, latency); None for another.
    pub(super) fn new(source: &Source, max_change: f64) -> Option<Self> {
        let (kind, latency) = match source {
            Source::Latency { quantile_ppm } => {
                let q = f64::from(*quantile_ppm) / 1e6;
                (format!("requests slower than the baseline's p{}", q * 100.0), Some((q, Vec::new())))
            }
            Source::ErrorRate => ("5xx answers".to_string(), None),
            Source::Prometheus { .. } => return None,
        };
        Some(Self { kind, test: Sequential::default(), latency, max_change })
    }

    pub(super) fn observe(&mut self, c: &RequestCounts, b: &RequestCounts) {
        match &mut self.latency {
            Some((q, before)) => {
                // The threshold comes from earlier looks only.
                if let Some(threshold) = histogram::quantile(before, *q) {
                    self.test.observe(Counts {
                        canary_requests: c.requests,
                        canary_bad: histogram::above(&c.latency, threshold),
                        baseline_requests: b.requests,
                        baseline_bad: histogram::above(&b.latency, threshold),
                    });
                }
                histogram::merge(before, &b.latency);
            }
            None => self.test.observe(Counts {
                canary_requests: c.requests,
                canary_bad: c.errors,
                baseline_requests: b.requests,
                baseline_bad: b.errors,
            }),
        }
    }

    /// For latency, the ratio of tail rates that a slowdown by the allowed
    /// change would give the baseline's own distribution; 1 otherwise.
    pub(super) fn tolerated(&self) -> f64 {
        self.latency.as_ref().map_or(1.0, |(q, before)| latency_tolerance(before, *q, self.max_change))
    }
}

pub(super) struct Judgement {
    pub(super) checks: Vec<Check>,
    /// Why the step fails (first first).
    pub(super) failures: Vec<String>,
    /// What a pass lacks.
    pub(super) missing: Vec<String>,
    /// (kind, test, tolerated ratio, index of its check)
    pub(super) tests: Vec<(String, Sequential, f64, usize)>,
    pub(super) burns: Vec<String>,
}

pub(super) struct KayentaOutcome {
    pub(super) failure: Option<String>,
    pub(super) inconclusive: Option<String>,
}

impl Judgement {
    /// `kept`: how the canary was shown within its SLO, if it was; then a
    /// comparison too thin to show the tolerated ratio does not hold the
    /// step (what matters to users is shown not to have happened).
    pub(super) fn sequential(&mut self, name: &str, bad: &BadEvents, metric: &Metric, max_change: f64, kept: Option<String>) {
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
        let mut tolerated = (1.0 + max_change).max(slo_ratio).max(bad.tolerated());
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
    pub(super) fn record_tests(&mut self, alpha: f64, interval_over: bool) {
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

    /// The burn-rate guard on the canary's looks (bad: over the SLO), and
    /// `totals`, the canary's (requests, bad) over all looks.
    pub(super) fn slo_guard(&mut self, name: &str, metric: &Metric, guard: &slo::BurnRate, totals: (u64, u64)) {
        let Some(SloEvents { budget, .. }) = SloEvents::of(metric) else { return };
        let (requests, bad_total) = totals;
        let burn = if requests > 0 && budget > 0.0 { bad_total as f64 / requests as f64 / budget } else { 0.0 };
        let tripped = guard.tripped();
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
    pub(super) fn value_slo(&mut self, name: &str, metric: &Metric, canary: &[f64], limit: f64) {
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
    pub(super) fn describe(&mut self, name: &str, source: &Source, canary: &RequestCounts, baseline: &RequestCounts) {
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

    pub(super) fn kayenta(
        &mut self,
        results: &[(kayenta::MetricResult, kayenta::MetricConfig, u32)],
        analysis: &Analysis,
    ) -> KayentaOutcome {
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
    pub(super) fn summary(&self, judges: &[&str]) -> String {
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

/// For a latency metric the tolerated ratio of tail rates: the baseline
/// slowed down by the allowed change would have F(T / (1 + change)) of its
/// requests over the threshold T instead of F(T).
pub(super) fn latency_tolerance(baseline: &[u64], q: f64, max_change: f64) -> f64 {
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
pub(super) struct SloEvents {
    pub(super) budget: f64,
    pub(super) over: Over,
}

impl SloEvents {
    pub(super) fn of(metric: &Metric) -> Option<Self> {
        match (&metric.slo, &metric.source) {
            (Some(Slo::ErrorRatePpm(ppm)), Source::ErrorRate) => Some(Self { budget: f64::from(*ppm) / 1e6, over: Over(None) }),
            (Some(Slo::LatencyMs(ms)), Source::Latency { quantile_ppm }) => {
                Some(Self { budget: 1.0 - f64::from(*quantile_ppm) / 1e6, over: Over(Some(histogram::bucket_of(*ms as f64 / 1000.0))) })
            }
            _ => None,
        }
    }
}

pub(super) fn kayenta_config(name: &str, metric: &Metric) -> kayenta::MetricConfig {
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
pub(super) fn per_look(source: &Source, step: &[(Option<RequestCounts>, Option<RequestCounts>)]) -> (Vec<f64>, Vec<f64>) {
    let value = |c: Option<&RequestCounts>| -> Option<f64> {
        let c = c?;
        match source {
            Source::Latency { quantile_ppm } => histogram::quantile(&c.latency, f64::from(*quantile_ppm) / 1e6).map(histogram::value),
            _ => (c.requests > 0).then(|| c.errors as f64 / c.requests as f64),
        }
    };
    (step.iter().filter_map(|(c, _)| value(c.as_ref())).collect(), step.iter().filter_map(|(_, b)| value(b.as_ref())).collect())
}

/// Which of a look's requests are bad for an SLO: those past a latency
/// bucket, or (none given) the errors.
#[derive(Debug, Clone, Copy)]
pub(super) struct Over(pub(super) Option<usize>);

impl Over {
    pub(super) fn bad(self, c: &RequestCounts) -> u64 {
        self.0.map_or(c.errors, |i| histogram::above(&c.latency, i))
    }
}
