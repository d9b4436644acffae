//! The sequential proportion test on seeded simulations: it keeps its error
//! rate however often it is looked at, and finds real regressions.

use paved_judge::sequential::{Counts, Sequential};

/// splitmix64: a small seeded generator, enough for Bernoulli draws.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn bad(&mut self, requests: u64, rate: f64) -> u64 {
        (0..requests).filter(|_| self.uniform() < rate).count() as u64
    }
}

/// Seconds until the test calls a regression, looking every 10 s for up to
/// `horizon` seconds; None if it never does. 10 requests/s on each side.
fn time_to_regression(rng: &mut Rng, baseline_rate: f64, canary_rate: f64, horizon: u64) -> Option<u64> {
    let mut test = Sequential::default();
    for t in (10..=horizon).step_by(10) {
        let look = Counts {
            canary_requests: 100,
            canary_bad: rng.bad(100, canary_rate),
            baseline_requests: 100,
            baseline_bad: rng.bad(100, baseline_rate),
        };
        test.observe(look);
        if test.evidence(0.01).regressed {
            return Some(t);
        }
    }
    None
}

#[test]
fn a_changing_share_keeps_the_error_rate() {
    // Ten minutes at a 1% share (10 against 990 requests/s) and 0.1%
    // errors, then two at 50/50 and 0.5%: the canary is never worse. A
    // share computed over all looks would credit the early errors with the
    // late share and fail it every time.
    let mut rng = Rng(3);
    let false_fails = (0..100)
        .filter(|_| {
            let mut test = Sequential::default();
            let phases = [(60, 100, 9_900, 0.001), (12, 5_000, 5_000, 0.005)];
            phases.iter().any(|&(looks, nc, nb, rate)| {
                (0..looks).any(|_| {
                    test.observe(Counts {
                        canary_requests: nc,
                        canary_bad: rng.bad(nc, rate),
                        baseline_requests: nb,
                        baseline_bad: rng.bad(nb, rate),
                    });
                    test.evidence(0.01).regressed
                })
            })
        })
        .count();
    assert!(false_fails <= 2, "{false_fails} of 100 failed");
}

#[test]
fn identical_canaries_fail_at_most_alpha_though_looked_at_every_10_seconds() {
    let mut rng = Rng(7);
    // 500 rollouts, each judged 90 times over 15 minutes.
    let false_fails = (0..500).filter(|_| time_to_regression(&mut rng, 0.005, 0.005, 900).is_some()).count();
    assert!(false_fails <= 5, "{false_fails} of 500 identical canaries failed (α = 1%)");
}

#[test]
fn doubled_errors_are_detected() {
    let mut rng = Rng(11);
    let times: Vec<Option<u64>> = (0..200).map(|_| time_to_regression(&mut rng, 0.005, 0.01, 3600)).collect();
    let detected = times.iter().flatten().count();
    assert!(detected >= 190, "{detected} of 200 detected within an hour");
    let tenfold = (0..50).filter(|_| time_to_regression(&mut rng, 0.005, 0.05, 300).is_some()).count();
    assert_eq!(tenfold, 50, "5% errors against 0.5% are caught within 5 minutes");
}

#[test]
fn the_detectable_ratio_shrinks_with_traffic_and_is_unknown_without() {
    let none = Sequential::default().evidence(0.01);
    assert_eq!((none.regressed, none.detectable_ratio), (false, None));
    // A step's traffic over its ten looks.
    let at = |n: u64| {
        let mut test = Sequential::default();
        let look = n / 10;
        for _ in 0..10 {
            test.observe(Counts { canary_requests: look, canary_bad: look / 200, baseline_requests: look, baseline_bad: look / 200 });
        }
        test.evidence(0.01)
    };
    let ratio = |n| at(n).detectable_ratio.expect("traffic on both sides");
    let (small, large) = (ratio(1_000), ratio(100_000));
    assert!(small > 2.0 && large < 1.5 && large < small, "1,000 requests: {small:.2}; 100,000: {large:.2}");
    assert_eq!(ratio(100_000_000), 1.1, "never below the smallest ratio tested");
    let even = at(10_000);
    assert!(!even.regressed && even.log_ratio < 0.0, "{even:?}");
    // The same traffic in one look shows nothing: no look alone can fail
    // a canary, however much traffic it carries.
    let mut once = Sequential::default();
    once.observe(Counts { canary_requests: 100_000, canary_bad: 500, baseline_requests: 100_000, baseline_bad: 500 });
    assert_eq!(once.evidence(0.01).detectable_ratio, Some(f64::INFINITY));
}

#[test]
fn bursts_of_bad_events_do_not_pass_for_evidence() {
    // Identical canary and baseline whose slow requests come in bursts of
    // 8 (a stall slows everything in flight): each burst lands on one side
    // as a whole. Counted as 8 independent events, the bursts fail far more
    // than α of identical canaries; the dispersion of the looks' splits
    // takes that back out.
    let mut rng = Rng(13);
    let rollout = |rng: &mut Rng| {
        let mut test = Sequential::default();
        (0..60).any(|_| {
            let bursts = rng.bad(20, 0.25);
            let canary = (0..bursts).filter(|_| rng.uniform() < 0.5).count() as u64;
            test.observe(Counts {
                canary_requests: 1_000,
                canary_bad: 8 * canary,
                baseline_requests: 1_000,
                baseline_bad: 8 * (bursts - canary),
            });
            test.evidence(0.01).regressed
        })
    };
    let false_fails = (0..300).filter(|_| rollout(&mut rng)).count();
    eprintln!("bursty A/A: {false_fails} of 300 failed");
    assert!(false_fails <= 6, "{false_fails} of 300 identical, bursty canaries failed");
    // Independent events keep the dispersion near 1: the power stays.
    let mut test = Sequential::default();
    for _ in 0..30 {
        test.observe(Counts {
            canary_requests: 1_000,
            canary_bad: rng.bad(1_000, 0.01),
            baseline_requests: 1_000,
            baseline_bad: rng.bad(1_000, 0.01),
        });
    }
    let d = test.evidence(0.01).dispersion;
    assert!((1.0..1.8).contains(&d), "independent events: dispersion {d}");
}
