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
    sync::{LazyLock, Mutex},
    time::Duration,
};

/// Latency buckets of the in-process stats: [`histogram`]'s, 0.1 ms × 1.1^k,
/// so a percentile is known within 10% (the Prometheus buckets double: too
/// coarse to judge on).
pub(crate) const LATENCY_BUCKETS: usize = histogram::BUCKETS;

/// One revision's requests through a proxy. A request's class and its
/// latency are counted together, under one lock: read while a request was
/// being counted, separate counters gave a histogram holding more requests
/// than the classes (and a look the canary analyzer refused, in a rollout
/// that then rolled a good canary back).
#[derive(Default)]
pub(crate) struct RevisionStats {
    counts: Mutex<Traffic>,
}

impl RevisionStats {
    fn counts(&self) -> std::sync::MutexGuard<'_, Traffic> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn record(&self, status: StatusCode, elapsed: Duration) {
        let class = usize::from(status.as_u16() / 100).clamp(1, 5) - 1;
        let bucket = histogram::bucket_of(elapsed.as_secs_f64());
        let mut counts = self.counts();
        counts.classes[class] += 1;
        counts.latency[bucket] += 1;
    }

    /// Adds counts made elsewhere (by the proxy's previous process).
    pub(crate) fn add(&self, t: &Traffic) {
        let mut counts = self.counts();
        for (counter, n) in counts.classes.iter_mut().zip(t.classes) {
            *counter = counter.saturating_add(n);
        }
        for (counter, n) in counts.latency.iter_mut().zip(&t.latency) {
            *counter = counter.saturating_add(*n);
        }
    }

    pub(crate) fn snapshot(&self) -> Traffic {
        self.counts().clone()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Read while requests are being counted, a snapshot's histogram holds
    /// exactly the requests its classes do: a look built from two of them
    /// never counts more latencies than requests.
    #[test]
    fn a_snapshot_taken_mid_count_agrees_with_itself() {
        let stats = Arc::new(RevisionStats::default());
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let stats = stats.clone();
                std::thread::spawn(move || {
                    for i in 0..100_000u64 {
                        let status = if (i + w) % 7 == 0 { StatusCode::BAD_GATEWAY } else { StatusCode::OK };
                        stats.record(status, Duration::from_micros(100 + i % 5_000));
                    }
                })
            })
            .collect();
        let mut earlier = stats.snapshot();
        let mut looked = 0;
        while !writers.iter().all(|w| w.is_finished()) {
            let now = stats.snapshot();
            let look = now.since(&earlier);
            assert_eq!(now.latency.iter().sum::<u64>(), now.total(), "a snapshot disagrees with itself");
            assert_eq!(look.latency.iter().sum::<u64>(), look.total(), "an interval disagrees with itself");
            earlier = now;
            looked += 1;
        }
        for w in writers {
            w.join().expect("writer");
        }
        assert_eq!(stats.snapshot().total(), 200_000);
        assert!(looked > 0);
    }
}
