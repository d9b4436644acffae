//! The statistics the canary analyzer judges with. Pure functions of
//! samples, no I/O, so every verdict can be recomputed from its stored
//! inputs (`paved canary replay`).
//!
//! # Layout
//! - [`histogram`] — latency histograms with fixed buckets (10% apart),
//!   their quantiles and the quantiles' confidence intervals.
//! - [`normal`] — the standard normal distribution (CDF, survival, quantile).
//! - [`rank`] — Mann-Whitney U and the Hodges-Lehmann shift with its
//!   confidence interval: the Kayenta-equivalent judge's statistics.
//! - [`kayenta`] — that judge: per-metric classification (direction,
//!   allowed change, critical, NaN strategy, minimum samples) and the
//!   weighted group score with pass and marginal thresholds.
//! - [`sequential`] — the request-level test of bad-event proportions
//!   (errors, requests over a latency threshold), valid at every look, with
//!   the smallest ratio the traffic so far can detect.
//! - [`slo`] — the multi-window burn-rate guard on the canary alone.
//! - [`verdict`] — a step's verdict from that evidence: fail at once, pass
//!   only when the traffic could have shown what matters, else
//!   inconclusive (extend the step).
//!
//! Reference values in `tests/reference.rs` come from SciPy
//! (`tests/reference.py` regenerates them).

pub mod histogram;
pub mod kayenta;
pub mod normal;
pub mod rank;
pub mod sequential;
pub mod slo;
pub mod verdict;

pub use rank::{RankSum, Shift, hodges_lehmann, rank_sum};

/// What to do with values that are not numbers — NaN or infinite: a scrape
/// that failed, a division by zero in a query — as Kayenta's `nanStrategy`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NanStrategy {
    /// Drop them (the default).
    Remove,
    /// Count them as this value (e.g. 0 for an error count that had no data).
    Replace(f64),
}

/// The series with its non-finite values handled, ready for [`rank_sum`]
/// and [`hodges_lehmann`].
pub fn clean(series: &[f64], nan: NanStrategy) -> Vec<f64> {
    match nan {
        NanStrategy::Remove => series.iter().copied().filter(|v| v.is_finite()).collect(),
        // A replacement that is itself not a number is no replacement.
        NanStrategy::Replace(with) if !with.is_finite() => clean(series, NanStrategy::Remove),
        NanStrategy::Replace(with) => series.iter().map(|&v| if v.is_finite() { v } else { with }).collect(),
    }
}

/// What to do with outliers, as Kayenta's `outliers.strategy`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutlierStrategy {
    Keep,
    /// Drop values more than `factor` interquartile ranges outside the
    /// quartiles (Kayenta's IQR detector; 3.0 is its usual factor).
    Remove {
        factor: f64,
    },
}

/// The series without its outliers (see [`OutlierStrategy`]); quartiles by
/// linear interpolation, as NumPy's default.
pub fn remove_outliers(series: &[f64], strategy: OutlierStrategy) -> Vec<f64> {
    let OutlierStrategy::Remove { factor } = strategy else { return series.to_vec() };
    if series.len() < 4 {
        return series.to_vec();
    }
    let mut sorted = series.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let quantile = |q: f64| {
        let h = q * (sorted.len() - 1) as f64;
        let (i, frac) = (h.floor() as usize, h - h.floor());
        sorted[i] + frac * (sorted[(i + 1).min(sorted.len() - 1)] - sorted[i])
    };
    let (q1, q3) = (quantile(0.25), quantile(0.75));
    let (low, high) = (q1 - factor * (q3 - q1), q3 + factor * (q3 - q1));
    series.iter().copied().filter(|v| (low..=high).contains(v)).collect()
}

/// Kayenta's effect size: mean(canary) / mean(baseline). None when the
/// baseline's mean is 0 or either sample is empty.
pub fn mean_ratio(canary: &[f64], baseline: &[f64]) -> Option<f64> {
    let mean = |s: &[f64]| (!s.is_empty()).then(|| s.iter().sum::<f64>() / s.len() as f64);
    let (c, b) = (mean(canary)?, mean(baseline)?);
    (b != 0.0).then(|| c / b)
}

/// Numbers below `n`, the same from the same seed (xorshift64): the tests'
/// made-up traffic.
#[cfg(test)]
fn test_numbers(mut state: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    }
}
