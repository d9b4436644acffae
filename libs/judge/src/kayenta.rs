//! The Kayenta-equivalent judge: every metric's canary series against its
//! baseline series with a Mann-Whitney test and the Hodges-Lehmann shift,
//! classified, then scored by weighted groups with critical metrics — the
//! way Kayenta's NetflixACAJudge does it, so the two can be compared on the
//! same data.
//!
//! A metric is classified High (Low) when the shift's confidence interval
//! lies above (below) zero by more than a quarter of the shift (Kayenta's
//! tolerance) *and* the means differ by more than the allowed relative
//! change; otherwise Pass. As in Kayenta, outliers beyond 3 interquartile
//! ranges are removed by default. A High on a metric that may
//! only decrease without harm, a Low on one that may only increase, and
//! either on one that must not move are failures. Too few samples is
//! NoData — a failure for critical metrics, never a silent pass.

use crate::{NanStrategy, OutlierStrategy, clean, hodges_lehmann, mean_ratio, rank_sum, remove_outliers};

/// Which way a metric may move without harm being done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Only an increase is harmful (latency, errors).
    Increase,
    /// Only a decrease is harmful (throughput, cache hits).
    Decrease,
    /// Any movement is harmful.
    Either,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricConfig {
    pub name: String,
    pub group: String,
    pub direction: Direction,
    /// A failure of this metric fails the whole judgement.
    pub critical: bool,
    /// Allowed relative change of the mean before a significant shift
    /// counts: 0.1 lets the canary's mean be up to 10% off the baseline's.
    pub allowed_change: f64,
    /// The shift's interval must clear zero by this fraction of the shift
    /// itself (Kayenta's `fraction`, 0.25): a bound that barely excludes
    /// zero is noise more often than the confidence suggests.
    pub tolerance: f64,
    /// Confidence of the shift's interval (Kayenta: 0.98).
    pub confidence: f64,
    pub nan: NanStrategy,
    pub outliers: OutlierStrategy,
    /// Fewer samples (after NaN handling) on either side: no data.
    pub min_samples: usize,
}

impl MetricConfig {
    pub fn new(name: &str, group: &str, direction: Direction) -> Self {
        Self {
            name: name.into(),
            group: group.into(),
            direction,
            critical: false,
            allowed_change: 0.0,
            tolerance: 0.25,
            confidence: 0.98,
            nan: NanStrategy::Remove,
            outliers: OutlierStrategy::Remove { factor: 3.0 },
            // Fewer than 5 a side cannot bound a 98% interval.
            min_samples: 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    Pass,
    High,
    Low,
    NoData,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricResult {
    pub name: String,
    pub classification: Classification,
    /// Whether the classification counts against the canary.
    pub failed: bool,
    pub p_value: Option<f64>,
    /// Hodges-Lehmann shift canary − baseline and its interval.
    pub shift: Option<f64>,
    pub interval: Option<(f64, f64)>,
    /// mean(canary) / mean(baseline).
    pub ratio: Option<f64>,
    /// In words, for `paved canary explain`.
    pub reason: String,
}

/// Classifies one metric's canary series against its baseline series.
pub fn classify(config: &MetricConfig, canary: &[f64], baseline: &[f64]) -> MetricResult {
    let prepare = |s: &[f64]| remove_outliers(&clean(s, config.nan), config.outliers);
    let (c, b) = (prepare(canary), prepare(baseline));
    let mut result = MetricResult {
        name: config.name.clone(),
        classification: Classification::NoData,
        failed: config.critical,
        p_value: None,
        shift: None,
        interval: None,
        ratio: mean_ratio(&c, &b),
        reason: String::new(),
    };
    if c.len() < config.min_samples || b.len() < config.min_samples {
        result.reason = format!(
            "not enough data: {} canary and {} baseline values (of {} and {}), {} needed on each side",
            c.len(),
            b.len(),
            canary.len(),
            baseline.len(),
            config.min_samples
        );
        return result;
    }
    let (Some(test), Some(shift)) = (rank_sum(&c, &b), hodges_lehmann(&c, &b, config.confidence)) else {
        // Enough values, every one the same on both sides (an error rate
        // that stayed 0): no difference, which the rank test cannot say.
        if c.iter().chain(&b).all(|v| *v == c[0]) {
            result.classification = Classification::Pass;
            result.failed = false;
            result.reason = format!("every value is {} on both sides: no difference", c[0]);
        } else {
            result.reason = "not enough data".into();
        }
        return result;
    };
    result.p_value = Some(test.p_value);
    result.shift = Some(shift.estimate);
    result.interval = shift.interval;
    let Some((low, high)) = shift.interval else {
        result.reason = format!("too few values for a {:.0}% interval of the shift", config.confidence * 100.0);
        return result;
    };
    // The means' ratio must also clear the allowed change: a significant
    // but negligible shift is not a regression.
    let beyond = |up: bool| match result.ratio {
        Some(r) if up => r > 1.0 + config.allowed_change,
        Some(r) => r < 1.0 - config.allowed_change,
        // A baseline mean of 0: any significant shift is beyond it.
        None => true,
    };
    let margin = config.tolerance * shift.estimate.abs();
    result.classification = if low > margin && beyond(true) {
        Classification::High
    } else if high < -margin && beyond(false) {
        Classification::Low
    } else {
        Classification::Pass
    };
    result.failed = matches!(
        (result.classification, config.direction),
        (Classification::High, Direction::Increase | Direction::Either) | (Classification::Low, Direction::Decrease | Direction::Either)
    );
    result.reason = format!(
        "shift {:+.4} ({:.0}% interval {:+.4} to {:+.4}), mean ratio {}, p = {:.4}: {}",
        shift.estimate,
        config.confidence * 100.0,
        low,
        high,
        result.ratio.map_or_else(|| "undefined (baseline mean 0)".to_string(), |r| format!("{r:.3}")),
        test.p_value,
        match result.classification {
            Classification::High => "the canary is higher",
            Classification::Low => "the canary is lower",
            _ => "no difference beyond the allowed change",
        }
    );
    result
}

/// Score thresholds (0–100), as Kayenta's `pass` and `marginal`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub pass: f64,
    pub marginal: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { pass: 95.0, marginal: 75.0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Between the marginal and pass scores: neither promoted nor rolled back.
    Marginal,
    Fail,
    /// No metric had data to judge: not a pass.
    Inconclusive,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// 0–100: the weighted share of metrics that did not fail, by group.
    pub score: f64,
    pub verdict: Verdict,
    /// Set when a critical metric failed (the score is then 0).
    pub critical_failure: Option<String>,
}

/// Scores classified metrics: each group's share of metrics that did not
/// fail, weighted by `weights` (group → weight; groups without a weight
/// share the remainder of 100 equally, as Kayenta does). Metrics without
/// data take no part (a critical one has failed already); when none had
/// data the verdict is inconclusive.
pub fn score(results: &[(MetricResult, &MetricConfig)], weights: &[(String, f64)], thresholds: Thresholds) -> Score {
    if let Some((r, _)) = results.iter().find(|(r, c)| c.critical && r.failed) {
        return Score { score: 0.0, verdict: Verdict::Fail, critical_failure: Some(format!("{}: {}", r.name, r.reason)) };
    }
    let results: Vec<&(MetricResult, &MetricConfig)> = results.iter().filter(|(r, _)| r.classification != Classification::NoData).collect();
    if results.is_empty() {
        return Score { score: 0.0, verdict: Verdict::Inconclusive, critical_failure: None };
    }
    let mut groups: Vec<&str> = results.iter().map(|(_, c)| c.group.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    let weighted: f64 = weights.iter().filter(|(g, _)| groups.contains(&g.as_str())).map(|(_, w)| w).sum();
    let unweighted = groups.iter().filter(|g| !weights.iter().any(|(w, _)| w == **g)).count();
    let share = if unweighted == 0 { 0.0 } else { (100.0 - weighted).max(0.0) / unweighted as f64 };
    let mut total = 0.0;
    let mut weight_sum = 0.0;
    for group in &groups {
        let members: Vec<&MetricResult> = results.iter().filter(|(_, c)| c.group == *group).map(|(r, _)| r).collect();
        let passed = members.iter().filter(|r| !r.failed).count() as f64 / members.len() as f64;
        let weight = weights.iter().find(|(g, _)| g == group).map_or(share, |(_, w)| *w);
        total += passed * weight;
        weight_sum += weight;
    }
    let score = if weight_sum > 0.0 { total / weight_sum * 100.0 } else { 0.0 };
    let verdict = if score >= thresholds.pass {
        Verdict::Pass
    } else if score >= thresholds.marginal {
        Verdict::Marginal
    } else {
        Verdict::Fail
    };
    Score { score, verdict, critical_failure: None }
}
