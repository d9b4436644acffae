//! Latency histograms as the workload proxy keeps them and the judges read
//! them: fixed buckets with upper bounds 0.1 ms × 1.1^k (the last one
//! unbounded), so a quantile is known within 10% and histograms of any two
//! revisions, looks or processes add up bucket by bucket.

use crate::normal;

/// Buckets, the unbounded last one included: 0.1 ms up to about 90 s.
pub const BUCKETS: usize = 145;
const FIRST: f64 = 0.000_1;
const GROWTH: f64 = 1.1;

/// The inclusive upper bound of bucket `index`, in seconds.
pub fn bound(index: usize) -> f64 {
    if index + 1 >= BUCKETS { f64::INFINITY } else { FIRST * GROWTH.powi(index as i32) }
}

/// The bucket a latency of `seconds` falls in.
pub fn bucket_of(seconds: f64) -> usize {
    if seconds.is_nan() || seconds <= FIRST {
        return 0;
    }
    let guess = ((seconds / FIRST).ln() / GROWTH.ln()).ceil();
    let mut i = if guess >= (BUCKETS - 1) as f64 { BUCKETS - 1 } else { guess as usize };
    // The logarithm can be off by one either way at a bound.
    while i > 0 && bound(i - 1) >= seconds {
        i -= 1;
    }
    while bound(i) < seconds {
        i += 1;
    }
    i
}

/// The value reported for a bucket: its upper bound (the unbounded last
/// one at the last finite bound).
pub fn value(index: usize) -> f64 {
    bound(index.min(BUCKETS - 2))
}

/// The bucket holding the observation of 1-based `rank`.
fn bucket_at_rank(counts: &[u64], rank: u64) -> usize {
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return i;
        }
    }
    counts.len().saturating_sub(1)
}

/// The bucket holding the `q` quantile; None without observations.
pub fn quantile(counts: &[u64], q: f64) -> Option<usize> {
    let n: u64 = counts.iter().sum();
    (n > 0).then(|| bucket_at_rank(counts, ((q * n as f64).ceil() as u64).clamp(1, n)))
}

/// The buckets bounding a two-sided `confidence` interval for the `q`
/// quantile: the order statistics whose ranks the binomial distribution of
/// "observations below the quantile" allows (normal approximation). None
/// when there are too few observations for the interval to have an end on
/// either side (for p99 at 98%, fewer than about 1,000).
pub fn quantile_interval(counts: &[u64], q: f64, confidence: f64) -> Option<(usize, usize)> {
    let n: u64 = counts.iter().sum();
    let nf = n as f64;
    let z = normal::quantile(0.5 + confidence / 2.0);
    let spread = z * (nf * q * (1.0 - q)).sqrt();
    let (low, high) = ((nf * q - spread).floor(), (nf * q + spread).ceil() + 1.0);
    (n > 0 && low >= 1.0 && high <= nf).then(|| (bucket_at_rank(counts, low as u64), bucket_at_rank(counts, high as u64)))
}

/// Observations in buckets after `index`: slower than its bound.
pub fn above(counts: &[u64], index: usize) -> u64 {
    counts.iter().skip(index + 1).sum()
}

/// Adds `other` into `into` bucket by bucket.
pub fn merge(into: &mut Vec<u64>, other: &[u64]) {
    if into.len() < other.len() {
        into.resize(other.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(other) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_latency_lands_in_the_bucket_whose_bounds_hold_it() {
        for s in [0.0, 0.000_05, 0.000_1, 0.000_100_1, 0.001, 0.0123, 0.5, 1.0, 37.0, 1e9, f64::NAN] {
            let i = bucket_of(s);
            assert!(s.is_nan() || s <= bound(i), "{s} in {i}");
            assert!(i == 0 || s > bound(i - 1), "{s} in {i}, not {}", i - 1);
        }
        for i in 0..BUCKETS - 1 {
            assert_eq!(bucket_of(bound(i)), i, "the bound of {i} is in it");
        }
        assert_eq!(bucket_of(1e9), BUCKETS - 1);
        assert!(bound(BUCKETS - 2) > 60.0, "a minute is still measured");
    }

    #[test]
    fn quantiles_and_their_intervals_bracket_the_truth() {
        let mut counts = vec![0u64; BUCKETS];
        // 1..=10,000 ms, one each.
        for ms in 1..=10_000u64 {
            counts[bucket_of(ms as f64 / 1000.0)] += 1;
        }
        let p99 = value(quantile(&counts, 0.99).expect("p99"));
        assert!((9.9..=9.9 * GROWTH).contains(&p99), "{p99}");
        let (lo, hi) = quantile_interval(&counts, 0.99, 0.98).expect("10,000 observations bound a p99");
        assert!(value(lo) <= p99 && p99 <= value(hi) && value(hi) <= 10.0 * GROWTH, "{} {p99} {}", value(lo), value(hi));
        let few: Vec<u64> = counts.iter().map(|c| c.min(&1) * u64::from(*c > 0)).collect();
        let n: u64 = few.iter().sum();
        assert!(n < 200 && quantile_interval(&few, 0.99, 0.98).is_none(), "{n} observations cannot bound a p99");
        let nine = bucket_of(9.0);
        assert_eq!(above(&counts, nine), (1..=10_000u64).filter(|&ms| ms as f64 / 1000.0 > bound(nine)).count() as u64);
        assert_eq!(quantile(&[0, 0], 0.5), None);
        let mut sum = vec![1, 2];
        merge(&mut sum, &[1, 1, 1]);
        assert_eq!(sum, vec![2, 3, 1]);
    }
}
