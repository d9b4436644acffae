//! A request-level sequential test that stays valid however often it is
//! looked at: canary and baseline receive the same traffic share, so under
//! "no regression" every bad event (a 5xx, a request slower than a fixed
//! threshold) comes from the canary with the probability π of its share of
//! the requests. The test is a mixture of likelihood ratios for "the
//! canary's bad events are r times as likely", over a grid of r > 1: a
//! nonnegative martingale under the null, so by Ville's inequality the
//! chance that it *ever* reaches 1/α — at any look, after any interval —
//! is at most α. Kayenta's judge re-tests at every interval and so spends
//! its error rate once per look; this one spends it once per rollout.

/// Risk ratios the mixture covers, equally weighted: the test has power
/// against any of them (and what lies between).
const RATIOS: [f64; 8] = [1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0];

/// Counts since the judgement began (the rollout's first step).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Counts {
    pub canary_requests: u64,
    pub canary_bad: u64,
    pub baseline_requests: u64,
    pub baseline_bad: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// ln of the mixture likelihood ratio against "no regression".
    pub log_ratio: f64,
    /// ln(1/α): the ratio at which the canary fails.
    pub log_threshold: f64,
    /// The evidence suffices to call the canary worse.
    pub regressed: bool,
    /// The smallest risk ratio (canary bad-event rate / baseline's) that
    /// this much traffic would expose with even odds; None without
    /// traffic on either side. A step whose interval ends with this above
    /// the tolerated ratio is inconclusive, not passed.
    pub detectable_ratio: Option<f64>,
}

/// Judges the counts at level `alpha` (the chance, over the whole
/// rollout, of failing a canary that is no worse than its baseline).
pub fn proportions(counts: Counts, alpha: f64) -> Evidence {
    let log_threshold = (1.0 / alpha).ln();
    let (nc, nb) = (counts.canary_requests as f64, counts.baseline_requests as f64);
    if nc == 0.0 || nb == 0.0 {
        return Evidence { log_ratio: 0.0, log_threshold, regressed: false, detectable_ratio: None };
    }
    let pi = nc / (nc + nb);
    let (ec, eb) = (counts.canary_bad as f64, counts.baseline_bad as f64);
    let terms: Vec<f64> = RATIOS
        .iter()
        .map(|&r| {
            let p = alternative(pi, r);
            ec * (p / pi).ln() + eb * ((1.0 - p) / (1.0 - pi)).ln()
        })
        .collect();
    let log_ratio = log_mean_exp(&terms);
    let regressed = log_ratio >= log_threshold;
    Evidence { log_ratio, log_threshold, regressed, detectable_ratio: Some(detectable(nc, nb, eb, pi, log_threshold)) }
}

/// The probability that a bad event is the canary's when its events are
/// `r` times as likely per request.
fn alternative(pi: f64, r: f64) -> f64 {
    r * pi / (r * pi + 1.0 - pi)
}

fn log_mean_exp(terms: &[f64]) -> f64 {
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + (terms.iter().map(|t| (t - max).exp()).sum::<f64>() / terms.len() as f64).ln()
}

/// The smallest ratio r whose expected evidence at this traffic reaches the
/// threshold: bad events expected under r (baseline's rate, estimated with
/// half an event added so that none seen is not a rate of 0) times the
/// information each carries, KL(p_r ‖ π), plus the mixture's cost ln |grid|.
fn detectable(nc: f64, nb: f64, eb: f64, pi: f64, log_threshold: f64) -> f64 {
    let rate = (eb + 0.5) / nb;
    let need = log_threshold + (RATIOS.len() as f64).ln();
    let evidence = |r: f64| {
        let events = rate * nb + r * rate * nc;
        let p = alternative(pi, r);
        events * (p * (p / pi).ln() + (1.0 - p) * ((1.0 - p) / (1.0 - pi)).ln())
    };
    // Evidence grows with r; bisect on ln r up to a ratio of 1e6.
    let (mut lo, mut hi) = (0.0f64, 1e6f64.ln());
    if evidence(hi.exp()) < need {
        return f64::INFINITY;
    }
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if evidence(mid.exp()) >= need { hi = mid } else { lo = mid }
    }
    hi.exp()
}
