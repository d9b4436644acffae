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

/// The most one look may add to a log-likelihood ratio. Capping keeps each
/// ratio a supermartingale under the null (E[min(LR, c)] ≤ E[LR] = 1), so
/// the guarantee stands; what it buys is that no single look — one burst
/// of slow requests landing on one side — can fail a canary: at α = 0.01
/// it takes three looks (3 × 2 > ln 100), and so does a pass.
const LOOK_CAP: f64 = 2.0;

/// Counts of one look, or of all looks together.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Counts {
    pub canary_requests: u64,
    pub canary_bad: u64,
    pub baseline_requests: u64,
    pub baseline_bad: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.canary_requests += other.canary_requests;
        self.canary_bad += other.canary_bad;
        self.baseline_requests += other.baseline_requests;
        self.baseline_bad += other.baseline_bad;
    }
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
    /// How much more the looks' splits of bad events vary than independent
    /// events would (1: as expected); the evidence was divided by it.
    pub dispersion: f64,
}

/// The test's state over a rollout. Each look's events are weighed with
/// that look's own share π: shares change between steps (and between a
/// canary and a stable revision they differ), and a share computed over
/// all looks would credit early events with a later share.
///
/// Bad events are not always independent: a stalled process slows every
/// request in flight at once, so slow requests come in bursts, and a test
/// that counts each as news overstates its evidence. The looks show it:
/// their canary/baseline splits of bad events vary more than binomially.
/// That overdispersion (Pearson's χ² per degree of freedom, at the
/// best-fitting ratio, from three looks on) divides the evidence, as a
/// quasi-likelihood does; with independent events it stays near 1.
#[derive(Debug, Clone, Default)]
pub struct Sequential {
    /// Per ratio of the grid: Σ over looks of the log-likelihood ratio,
    /// each look's capped.
    log_ratios: [f64; RATIOS.len()],
    total: Counts,
    /// Each look's requests (canary, baseline), of those with traffic on
    /// both sides: what the test could have seen is planned per look,
    /// since each adds at most [`LOOK_CAP`].
    looks: Vec<(f64, f64)>,
    /// Over the looks with bad events on either side, what their
    /// dispersion needs: see [`Splits`].
    splits: Splits,
}

/// Running sums over the looks' splits of bad events — look k's share π,
/// the canary's x of all m bad — from which Pearson's χ² at any ratio f
/// follows without walking the looks again. With p = fπ / (fπ + 1 − π),
/// a look's term (x − mp)² / (mp(1 − p)) is (x(1 − π) − fπ(m − x))² /
/// (m f π(1 − π)), which expands to A/f − 2B + fC over the sums below.
#[derive(Debug, Clone, Copy, Default)]
struct Splits {
    looks: usize,
    /// Σx, Σm, Σπm: the pooled fit.
    x: f64,
    m: f64,
    pi_m: f64,
    /// A = Σ x²(1 − π)/(mπ), B = Σ x(m − x)/m, C = Σ π(m − x)²/(m(1 − π)).
    a: f64,
    b: f64,
    c: f64,
}

impl Splits {
    fn add(&mut self, pi: f64, x: f64, m: f64) {
        self.looks += 1;
        (self.x, self.m, self.pi_m) = (self.x + x, self.m + m, self.pi_m + pi * m);
        self.a += x * x * (1.0 - pi) / (m * pi);
        self.b += x * (m - x) / m;
        self.c += pi * (m - x) * (m - x) / (m * (1.0 - pi));
    }

    /// Pearson's χ² of the looks' splits under the ratio `f`.
    fn chi2(&self, f: f64) -> f64 {
        self.a / f - 2.0 * self.b + f * self.c
    }
}

impl Sequential {
    /// Adds one look's counts (since the previous look).
    pub fn observe(&mut self, look: Counts) {
        self.total.add(look);
        let (nc, nb) = (look.canary_requests as f64, look.baseline_requests as f64);
        // With one side idle every bad event is the other's by necessity:
        // no evidence either way.
        if nc == 0.0 || nb == 0.0 {
            return;
        }
        self.looks.push((nc, nb));
        let pi = nc / (nc + nb);
        let (ec, eb) = (look.canary_bad as f64, look.baseline_bad as f64);
        if ec + eb > 0.0 {
            self.splits.add(pi, ec, ec + eb);
        }
        for (sum, &r) in self.log_ratios.iter_mut().zip(&RATIOS) {
            let p = alternative(pi, r);
            *sum += (ec * (p / pi).ln() + eb * ((1.0 - p) / (1.0 - pi)).ln()).min(LOOK_CAP);
        }
    }

    /// Judges the looks so far at level `alpha` (the chance, over the whole
    /// rollout, of failing a canary that is no worse than its baseline).
    pub fn evidence(&self, alpha: f64) -> Evidence {
        let log_threshold = (1.0 / alpha).ln();
        let dispersion = self.dispersion();
        let log_ratio = log_mean_exp(&self.log_ratios.map(|l| l / dispersion));
        let t = self.total;
        let (nc, nb) = (t.canary_requests as f64, t.baseline_requests as f64);
        let detectable_ratio =
            (nc > 0.0 && nb > 0.0).then(|| detectable(&self.looks, (t.baseline_bad as f64 + 0.5) / nb, log_threshold, dispersion));
        Evidence { log_ratio, log_threshold, regressed: log_ratio >= log_threshold, detectable_ratio, dispersion }
    }

    /// Pearson's χ² of the looks' splits per degree of freedom, under the
    /// ratio the looks together fit best (the pooled odds ratio, half an
    /// event added on each side), at least 1; 1 before three looks with
    /// bad events.
    fn dispersion(&self) -> f64 {
        let s = &self.splits;
        if s.looks < 3 {
            return 1.0;
        }
        let pi = s.pi_m / s.m;
        let fit = (s.x + 0.5) / (s.m - s.x + 0.5) * (1.0 - pi) / pi;
        (s.chi2(fit) / (s.looks - 1) as f64).max(1.0)
    }

    /// All looks' counts together.
    pub fn total(&self) -> Counts {
        self.total
    }

    /// How many looks had traffic on both sides.
    pub fn looks(&self) -> usize {
        self.looks.len()
    }
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

/// The smallest ratio r whose expected evidence at this traffic would fail
/// the canary: the test's own rule (the mixture over the grid of each
/// ratio's capped, dispersion-divided sum, against ln(1/α)) applied to
/// what each look would show under r — its bad events expected under r
/// (the baseline's rate, estimated with half an event added so that none
/// seen is not a rate of 0), each telling ratio g of the grid E_r[ln LR_g]
/// at that look's own share π, the look's total capped at [`LOOK_CAP`] as
/// the test caps it. Never below the grid's smallest ratio: nothing
/// smaller is tested for; infinite when no ratio would do, as when the
/// looks are too few to reach the threshold however much traffic they
/// carried (a step whose looks were held up by an outage: without the cap
/// in the plan, such a step passed on traffic the test could not use).
fn detectable(looks: &[(f64, f64)], rate: f64, log_threshold: f64, dispersion: f64) -> f64 {
    let evidence = |r: f64| {
        let sums = RATIOS.map(|g| {
            let capped: f64 = looks
                .iter()
                .map(|&(nc, nb)| {
                    let pi = nc / (nc + nb);
                    let (p, q) = (alternative(pi, r), alternative(pi, g));
                    let per_event = p * (q / pi).ln() + (1.0 - p) * ((1.0 - q) / (1.0 - pi)).ln();
                    ((rate * nb + r * rate * nc) * per_event).min(LOOK_CAP)
                })
                .sum();
            capped / dispersion
        });
        log_mean_exp(&sums)
    };
    // Evidence grows with r; bisect on ln r up to a ratio of 1e6.
    let (mut lo, mut hi) = (RATIOS[0].ln(), 1e6f64.ln());
    if evidence(hi.exp()) < log_threshold {
        return f64::INFINITY;
    }
    if evidence(lo.exp()) >= log_threshold {
        return RATIOS[0];
    }
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if evidence(mid.exp()) >= log_threshold { hi = mid } else { lo = mid }
    }
    hi.exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dispersion as a walk over every look's split (the definition).
    fn walked(splits: &[(f64, f64, f64)]) -> f64 {
        if splits.len() < 3 {
            return 1.0;
        }
        let (x, m, pi_m) = splits.iter().fold((0.0, 0.0, 0.0), |(x, m, p), &(pi, xk, mk)| (x + xk, m + mk, p + pi * mk));
        let pi = pi_m / m;
        let fit = (x + 0.5) / (m - x + 0.5) * (1.0 - pi) / pi;
        let chi2: f64 = splits
            .iter()
            .map(|&(pi, x, m)| {
                let p = alternative(pi, fit);
                (x - m * p).powi(2) / (m * p * (1.0 - p))
            })
            .sum();
        (chi2 / (splits.len() - 1) as f64).max(1.0)
    }

    #[test]
    fn running_sums_give_the_walked_dispersion() {
        let mut next = crate::test_numbers(0x2545_f491_4f6c_dd1du64);
        let (mut test, mut splits, mut overdispersed) = (Sequential::default(), Vec::new(), 0);
        for look in 0..5_000 {
            let (nc, nb) = (1 + next(500), 1 + next(2_000));
            // Now and then a burst lands on one side only.
            let (ec, eb) = if next(10) == 0 { (next(50), 0) } else { (next(4), next(8)) };
            let counts = Counts { canary_requests: nc, canary_bad: ec, baseline_requests: nb, baseline_bad: eb };
            test.observe(counts);
            if ec + eb > 0 {
                splits.push((nc as f64 / (nc + nb) as f64, ec as f64, (ec + eb) as f64));
            }
            let (running, walk) = (test.dispersion(), walked(&splits));
            assert!((running - walk).abs() <= 1e-9 * walk, "look {look}: {running} against {walk}");
            overdispersed += usize::from(walk > 1.0);
        }
        assert!(overdispersed > 1_000, "the bursts show: {overdispersed}");
    }

    #[test]
    fn independent_events_are_not_dispersed() {
        // Bad events split exactly as the shares predict: χ² is small.
        let mut test = Sequential::default();
        for _ in 0..100 {
            test.observe(Counts { canary_requests: 100, canary_bad: 1, baseline_requests: 400, baseline_bad: 4 });
        }
        assert_eq!(test.evidence(0.01).dispersion, 1.0);
        assert!(!test.evidence(0.01).regressed);
    }
}
