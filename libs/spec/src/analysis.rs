//! The `analysis` section: how the canary analyzer judges each rollout step.
//!
//! ```yaml
//! analysis:                      # all optional; without it: errors and p99
//!   alpha: 0.01                  # chance, over a rollout, of failing a canary
//!                                # that is no worse than its baseline
//!   pass_score: 95               # the Kayenta judge's score thresholds
//!   marginal_score: 75
//!   max_extensions: 3            # an inconclusive step is held this many
//!                                # more intervals, then rolled back
//!   require_traffic: false       # true: a step without requests is
//!                                # inconclusive (default: judged on health)
//!   metrics:                     # by name
//!     errors:
//!       kind: error-rate         # error-rate | latency | prometheus
//!       slo: 0.01                # absolute limit on the canary alone
//!       max_change: 0.5          # allowed relative change against the baseline
//!       critical: true           # a failure fails the step whatever the rest
//!       judges: [sequential, slo] # any of sequential, kayenta, slo; default
//!                                # sequential (prometheus: kayenta), and
//!                                # slo when the metric has one
//!     p99:
//!       kind: latency
//!       quantile: 0.99
//!       slo: 500ms
//!       max_change: 0.1
//!     queue:
//!       kind: prometheus
//!       query: sum(queue_depth{revision="$REVISION"})
//!       direction: increase      # increase | decrease | either: which way harms
//!       max_change: 0.2
//!       weight: 2                # its share of the score
//!       group: saturation        # Kayenta metric group (default: its own);
//!                                # a group weighs its metrics' weights
//!       nan: 0                   # a value that is not a number counts as 0
//!                                # (default `remove`: dropped)
//!       min_samples: 20          # fewer values: no data (never a pass)
//! ```
//!
//! Numbers are kept in integer units (parts per million, milliseconds) so
//! that a spec stays comparable and hashable.

use crate::{
    error::{SpecError, error, locate},
    parts::RolloutPolicy,
    types::{Ratio, Score, parse_duration, ppm},
};
use serde::{
    Deserialize, Deserializer, Serialize,
    de::{self, Visitor},
};
use std::{collections::BTreeMap, fmt};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Analysis {
    /// Parts per million.
    pub alpha_ppm: u32,
    pub pass_score: u32,
    pub marginal_score: u32,
    pub max_extensions: u32,
    pub require_traffic: bool,
    pub metrics: BTreeMap<String, Metric>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metric {
    pub source: Source,
    pub direction: Direction,
    pub slo: Option<Slo>,
    /// Allowed relative change against the baseline, in parts per million
    /// (100,000 lets the canary differ by 10%).
    pub max_change_ppm: u32,
    pub critical: bool,
    pub weight: u32,
    pub min_samples: u32,
    pub judges: Vec<Judge>,
    /// The Kayenta judge's metric group; a group's weight is the sum of
    /// its metrics' weights. None: the metric is a group of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Values that are not numbers (a failed scrape, 0/0) count as this
    /// value, in millionths; None: they are dropped (Kayenta's NaN strategy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nan_micros: Option<i64>,
}

/// The judges a metric is judged by; they combine (any failure fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Judge {
    /// Request-level test of canary against baseline, valid at every look
    /// (proxy metrics only: it counts requests).
    Sequential,
    /// Mann-Whitney U and the Hodges-Lehmann shift on the metric's values
    /// (per look for proxy metrics, per sample for Prometheus).
    Kayenta,
    /// The metric's absolute limit on the canary alone (burn rate for
    /// proxy metrics, the mean for Prometheus).
    Slo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The proxy's share of 5xx answers.
    ErrorRate,
    /// The proxy's latency at a quantile, in parts per million (990,000: p99).
    Latency { quantile_ppm: u32 },
    /// A PromQL query; `$REVISION` stands for the revision judged.
    Prometheus { query: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Increase,
    Decrease,
    Either,
}

/// An absolute limit on the canary alone, in the metric's unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Slo {
    ErrorRatePpm(u32),
    LatencyMs(u64),
    /// A Prometheus value, in millionths (the query's unit × 10⁻⁶).
    ValueMicros(i64),
}

impl Analysis {
    /// What a spec without an `analysis` section gets: the error rate and
    /// p99 latency, with the rollout's limits as their SLOs.
    pub fn defaults(rollout: &RolloutPolicy) -> Self {
        Self {
            alpha_ppm: 10_000,
            pass_score: 95,
            marginal_score: 75,
            max_extensions: 3,
            require_traffic: false,
            metrics: default_metrics(rollout),
        }
    }
}

fn default_metrics(rollout: &RolloutPolicy) -> BTreeMap<String, Metric> {
    let metric = |source, slo, max_change_ppm, critical| Metric {
        source,
        direction: Direction::Increase,
        slo: Some(slo),
        max_change_ppm,
        critical,
        weight: 1,
        min_samples: 50,
        judges: vec![Judge::Sequential, Judge::Slo],
        group: None,
        nan_micros: None,
    };
    let p99 = u64::try_from(rollout.max_p99_latency.as_millis()).unwrap_or(u64::MAX);
    BTreeMap::from([
        ("errors".to_string(), metric(Source::ErrorRate, Slo::ErrorRatePpm(rollout.max_error_ppm), 500_000, true)),
        ("p99".to_string(), metric(Source::Latency { quantile_ppm: 990_000 }, Slo::LatencyMs(p99), 100_000, false)),
    ])
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAnalysis {
    alpha: Option<Ratio>,
    pass_score: Option<Score>,
    marginal_score: Option<Score>,
    max_extensions: Option<u32>,
    require_traffic: Option<bool>,
    metrics: Option<BTreeMap<crate::types::Name, RawMetric>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    kind: Kind,
    quantile: Option<Ratio>,
    query: Option<String>,
    direction: Option<Direction>,
    slo: Option<Number>,
    max_change: Option<Number>,
    #[serde(default)]
    critical: bool,
    weight: Option<u32>,
    min_samples: Option<u32>,
    judges: Option<Vec<Judge>>,
    group: Option<crate::types::Name>,
    nan: Option<Nan>,
}

/// `nan: remove` (the default) or `nan: <number>`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Nan {
    Value(f64),
    Word(String),
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Kind {
    ErrorRate,
    Latency,
    Prometheus,
}

impl RawAnalysis {
    /// Validates what relates fields to each other, pointing errors at the
    /// field in `text` (of `file`).
    pub(crate) fn build(self, rollout: &RolloutPolicy, text: &str, file: &str) -> Result<Analysis, SpecError> {
        let at = |path: &[&str], message: String| {
            let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
            // The deepest key that can be found (flow-style maps hide theirs).
            let (line, column) = (1..=path.len()).rev().find_map(|n| locate(text, &path[..n])).unwrap_or((1, 1));
            error(file, line, column, &path.join("."), message)
        };
        let defaults = Analysis::defaults(rollout);
        let pass_score = self.pass_score.map_or(defaults.pass_score, |s| s.0);
        let marginal_score = self.marginal_score.map_or(defaults.marginal_score, |s| s.0);
        if marginal_score > pass_score {
            return Err(at(
                &["analysis", "marginal_score"],
                format!("marginal_score ({marginal_score}) must not exceed pass_score ({pass_score})"),
            ));
        }
        let alpha_ppm = match self.alpha {
            Some(a) if a.0 == 0 || a.0 > 500_000 => {
                let got = f64::from(a.0) / 1e6;
                return Err(at(&["analysis", "alpha"], format!("alpha must be more than 0 and at most 0.5, got {got}")));
            }
            Some(a) => a.0,
            None => defaults.alpha_ppm,
        };
        let metrics = match self.metrics {
            None => defaults.metrics,
            Some(raw) if raw.is_empty() => {
                return Err(at(&["analysis", "metrics"], "name at least one metric, or leave `metrics` out for the defaults".into()));
            }
            Some(raw) => {
                let mut metrics = BTreeMap::new();
                for (name, m) in raw {
                    let here = |field: &str, message: String| at(&["analysis", "metrics", &name.0, field], message);
                    metrics.insert(name.0.clone(), m.build(&here)?);
                }
                metrics
            }
        };
        let max_extensions = self.max_extensions.unwrap_or(defaults.max_extensions);
        if max_extensions > 100 {
            return Err(at(&["analysis", "max_extensions"], format!("max_extensions must be at most 100, got {max_extensions}")));
        }
        let require_traffic = self.require_traffic.unwrap_or(defaults.require_traffic);
        Ok(Analysis { alpha_ppm, pass_score, marginal_score, max_extensions, require_traffic, metrics })
    }
}

impl RawMetric {
    fn build(self, at: &dyn Fn(&str, String) -> SpecError) -> Result<Metric, SpecError> {
        let kind = match self.kind {
            Kind::ErrorRate => "error-rate",
            Kind::Latency => "latency",
            Kind::Prometheus => "prometheus",
        };
        if self.quantile.is_some() && !matches!(self.kind, Kind::Latency) {
            return Err(at("quantile", format!("`quantile` applies to latency metrics, not {kind}")));
        }
        if self.query.is_some() && !matches!(self.kind, Kind::Prometheus) {
            return Err(at("query", format!("`query` applies to prometheus metrics, not {kind}")));
        }
        let source = match self.kind {
            Kind::ErrorRate => Source::ErrorRate,
            Kind::Latency => match self.quantile {
                Some(q) if q.0 == 0 || q.0 == 1_000_000 => {
                    let got = f64::from(q.0) / 1e6;
                    return Err(at("quantile", format!("quantile must be between 0 and 1 exclusive (0.99 for p99), got {got}")));
                }
                q => Source::Latency { quantile_ppm: q.map_or(990_000, |q| q.0) },
            },
            Kind::Prometheus => match self.query {
                Some(q) if !q.trim().is_empty() => Source::Prometheus { query: q },
                _ => return Err(at("kind", "a prometheus metric needs a `query`".into())),
            },
        };
        let slo = match (self.slo, self.kind) {
            (None, _) => None,
            (Some(Number::Value(v)), Kind::ErrorRate) if (0.0..=1.0).contains(&v) => Some(Slo::ErrorRatePpm(ppm(v))),
            (Some(Number::Value(v)), Kind::Prometheus) => Some(Slo::ValueMicros((v * 1e6).round() as i64)),
            (Some(Number::Duration(ms)), Kind::Latency) => Some(Slo::LatencyMs(ms)),
            (Some(_), Kind::ErrorRate) => return Err(at("slo", "an error-rate SLO is a share between 0 and 1, e.g. 0.01".into())),
            (Some(_), Kind::Latency) => return Err(at("slo", "a latency SLO is a duration, e.g. 500ms".into())),
            (Some(_), Kind::Prometheus) => return Err(at("slo", "a prometheus SLO is a number in the query's unit".into())),
        };
        let max_change_ppm = match self.max_change {
            None => 100_000,
            Some(Number::Value(v)) if (0.0..=100.0).contains(&v) => ppm(v),
            Some(_) => return Err(at("max_change", "max_change is a relative change between 0 and 100, e.g. 0.1 for 10%".into())),
        };
        let weight = self.weight.unwrap_or(1);
        if weight > 1000 {
            return Err(at("weight", format!("weight must be at most 1000, got {weight}")));
        }
        let min_samples = self.min_samples.unwrap_or(50);
        if !(1..=1_000_000).contains(&min_samples) {
            return Err(at("min_samples", format!("min_samples must be between 1 and 1000000, got {min_samples}")));
        }
        let direction = self.direction.unwrap_or(Direction::Increase);
        let judges = match self.judges {
            Some(j) if j.is_empty() => return Err(at("judges", "name at least one judge, or leave `judges` out for the defaults".into())),
            Some(mut j) => {
                j.sort_unstable();
                j.dedup();
                j
            }
            // The SLO guard wherever there is an SLO to guard.
            None => {
                let first = if matches!(self.kind, Kind::Prometheus) { Judge::Kayenta } else { Judge::Sequential };
                if slo.is_some() { vec![first, Judge::Slo] } else { vec![first] }
            }
        };
        if matches!(self.kind, Kind::Prometheus) && judges.contains(&Judge::Sequential) {
            return Err(at("judges", "the sequential judge counts requests: use it on error-rate and latency metrics".into()));
        }
        if judges.contains(&Judge::Slo) && slo.is_none() {
            return Err(at("judges", "the slo judge needs an `slo` on the metric".into()));
        }
        if slo.is_some() && self.direction == Some(Direction::Either) {
            return Err(at("slo", "an SLO is a limit on one side: give the metric direction increase or decrease".into()));
        }
        let nan_micros = match self.nan {
            None => None,
            Some(Nan::Word(w)) if w == "remove" => None,
            Some(Nan::Value(v)) if v.is_finite() => Some((v * 1e6).round() as i64),
            Some(_) => return Err(at("nan", "nan is `remove` or the number a value that is not one counts as, e.g. 0".into())),
        };
        let group = self.group.map(|g| g.0);
        Ok(Metric { source, direction, slo, max_change_ppm, critical: self.critical, weight, min_samples, judges, group, nan_micros })
    }
}

/// A finite number, or a duration (`500ms`) in milliseconds.
#[derive(Debug, Clone, Copy)]
enum Number {
    Value(f64),
    Duration(u64),
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or a duration such as 500ms")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
                if v.is_finite() { Ok(Number::Value(v)) } else { Err(E::custom(format!("must be a finite number, got {v}"))) }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
                Ok(Number::Value(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
                Ok(Number::Value(v as f64))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Number, E> {
                let d = parse_duration(s).map_err(E::custom)?;
                Ok(Number::Duration(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
            }
        }
        d.deserialize_any(V)
    }
}
