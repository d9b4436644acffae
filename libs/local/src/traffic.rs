//! What went through a proxy, per revision: counts by status class and a
//! latency histogram (to the response headers), as Prometheus families —
//! `paved_proxy_requests_total{workload,revision,class}` and
//! `paved_proxy_request_duration_seconds{workload,revision}` — and
//! in-process ([`Traffic`]), with finer latency buckets, for the rollout
//! gate and the API.

use hyper::StatusCode;
use paved_judge::histogram;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
};
use std::{
    sync::{
        LazyLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Latency buckets of the in-process stats: [`histogram`]'s, 0.1 ms × 1.1^k,
/// so a percentile is known within 10% (the Prometheus buckets double: too
/// coarse to judge on).
pub(crate) const LATENCY_BUCKETS: usize = histogram::BUCKETS;

/// One revision's requests through a proxy, counted lock-free.
pub(crate) struct RevisionStats {
    /// 1xx … 5xx
    classes: [AtomicU64; 5],
    latency: [AtomicU64; LATENCY_BUCKETS],
}

impl Default for RevisionStats {
    fn default() -> Self {
        Self { classes: std::array::from_fn(|_| AtomicU64::new(0)), latency: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

impl RevisionStats {
    pub(crate) fn record(&self, status: StatusCode, elapsed: Duration) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        self.classes[class].fetch_add(1, Ordering::Relaxed);
        self.latency[histogram::bucket_of(elapsed.as_secs_f64())].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds counts made elsewhere (by the proxy's previous process).
    pub(crate) fn add(&self, t: &Traffic) {
        for (counter, n) in self.classes.iter().zip(t.classes) {
            counter.fetch_add(n, Ordering::Relaxed);
        }
        for (counter, n) in self.latency.iter().zip(&t.latency) {
            counter.fetch_add(*n, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> Traffic {
        Traffic {
            classes: std::array::from_fn(|i| self.classes[i].load(Ordering::Relaxed)),
            latency: self.latency.iter().map(|b| b.load(Ordering::Relaxed)).collect(),
        }
    }
}

/// A revision's requests: counts by status class and a latency histogram.
/// Counters only grow, so the traffic of an interval is `later.since(&earlier)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traffic {
    /// Requests answered 1xx … 5xx.
    pub classes: [u64; 5],
    /// Counts per latency bucket (see [`Traffic::buckets`]).
    pub latency: Vec<u64>,
}

impl Default for Traffic {
    fn default() -> Self {
        Self { classes: [0; 5], latency: vec![0; LATENCY_BUCKETS] }
    }
}

impl Traffic {
    pub fn since(&self, earlier: &Traffic) -> Traffic {
        Traffic {
            classes: std::array::from_fn(|i| self.classes[i].saturating_sub(earlier.classes[i])),
            latency: self
                .latency
                .iter()
                .zip(earlier.latency.iter().chain(std::iter::repeat(&0)))
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
        }
    }

    pub fn total(&self) -> u64 {
        self.classes.iter().sum()
    }

    /// Requests answered 5xx (including the proxy's own 502s).
    pub fn errors(&self) -> u64 {
        self.classes[4]
    }

    /// The upper bound of the bucket holding the `q` quantile (the
    /// unbounded last bucket at the last finite bound); None without requests.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        histogram::quantile(&self.latency, q).map(|i| Duration::from_secs_f64(histogram::value(i)))
    }

    /// (inclusive upper bound in seconds, count) per bucket.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.latency.iter().enumerate().map(|(i, c)| (histogram::bound(i), *c))
    }

    /// Counts by class name: `2xx`, `5xx`, …
    pub fn by_class(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.classes.iter().enumerate().map(|(i, c)| (format!("{}xx", i + 1), *c))
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    workload: String,
    revision: String,
    class: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevisionLabels {
    workload: String,
    revision: String,
}

struct Metrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RevisionLabels, Histogram>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let requests = Family::<RequestLabels, Counter>::default();
    // 0.5 ms … ~16 s, doubling.
    let duration = Family::<RevisionLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_5, 2.0, 16)));
    paved_telemetry::register("proxy_requests", "Requests through workload proxies, by revision and status class", requests.clone());
    paved_telemetry::register("proxy_request_duration_seconds", "Time to the response headers through workload proxies", duration.clone());
    Metrics { requests, duration }
});

pub(crate) fn record(workload: &str, revision: &str, status: StatusCode, elapsed: Duration) {
    let class = format!("{}xx", status.as_u16() / 100);
    let metrics = &*METRICS;
    metrics.requests.get_or_create(&RequestLabels { workload: workload.into(), revision: revision.into(), class }).inc();
    metrics.duration.get_or_create(&RevisionLabels { workload: workload.into(), revision: revision.into() }).observe(elapsed.as_secs_f64());
}
