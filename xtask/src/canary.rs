//! The canary judges' quality benchmark (issue #4): seeded simulations of
//! request traffic, judged by the sequential test and by the
//! Kayenta-equivalent judge side by side.
//!
//! Traffic: 1,000 requests/s; the canary and a baseline instance of the
//! stable revision each get the step's weight. Errors are Bernoulli
//! (0.5% by default); latencies log-normal (median 100 ms, σ 0.5), so p99
//! is about 320 ms.
//!
//! - A/A: 500 rollouts of 5 steps (1, 5, 10, 25, 50%) of 2 minutes, canary
//!   identical to baseline. The sequential test looks every 10 s; the
//!   Kayenta judge (Kayenta's defaults: 98% interval, tolerance 0.25, IQR
//!   outlier removal) at the end of every step, over the step's twelve 10 s
//!   intervals (error rate and p50, p90, p99 per interval).
//! - Detection, at 1% weight (10 requests/s each): a canary with +0.5
//!   percentage points of errors, and one with +5% latency (p99 +5%),
//!   held for up to an hour; detection rate and median time to detection
//!   (Kayenta judging everything since the start every 2 minutes).
//!
//! - Speed: judging 1,000,000 latency samples.
//!
//! Targets: A/A false-fail ≤ 1%; detection ≥ 95%; judging < 50 ms.

use crate::measure::ms;
use paved_judge::{
    kayenta::{Direction, MetricConfig, classify},
    sequential::{Counts, Sequential},
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::time::Instant;

const TOTAL_RPS: f64 = 1000.0;
const LOOK_S: u64 = 10;
const STEP_S: u64 = 120;
const BASE_ERRORS: f64 = 0.005;
/// ln-latency: median 100 ms, σ 0.5.
const MU: f64 = 4.605_170_185_988_091;
const SIGMA: f64 = 0.5;
/// Each sequential test gets half the rollout's α of 1%.
const ALPHA: f64 = 0.005;

/// A revision's behaviour: error rate and latency scale.
#[derive(Clone, Copy)]
struct Revision {
    errors: f64,
    latency: f64,
}

const BASELINE: Revision = Revision { errors: BASE_ERRORS, latency: 1.0 };

/// The baseline's latency quantiles the sequential test counts requests
/// over: a shift of the body shows at p50 long before it shows at p99.
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// One 10 s look's worth of one side's requests.
struct Interval {
    requests: u64,
    errors: u64,
    /// Requests slower than each of the baseline's [`QUANTILES`].
    slow: [u64; QUANTILES.len()],
    /// The interval's latency at each of [`QUANTILES`].
    latency: [f64; QUANTILES.len()],
}

/// The baseline's latency at each of [`QUANTILES`].
fn thresholds() -> [f64; QUANTILES.len()] {
    QUANTILES.map(|q| (MU + SIGMA * paved_judge::normal::quantile(q)).exp())
}

/// One request's latency, the baseline's distribution times `scale`
/// (Box-Muller: one normal draw).
fn latency(rng: &mut StdRng, scale: f64) -> f64 {
    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (MU + SIGMA * z).exp() * scale
}

fn serve(rng: &mut StdRng, revision: Revision, rps: f64) -> Interval {
    let requests = (rps * LOOK_S as f64).round() as u64;
    let mut latencies: Vec<f64> = Vec::with_capacity(requests as usize);
    let mut errors = 0;
    for _ in 0..requests {
        errors += u64::from(rng.random::<f64>() < revision.errors);
        latencies.push(latency(rng, revision.latency));
    }
    let slow = thresholds().map(|t| latencies.iter().filter(|&&l| l > t).count() as u64);
    latencies.sort_unstable_by(f64::total_cmp);
    let at = |q: f64| latencies.get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN);
    Interval { requests, errors, slow, latency: QUANTILES.map(at) }
}

/// The sequential judge's state over a rollout: errors, then requests over
/// each latency threshold.
#[derive(Default)]
struct Judge {
    tests: [Sequential; 1 + QUANTILES.len()],
}

impl Judge {
    fn look(&mut self, canary: &Interval, baseline: &Interval) -> bool {
        let bad = |i: &Interval| [i.errors].into_iter().chain(i.slow).collect::<Vec<_>>();
        for ((test, c), b) in self.tests.iter_mut().zip(bad(canary)).zip(bad(baseline)) {
            test.observe(Counts { canary_requests: canary.requests, canary_bad: c, baseline_requests: baseline.requests, baseline_bad: b });
        }
        // Errors get half the α; the latency thresholds share the other half.
        let (errors, latency) = self.tests.split_at(1);
        errors[0].evidence(ALPHA).regressed || latency.iter().any(|t| t.evidence(ALPHA / QUANTILES.len() as f64).regressed)
    }
}

/// Kayenta over a window of intervals: error rate and latency at each of
/// [`QUANTILES`] per interval — the same quantiles the sequential test
/// counts over — with Kayenta's defaults; any metric High fails.
fn kayenta(canary: &[Interval], baseline: &[Interval]) -> bool {
    let errors = MetricConfig { critical: true, ..MetricConfig::new("error rate", "errors", Direction::Increase) };
    let rate = |s: &[Interval]| s.iter().map(|i| i.errors as f64 / i.requests as f64).collect::<Vec<_>>();
    classify(&errors, &rate(canary), &rate(baseline)).failed
        || (0..QUANTILES.len()).any(|q| {
            let latency = MetricConfig { critical: true, ..MetricConfig::new("latency", "latency", Direction::Increase) };
            let at = |s: &[Interval]| s.iter().map(|i| i.latency[q]).collect::<Vec<_>>();
            classify(&latency, &at(canary), &at(baseline)).failed
        })
}

/// (sequential failed, Kayenta failed) for an A/A rollout.
fn aa_rollout(rng: &mut StdRng) -> (bool, bool) {
    let (mut sequential, mut seq_failed, mut kay_failed) = (Judge::default(), false, false);
    for weight in [0.01, 0.05, 0.10, 0.25, 0.50] {
        let (mut canary, mut baseline) = (Vec::new(), Vec::new());
        for _ in 0..STEP_S / LOOK_S {
            let (c, b) = (serve(rng, BASELINE, TOTAL_RPS * weight), serve(rng, BASELINE, TOTAL_RPS * weight));
            seq_failed |= sequential.look(&c, &b);
            canary.push(c);
            baseline.push(b);
        }
        kay_failed |= kayenta(&canary, &baseline);
    }
    (seq_failed, kay_failed)
}

/// Seconds to detection at 1% weight, by each judge, within `horizon_s`.
/// Kayenta judges every 2 minutes over everything since the start (a
/// growing window, as Spinnaker does without a lookback).
fn detect(rng: &mut StdRng, canary_rev: Revision, horizon_s: u64) -> (Option<u64>, Option<u64>) {
    let (mut sequential, mut seq, mut kay) = (Judge::default(), None, None);
    let (mut canary, mut baseline) = (Vec::new(), Vec::new());
    let rps = TOTAL_RPS * 0.01;
    for t in (LOOK_S..=horizon_s).step_by(LOOK_S as usize) {
        let (c, b) = (serve(rng, canary_rev, rps), serve(rng, BASELINE, rps));
        if seq.is_none() && sequential.look(&c, &b) {
            seq = Some(t);
        }
        canary.push(c);
        baseline.push(b);
        if t % STEP_S == 0 && kay.is_none() && kayenta(&canary, &baseline) {
            kay = Some(t);
        }
        if seq.is_some() && kay.is_some() {
            break;
        }
    }
    (seq, kay)
}

fn summary(times: &[Option<u64>]) -> String {
    let mut found: Vec<u64> = times.iter().flatten().copied().collect();
    found.sort_unstable();
    let median = found.get(found.len() / 2).map_or_else(|| "—".to_string(), |t| format!("{:.1} min", *t as f64 / 60.0));
    format!("{:5.1}% detected, median {median}", found.len() as f64 * 100.0 / times.len() as f64)
}

/// Judging 1,000,000 latency samples (half canary, half baseline): the
/// sequential test (counting over the thresholds, then the test), judged
/// against < 50 ms; the Kayenta judge's rank statistics on the same
/// samples, reported; sorting them once, the floor of any rank judgement,
/// as the baseline. Whether the target is met.
fn speed(rng: &mut StdRng) -> bool {
    const N: usize = 500_000;
    let sample = |rng: &mut StdRng, scale: f64| -> Vec<f64> { (0..N).map(|_| latency(rng, scale)).collect() };
    let (canary, baseline) = (sample(rng, 1.05), sample(rng, 1.0));

    // In ten looks, as the analyzer sees a step (one look adds at most a
    // capped amount of evidence).
    const LOOKS: usize = 10;
    let t = Instant::now();
    let regressed = thresholds().iter().any(|&th| {
        let over = |s: &[f64]| s.iter().filter(|&&l| l > th).count() as u64;
        let mut test = Sequential::default();
        for (c, b) in canary.chunks(N / LOOKS).zip(baseline.chunks(N / LOOKS)) {
            test.observe(Counts {
                canary_requests: c.len() as u64,
                canary_bad: over(c),
                baseline_requests: b.len() as u64,
                baseline_bad: over(b),
            });
        }
        test.evidence(ALPHA / QUANTILES.len() as f64).regressed
    });
    let sequential = t.elapsed();

    let t = Instant::now();
    let latency = MetricConfig::new("latency", "latency", Direction::Increase);
    let kayenta = classify(&latency, &canary, &baseline);
    let rank = t.elapsed();

    let t = Instant::now();
    let mut all: Vec<f64> = canary.iter().chain(&baseline).copied().collect();
    all.sort_unstable_by(f64::total_cmp);
    let sort = t.elapsed();

    println!("  speed, judging {} latency samples in {LOOKS} looks (+5% on the canary's half):", 2 * N);
    println!("    sequential test: {:.1} ms (target < 50 ms), regression found: {regressed}", ms(sequential));
    println!("    Kayenta judge (Mann-Whitney + Hodges-Lehmann): {:.1} ms, {}", ms(rank), kayenta.reason);
    println!("    baseline: sorting the samples once: {:.1} ms", ms(sort));
    sequential.as_secs_f64() < 0.05 && regressed
}

pub fn run() -> anyhow::Result<()> {
    const ROLLOUTS: usize = 500;
    const RUNS: usize = 200;
    const HORIZON_S: u64 = 3600;
    let start = Instant::now();
    let mut rng = StdRng::seed_from_u64(20261127);
    let (mut seq_ff, mut kay_ff) = (0, 0);
    for _ in 0..ROLLOUTS {
        let (s, k) = aa_rollout(&mut rng);
        seq_ff += usize::from(s);
        kay_ff += usize::from(k);
    }
    println!("bench canary: seeded simulations (seed 20261127), 1,000 requests/s, canary and baseline at the step's weight");
    println!("  A/A, {ROLLOUTS} rollouts of 5 steps (target false-fail ≤ 1%):");
    println!("    sequential test: {:.1}% false-fail", seq_ff as f64 * 100.0 / ROLLOUTS as f64);
    println!("    Kayenta judge:   {:.1}% false-fail", kay_ff as f64 * 100.0 / ROLLOUTS as f64);
    let scenarios = [
        ("+0.5 pp errors (0.5% → 1.0%)", Revision { errors: BASE_ERRORS + 0.005, latency: 1.0 }),
        ("+5% latency (p99 +5%)", Revision { errors: BASE_ERRORS, latency: 1.05 }),
    ];
    let mut met = seq_ff * 100 <= ROLLOUTS;
    for (name, revision) in scenarios {
        let (seq, kay): (Vec<_>, Vec<_>) = (0..RUNS).map(|_| detect(&mut rng, revision, HORIZON_S)).unzip();
        println!("  {name} at 1% weight, {RUNS} runs, up to {} min (target ≥ 95% detected):", HORIZON_S / 60);
        println!("    sequential test: {}", summary(&seq));
        println!("    Kayenta judge:   {}", summary(&kay));
        met &= seq.iter().flatten().count() * 100 >= RUNS * 95;
    }
    met &= speed(&mut rng);
    println!("  ({:.1} s)", start.elapsed().as_secs_f64());
    if !met {
        anyhow::bail!("the sequential test misses a target (see above)");
    }
    Ok(())
}
