//! The Kayenta-equivalent judge: classification and scoring.

use paved_judge::{
    NanStrategy, OutlierStrategy,
    kayenta::{Classification, Direction, MetricConfig, Thresholds, Verdict, classify, score},
};

/// 100 latencies around 100 ms with some spread, times `factor`.
fn latencies(factor: f64, phase: u64) -> Vec<f64> {
    (0..100u64).map(|i| (100.0 + ((i * 37 + phase) % 17) as f64) * factor).collect()
}

#[test]
fn a_slower_canary_is_high_and_fails_a_latency_metric() {
    let latency = MetricConfig { allowed_change: 0.1, ..MetricConfig::new("p99", "latency", Direction::Increase) };
    let r = classify(&latency, &latencies(1.3, 0), &latencies(1.0, 5));
    assert_eq!(r.classification, Classification::High, "{}", r.reason);
    assert!(r.failed);
    let (low, _) = r.interval.expect("interval");
    assert!(low > 0.0 && r.ratio.is_some_and(|x| x > 1.25), "{r:?}");
    assert!(r.reason.contains("the canary is higher") && r.reason.contains("98% interval"), "{}", r.reason);

    // The same data on a metric that may rise without harm.
    let throughput = MetricConfig::new("rps", "traffic", Direction::Decrease);
    let r = classify(&throughput, &latencies(1.3, 0), &latencies(1.0, 5));
    assert_eq!((r.classification, r.failed), (Classification::High, false));
}

#[test]
fn an_identical_canary_passes_and_a_negligible_shift_is_allowed() {
    let config = MetricConfig { allowed_change: 0.05, ..MetricConfig::new("p99", "latency", Direction::Either) };
    let same = classify(&config, &latencies(1.0, 3), &latencies(1.0, 9));
    assert_eq!((same.classification, same.failed), (Classification::Pass, false), "{}", same.reason);
    // 2% slower: significant with 100 samples each, but within 5%.
    let slight = classify(&config, &latencies(1.02, 3), &latencies(1.0, 9));
    assert_eq!(slight.classification, Classification::Pass, "{}", slight.reason);
    let strict = MetricConfig { allowed_change: 0.0, tolerance: 0.0, ..config };
    assert_eq!(classify(&strict, &latencies(1.02, 3), &latencies(1.0, 9)).classification, Classification::High);
}

#[test]
fn missing_data_is_never_a_silent_pass() {
    let nan = vec![f64::NAN; 50];
    let config = MetricConfig::new("errors", "errors", Direction::Increase);
    let r = classify(&config, &nan, &latencies(1.0, 0));
    assert_eq!((r.classification, r.failed), (Classification::NoData, false));
    assert!(r.reason.contains("not enough data: 0 canary and 100 baseline values (of 50 and 100)"), "{}", r.reason);
    let alone = score(&[(r.clone(), &config)], &[], Thresholds::default());
    assert_eq!(alone.verdict, Verdict::Inconclusive, "no metric had data: {alone:?}");

    let critical = MetricConfig { critical: true, ..config.clone() };
    let r = classify(&critical, &nan, &latencies(1.0, 0));
    assert!(r.failed, "a critical metric without data fails");
    let s = score(&[(r, &critical)], &[], Thresholds::default());
    assert_eq!((s.verdict, s.score), (Verdict::Fail, 0.0));
    assert!(s.critical_failure.is_some_and(|why| why.starts_with("errors: not enough data")));

    // NaN as zero (an error count with no data point means no errors).
    let replaced = MetricConfig { nan: NanStrategy::Replace(0.0), ..config };
    assert_ne!(classify(&replaced, &nan, &latencies(1.0, 0)).classification, Classification::NoData);
}

#[test]
fn groups_are_weighted_and_thresholds_decide() {
    let latency = MetricConfig::new("p99", "latency", Direction::Increase);
    let p50 = MetricConfig::new("p50", "latency", Direction::Increase);
    let errors = MetricConfig::new("errors", "errors", Direction::Increase);
    let slow = classify(&latency, &latencies(1.3, 0), &latencies(1.0, 5));
    let fine = classify(&p50, &latencies(1.0, 1), &latencies(1.0, 2));
    let ok = classify(&errors, &latencies(1.0, 4), &latencies(1.0, 6));
    let results = [(slow, &latency), (fine, &p50), (ok, &errors)];
    // latency 1 of 2 passed (50%) × 70 + errors 100% × 30 = 65.
    let s = score(&results, &[("latency".into(), 70.0), ("errors".into(), 30.0)], Thresholds::default());
    assert!((s.score - 65.0).abs() < 1e-9 && s.verdict == Verdict::Fail, "{s:?}");
    // Unweighted groups share 100 equally: 50% and 100% → 75, marginal.
    let s = score(&results, &[], Thresholds::default());
    assert!((s.score - 75.0).abs() < 1e-9 && s.verdict == Verdict::Marginal, "{s:?}");
    let s = score(&results, &[], Thresholds { pass: 70.0, marginal: 50.0 });
    assert_eq!(s.verdict, Verdict::Pass);
}

#[test]
fn outliers_are_removed_unless_kept() {
    // Identical bodies; the canary has three scrapes of 50× the usual value.
    let mut canary = latencies(1.0, 3);
    canary[..3].fill(5000.0);
    let keep =
        MetricConfig { allowed_change: 0.1, outliers: OutlierStrategy::Keep, ..MetricConfig::new("p99", "latency", Direction::Increase) };
    let kept = classify(&keep, &canary, &latencies(1.0, 9));
    assert!(kept.ratio.is_some_and(|r| r > 1.1), "the spikes move the mean: {kept:?}");
    let remove = MetricConfig { outliers: OutlierStrategy::Remove { factor: 3.0 }, ..keep };
    let removed = classify(&remove, &canary, &latencies(1.0, 9));
    assert_eq!(removed.classification, Classification::Pass, "{}", removed.reason);
    assert!(removed.ratio.is_some_and(|r| (r - 1.0).abs() < 0.05), "{removed:?}");
    assert_eq!(paved_judge::remove_outliers(&[1.0, 2.0, 3.0], remove.outliers), [1.0, 2.0, 3.0], "too few to judge");
}

#[test]
fn identical_constant_series_pass_and_differing_constants_do_not() {
    let config = MetricConfig { critical: true, ..MetricConfig::new("errors", "errors", Direction::Increase) };
    let zeros = [0.0; 10];
    let same = classify(&config, &zeros, &zeros);
    assert_eq!((same.classification, same.failed), (Classification::Pass, false), "{}", same.reason);
    let worse = classify(&config, &[0.05; 10], &zeros);
    assert_eq!((worse.classification, worse.failed), (Classification::High, true), "{}", worse.reason);
}
