//! A rollout step's verdict from the request-level evidence: fail as soon as
//! the evidence says so (a sequential test or the burn-rate guard), pass
//! only when the step's interval is over *and* the traffic so far was
//! enough to expose the smallest regression that matters; otherwise the
//! step is inconclusive and should be extended, with how large a
//! regression the traffic could have shown.

use crate::sequential::Sequential;

/// One kind of bad event ("errors", "latency over p90", …) and its test.
#[derive(Debug, Clone, Copy)]
pub struct Test<'a> {
    pub kind: &'a str,
    pub test: &'a Sequential,
    /// The largest ratio of bad-event rates (canary / baseline) that is
    /// not a regression: 1 + the metric's allowed change, or more where
    /// an SLO allows more.
    pub tolerated_ratio: f64,
}

/// The evidence of one step so far.
#[derive(Debug, Clone, Copy)]
pub struct StepEvidence<'a> {
    /// Each its own test.
    pub tests: &'a [Test<'a>],
    /// Why the burn-rate guard tripped, if it did.
    pub burn: Option<&'a str>,
    /// The rollout's α, shared equally by the tests.
    pub alpha: f64,
    /// The step has been held for its whole interval.
    pub interval_over: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepVerdict {
    /// Keep holding the step: its interval is not over.
    Continue,
    Pass(String),
    Fail(String),
    /// The interval is over but the traffic could not have shown a
    /// regression of a test's tolerated ratio: hold the step longer.
    Inconclusive {
        reason: String,
        detectable_ratio: Option<f64>,
    },
}

pub fn judge_step(e: StepEvidence<'_>) -> StepVerdict {
    if let Some(why) = e.burn {
        return StepVerdict::Fail(why.to_string());
    }
    let alpha = e.alpha / e.tests.len().max(1) as f64;
    for Test { kind, test, .. } in e.tests {
        let evidence = test.evidence(alpha);
        if evidence.regressed {
            let t = test.total();
            return StepVerdict::Fail(format!(
                "{kind}: {} of {} canary requests against {} of {} baseline requests; likelihood ratio {} ≥ {:.0} (α {alpha})",
                t.canary_bad,
                t.canary_requests,
                t.baseline_bad,
                t.baseline_requests,
                compact(evidence.log_ratio.exp()),
                evidence.log_threshold.exp()
            ));
        }
    }
    if !e.interval_over {
        return StepVerdict::Continue;
    }
    // The test furthest from seeing what matters decides.
    let mut worst: Option<(&str, Option<f64>, f64, usize)> = None;
    for Test { kind, test, tolerated_ratio, .. } in e.tests {
        let detectable = test.evidence(alpha).detectable_ratio;
        let blind = detectable.is_none_or(|r| r > *tolerated_ratio);
        let shortfall = |d: Option<f64>, t: f64| d.map_or(f64::INFINITY, |d| d / t);
        let worse = worst.is_none_or(|(_, d, t, _)| shortfall(detectable, *tolerated_ratio) > shortfall(d, t));
        if blind && worse {
            worst = Some((kind, detectable, *tolerated_ratio, test.looks()));
        }
    }
    match worst {
        None => StepVerdict::Pass("no regression: the traffic could have shown one that matters in every test".into()),
        Some((kind, detectable_ratio, tolerated, looks)) => {
            let reason = match detectable_ratio {
                Some(r) if r.is_finite() => format!(
                    "{kind}: the traffic so far could only show a {r:.2}× rate of bad events, not the {tolerated:.2}× that matters; extend the step"
                ),
                Some(_) => format!(
                    "{kind}: {looks} look(s) with traffic on both sides so far, too few to show anything (no look alone adds enough evidence); extend the step"
                ),
                None => format!("{kind}: too little traffic on one side to show anything; extend the step"),
            };
            StepVerdict::Inconclusive { reason, detectable_ratio }
        }
    }
}

/// A likelihood ratio for people: whole below a million, else 2.1e63.
fn compact(v: f64) -> String {
    if v < 1e6 { format!("{v:.0}") } else { format!("{v:.1e}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{sequential::Counts, slo};

    /// The counts seen over five equal looks.
    fn test(nc: u64, bc: u64, nb: u64, bb: u64) -> Sequential {
        let mut s = Sequential::default();
        for _ in 0..5 {
            s.observe(Counts { canary_requests: nc / 5, canary_bad: bc / 5, baseline_requests: nb / 5, baseline_bad: bb / 5 });
        }
        s
    }

    fn evidence<'a>(tests: &'a [Test<'a>], interval_over: bool) -> StepEvidence<'a> {
        StepEvidence { tests, burn: None, alpha: 0.01, interval_over }
    }

    fn t<'a>(kind: &'a str, test: &'a Sequential) -> Test<'a> {
        Test { kind, test, tolerated_ratio: 1.5 }
    }

    #[test]
    fn a_step_fails_at_once_passes_when_enough_was_seen_and_is_extended_otherwise() {
        // 5% errors against 0.5%: fails before the interval ends.
        let bad = test(2_000, 100, 2_000, 10);
        match judge_step(evidence(&[t("errors", &bad)], false)) {
            StepVerdict::Fail(why) => assert!(why.starts_with("errors: 100 of 2000 canary requests against 10 of 2000"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Equal rates, too little traffic: not over yet, then inconclusive.
        let thin = test(500, 3, 500, 3);
        assert_eq!(judge_step(evidence(&[t("errors", &thin)], false)), StepVerdict::Continue);
        match judge_step(evidence(&[t("errors", &thin)], true)) {
            StepVerdict::Inconclusive { reason, detectable_ratio } => {
                assert!(detectable_ratio.is_some_and(|r| r > 1.5) && reason.contains("extend the step"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // Equal rates over plenty of traffic: a pass.
        let ample = test(200_000, 1_000, 200_000, 1_000);
        assert!(matches!(judge_step(evidence(&[t("errors", &ample)], true)), StepVerdict::Pass(_)));
        // The least sensitive test decides: plenty of errors data, thin latency data.
        let mixed = judge_step(evidence(&[t("errors", &ample), t("latency over p99", &thin)], true));
        assert!(matches!(&mixed, StepVerdict::Inconclusive { reason, .. } if reason.starts_with("latency over p99")), "{mixed:?}");
        // Half the canary's requests failing, seen in a single look (the
        // step's looks held up until its interval was over): that look
        // alone cannot fail it (the per-look cap), and it cannot pass
        // either: inconclusive, so that the next looks decide.
        let mut one_look = Sequential::default();
        one_look.observe(Counts { canary_requests: 1_916, canary_bad: 961, baseline_requests: 1_890, baseline_bad: 0 });
        match judge_step(evidence(&[t("errors", &one_look)], true)) {
            StepVerdict::Inconclusive { reason, detectable_ratio } => {
                assert_eq!(detectable_ratio, Some(f64::INFINITY));
                assert!(reason.contains("1 look(s) with traffic on both sides so far, too few"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        for _ in 0..3 {
            one_look.observe(Counts { canary_requests: 300, canary_bad: 150, baseline_requests: 300, baseline_bad: 0 });
        }
        // Small looks do not make up for it: three of one request a side,
        // then the whole step's traffic in one catch-up look show only an
        // enormous ratio (each look is planned with its own cap).
        let mut padded = Sequential::default();
        for _ in 0..3 {
            padded.observe(Counts { canary_requests: 1, canary_bad: 0, baseline_requests: 1, baseline_bad: 0 });
        }
        padded.observe(Counts { canary_requests: 20_000, canary_bad: 200, baseline_requests: 20_000, baseline_bad: 200 });
        match judge_step(evidence(&[t("errors", &padded)], true)) {
            StepVerdict::Inconclusive { detectable_ratio, .. } => {
                assert!(detectable_ratio.is_some_and(|r| r > 100.0), "{detectable_ratio:?}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(judge_step(evidence(&[t("errors", &one_look)], true)), StepVerdict::Fail(_)));
        // No baseline traffic at all: inconclusive, never a pass.
        let alone = test(1_000, 0, 0, 0);
        assert!(matches!(judge_step(evidence(&[t("errors", &alone)], true)), StepVerdict::Inconclusive { detectable_ratio: None, .. }));
    }

    #[test]
    fn the_burn_rate_guard_fails_a_step_on_its_own() {
        let samples: Vec<slo::Sample> =
            (1..=12).map(|i| slo::Sample { at: std::time::Duration::from_secs(i * 10), requests: 100, bad: 30 }).collect();
        let why = slo::burn_rate_guard(&samples, 0.01, &slo::CANARY_WINDOWS).expect("trips");
        let quiet = test(1_200, 360, 0, 0);
        let tests = [t("errors", &quiet)];
        let e = StepEvidence { burn: Some(&why), ..evidence(&tests, false) };
        assert_eq!(judge_step(e), StepVerdict::Fail(why.clone()));
    }
}
