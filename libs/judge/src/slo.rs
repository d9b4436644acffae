//! The multi-window burn-rate guard on the canary alone: it catches a canary
//! that burns its error budget fast — whatever the baseline does — without
//! waiting for a comparison to gather evidence, and, needing a long and a
//! short window both over the limit, neither fires on a brief blip nor
//! keeps firing after recovery (the SRE workbook's alerting rule).

use std::time::Duration;

/// One look's counts of the canary: its time since the judgement began.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: Duration,
    pub requests: u64,
    pub bad: u64,
}

/// Trips when the burn rate over both windows is at least `max_burn`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurnWindow {
    pub long: Duration,
    pub short: Duration,
    pub max_burn: f64,
}

/// Windows for a canary step (minutes, not the workbook's hours): a budget
/// burnt 14.4× over 5 minutes and the last 30 s, or 6× over 30 minutes
/// and the last 2.5.
pub const CANARY_WINDOWS: [BurnWindow; 2] = [
    BurnWindow { long: Duration::from_secs(300), short: Duration::from_secs(30), max_burn: 14.4 },
    BurnWindow { long: Duration::from_secs(1800), short: Duration::from_secs(150), max_burn: 6.0 },
];

/// Bad events a long window must hold before it can trip: at low traffic
/// one error in three requests is a 33× burn, and proves nothing.
pub const MIN_BAD: u64 = 10;

/// Why the guard trips, or None. `budget` is the share of bad events the
/// SLO allows (0.01 for 99%); `samples` are in time order. A window counts
/// once the judgement has run for its short span (a long window not yet
/// full covers what there is) and holds [`MIN_BAD`] bad events.
pub fn burn_rate_guard(samples: &[Sample], budget: f64, windows: &[BurnWindow]) -> Option<String> {
    let now = samples.last()?.at;
    let totals = |window: Duration| {
        samples.iter().filter(|s| now.saturating_sub(s.at) < window).fold((0u64, 0u64), |(r, b), s| (r + s.requests, b + s.bad))
    };
    let burn = |(requests, bad): (u64, u64)| if requests == 0 || budget <= 0.0 { 0.0 } else { bad as f64 / requests as f64 / budget };
    windows.iter().filter(|w| now >= w.short).find_map(|w| {
        let long_totals = totals(w.long);
        let (long, short) = (burn(long_totals), burn(totals(w.short)));
        (long_totals.1 >= MIN_BAD && long >= w.max_burn && short >= w.max_burn).then(|| {
            format!(
                "error budget ({:.2}% bad allowed) burnt {long:.1}× over the last {:?} and {short:.1}× over the last {:?} (limit {}×)",
                budget * 100.0,
                w.long,
                w.short,
                w.max_burn
            )
        })
    })
}

/// Whether `bad` of `requests` shows, at level `alpha`, that the canary's
/// share of bad events is below `budget`: the chance of seeing so few at
/// exactly the budget (exact binomial) is at most `alpha`. With none bad,
/// 459 requests show a 1% budget kept at α = 0.01. A fixed-sample test:
/// a caller deciding several times shares α among the decisions.
pub fn within_budget(requests: u64, bad: u64, budget: f64, alpha: f64) -> bool {
    if requests == 0 || !(0.0..1.0).contains(&budget) || bad as f64 >= budget * requests as f64 {
        return false;
    }
    if budget == 0.0 {
        return false;
    }
    let n = requests as f64;
    // Many bad events: the normal approximation (continuity-corrected) is
    // accurate there, and summing terms would take as long as there are.
    if bad > 10_000 {
        let sd = (n * budget * (1.0 - budget)).sqrt();
        return crate::normal::cdf((bad as f64 + 0.5 - n * budget) / sd) <= alpha;
    }
    let ln_choose = |k: f64| libm::lgamma(n + 1.0) - libm::lgamma(k + 1.0) - libm::lgamma(n - k + 1.0);
    let ln_term = |k: f64| ln_choose(k) + k * budget.ln() + (n - k) * (1.0 - budget).ln();
    // P(X ≤ bad): the terms grow up to the mean, so the last is the largest.
    let max = ln_term(bad as f64);
    let cdf = max.exp() * (0..=bad).map(|k| (ln_term(k as f64) - max).exp()).sum::<f64>();
    cdf <= alpha
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_shown_kept_by_enough_requests_with_few_bad() {
        // 0.99^459 = 0.0099; 0.99^458 = 0.0100.
        assert!(within_budget(459, 0, 0.01, 0.01));
        assert!(!within_budget(450, 0, 0.01, 0.01));
        // SciPy: binom.cdf(5, 1500, 0.01) = 0.0027; binom.cdf(10, 1500, 0.01) = 0.117.
        assert!(within_budget(1_500, 5, 0.01, 0.01));
        assert!(!within_budget(1_500, 10, 0.01, 0.01));
        assert!(!within_budget(0, 0, 0.01, 0.01) && !within_budget(1_000, 20, 0.01, 0.5));
        // Many bad events take no longer than few (normal approximation).
        assert!(within_budget(100_000_000_000, 900_000_000, 0.01, 0.01));
        assert!(!within_budget(100_000_000_000, 999_990_000, 0.01, 0.01));
    }

    fn series(bad_per_10s: impl Fn(u64) -> u64, seconds: u64) -> Vec<Sample> {
        (1..=seconds / 10).map(|i| Sample { at: Duration::from_secs(i * 10), requests: 100, bad: bad_per_10s(i) }).collect()
    }

    #[test]
    fn a_fast_burn_trips_and_a_blip_or_a_recovery_does_not() {
        // 20% errors against a 1% budget: 20× in every window.
        let broken = burn_rate_guard(&series(|_| 20, 120), 0.01, &CANARY_WINDOWS).expect("trips");
        assert!(broken.contains("burnt 20.0× over the last 300s and 20.0× over the last 30s"), "{broken}");
        // One bad interval in five minutes: the short window burns, the long one does not.
        assert_eq!(burn_rate_guard(&series(|i| if i == 30 { 100 } else { 0 }, 300), 0.01, &CANARY_WINDOWS), None);
        // Broken for two minutes, then healthy for three: both short windows have recovered.
        assert_eq!(burn_rate_guard(&series(|i| if i <= 12 { 30 } else { 0 }, 300), 0.01, &CANARY_WINDOWS), None);
        // Three requests, one error: a 33× burn of nothing much.
        let sparse: Vec<Sample> =
            (1..=30).map(|i| Sample { at: Duration::from_secs(i * 10), requests: 3, bad: u64::from(i == 30) }).collect();
        assert_eq!(burn_rate_guard(&sparse, 0.01, &CANARY_WINDOWS), None);
        // A broken first 20 s: not yet a short window's worth.
        assert_eq!(burn_rate_guard(&series(|_| 50, 20), 0.01, &CANARY_WINDOWS), None);
        // Within budget, and no traffic at all.
        assert_eq!(burn_rate_guard(&series(|_| 1, 600), 0.01, &CANARY_WINDOWS), None);
        assert_eq!(burn_rate_guard(&[], 0.01, &CANARY_WINDOWS), None);
    }
}
