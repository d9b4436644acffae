//! The statistics the canary analyzer judges with. Pure functions of
//! samples, no I/O, so every verdict can be recomputed from its stored
//! inputs (`paved canary replay`).
//!
//! # Layout
//! - [`normal`] — the standard normal distribution (CDF, survival, quantile).
//! - [`rank`] — Mann-Whitney U and the Hodges-Lehmann shift with its
//!   confidence interval: the Kayenta-equivalent judge's statistics.
//! - [`kayenta`] — that judge: per-metric classification (direction,
//!   allowed change, critical, NaN strategy, minimum samples) and the
//!   weighted group score with pass and marginal thresholds.
//! - [`sequential`] — the request-level test of bad-event proportions
//!   (errors, requests over a latency threshold), valid at every look, with
//!   the smallest ratio the traffic so far can detect.
//!
//! Reference values in `tests/reference.rs` come from SciPy
//! (`tests/reference.py` regenerates them).

pub mod kayenta;
pub mod normal;
pub mod rank;
pub mod sequential;

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
        NanStrategy::Replace(with) => series.iter().map(|&v| if v.is_finite() { v } else { with }).collect(),
    }
}

/// Kayenta's effect size: mean(canary) / mean(baseline). None when the
/// baseline's mean is 0 or either sample is empty.
pub fn mean_ratio(canary: &[f64], baseline: &[f64]) -> Option<f64> {
    let mean = |s: &[f64]| (!s.is_empty()).then(|| s.iter().sum::<f64>() / s.len() as f64);
    let (c, b) = (mean(canary)?, mean(baseline)?);
    (b != 0.0).then(|| c / b)
}
