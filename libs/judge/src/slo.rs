//! The multi-window burn-rate guard on the canary alone: it catches a canary
//! that burns its error budget fast — whatever the baseline does — without
//! waiting for a comparison to gather evidence, and, needing a long and a
//! short window both over the limit, neither fires on a brief blip nor
//! keeps firing after recovery (the SRE workbook's alerting rule).

use std::{collections::VecDeque, time::Duration};

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
/// full covers what there is) and holds [`MIN_BAD`] bad events. Walks the
/// samples: [`BurnRate`] keeps the same judgement as running sums.
pub fn burn_rate_guard(samples: &[Sample], budget: f64, windows: &[BurnWindow]) -> Option<String> {
    let now = samples.last()?.at;
    let totals = |window: Duration| {
        samples.iter().filter(|s| now.saturating_sub(s.at) < window).fold((0u64, 0u64), |(r, b), s| (r + s.requests, b + s.bad))
    };
    trips(now, budget, windows, totals)
}

/// The guard's rule on each window's (requests, bad) at `now`.
fn trips(now: Duration, budget: f64, windows: &[BurnWindow], totals: impl Fn(Duration) -> (u64, u64)) -> Option<String> {
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

/// The burn-rate guard over samples that arrive one at a time, as running
/// sums: each span (a window's long or short one) keeps the total of the
/// samples inside it, adding each new sample and taking out those it has
/// passed. A sample costs the same however many the longest span holds —
/// at one look a second, 30 minutes are 1,800 of them.
#[derive(Debug, Clone)]
pub struct BurnRate {
    budget: f64,
    windows: &'static [BurnWindow],
    /// The samples inside the longest span, oldest first; `first` is the
    /// number of the oldest (samples are numbered from 0 as they come).
    samples: VecDeque<Sample>,
    first: u64,
    spans: Vec<Span>,
}

#[derive(Debug, Clone)]
struct Span {
    length: Duration,
    /// The number of its oldest sample, and its totals (requests, bad).
    oldest: u64,
    totals: (u64, u64),
}

impl BurnRate {
    pub fn new(budget: f64, windows: &'static [BurnWindow]) -> Self {
        let mut lengths: Vec<Duration> = windows.iter().flat_map(|w| [w.long, w.short]).collect();
        lengths.sort();
        lengths.dedup();
        let spans = lengths.into_iter().map(|length| Span { length, oldest: 0, totals: (0, 0) }).collect();
        Self { budget, windows, samples: VecDeque::new(), first: 0, spans }
    }

    /// Adds the newest sample; samples come in time order.
    pub fn push(&mut self, sample: Sample) {
        self.samples.push_back(sample);
        let now = sample.at;
        for span in &mut self.spans {
            span.totals = (span.totals.0 + sample.requests, span.totals.1 + sample.bad);
            // The newest sample is always inside: the loop stops at it.
            while let Some(old) = self.samples.get(usize::try_from(span.oldest - self.first).unwrap_or(usize::MAX))
                && now.saturating_sub(old.at) >= span.length
            {
                span.totals = (span.totals.0 - old.requests, span.totals.1 - old.bad);
                span.oldest += 1;
            }
        }
        // A sample no span holds never counts again: times only grow.
        let keep = self.spans.iter().map(|s| s.oldest).min().unwrap_or(self.first + self.samples.len() as u64);
        while self.first < keep {
            self.samples.pop_front();
            self.first += 1;
        }
    }

    /// Why the guard trips at the newest sample, or None; as
    /// [`burn_rate_guard`] on all the samples pushed.
    pub fn tripped(&self) -> Option<String> {
        let now = self.samples.back()?.at;
        let totals = |length: Duration| self.spans.iter().find(|s| s.length == length).map_or((0, 0), |s| s.totals);
        trips(now, self.budget, self.windows, totals)
    }
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

    #[test]
    fn running_sums_judge_as_the_whole_series_does() {
        // Looks of 1–20 s, bursts of errors now and then, 3,000 of them: at
        // every look the running sums trip exactly when the walk does.
        let mut next = crate::test_numbers(0x9e37_79b9_7f4a_7c15u64);
        let (mut samples, mut at, mut guard, mut trips) = (Vec::new(), Duration::ZERO, BurnRate::new(0.01, &CANARY_WINDOWS), 0);
        for i in 0..3_000 {
            at += Duration::from_millis(1_000 + next(19_000));
            let burst = (i / 100) % 3 == 0 && next(4) > 0;
            let requests = next(200);
            let bad = if burst { requests * next(40) / 100 } else { requests * next(2) / 100 };
            let sample = Sample { at, requests, bad };
            samples.push(sample);
            guard.push(sample);
            let walked = burn_rate_guard(&samples, 0.01, &CANARY_WINDOWS);
            assert_eq!(guard.tripped(), walked, "look {i}");
            trips += usize::from(walked.is_some());
        }
        // Both outcomes were met, often.
        assert!(trips > 100 && trips < 2_900, "{trips} of 3,000 looks tripped");
        // It keeps only what the longest window holds (30 min of ≥ 1 s looks).
        assert!(guard.samples.len() <= 1_800, "{}", guard.samples.len());
    }
}
