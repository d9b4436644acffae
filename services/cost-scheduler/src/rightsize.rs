//! Right-sizing: requests and limits recommended from measured usage — the
//! p95 of the CPU each replica used per sample interval and of its resident
//! memory (or the VPA's way: p90 plus 15% headroom) — with the evidence and
//! what the change saves a month by request. Pure: `api` reads the samples.

use crate::{forecast::MONTH_HOURS, prices::Prices};

/// At least this many samples (a few minutes at the default interval)
/// before anything is recommended: a guess is not a measurement.
pub const MIN_SAMPLES: usize = 10;
/// Floors: nothing is recommended below them.
const MIN_CPU_CORES: f64 = 0.005;
const MIN_MEMORY_BYTES: f64 = 16.0 * 1_048_576.0;

/// How a recommendation is made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Method {
    /// Of the samples, e.g. 95.
    pub percentile: f64,
    /// Added on top, e.g. 0.15.
    pub headroom: f64,
}

impl Method {
    pub const P95: Method = Method { percentile: 95.0, headroom: 0.0 };
    /// The VPA recommender's target: p90 with 15% headroom.
    pub const VPA: Method = Method { percentile: 90.0, headroom: 0.15 };
}

/// One sample of one replica: the cores it used on average over the
/// interval, and its resident memory when read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub cores: f64,
    pub memory_bytes: f64,
    pub memory_peak_bytes: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantities {
    pub cpu_cores: f64,
    pub memory_bytes: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    /// The percentile of use, before headroom.
    pub used: Quantities,
    pub requests: Quantities,
    pub limits: Quantities,
    /// The most any replica held.
    pub memory_peak_bytes: f64,
    pub samples: usize,
    /// What the new requests save a month (negative: cost more).
    pub monthly_saving: f64,
}

/// The `p`th percentile (nearest rank) of `values`, sorted in place.
fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// What was measured of a workload's replicas: cores and resident bytes,
/// one value per replica per sample (or per Prometheus step), and the most
/// resident memory any held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub cores: Vec<f64>,
    pub memory_bytes: Vec<f64>,
    pub memory_peak_bytes: f64,
}

impl Usage {
    pub fn from_samples(samples: &[Sample]) -> Self {
        Usage {
            cores: samples.iter().map(|s| s.cores).collect(),
            memory_bytes: samples.iter().map(|s| s.memory_bytes).collect(),
            memory_peak_bytes: samples.iter().map(|s| s.memory_peak_bytes.max(s.memory_bytes)).fold(0.0, f64::max),
        }
    }

    /// How many samples the evidence has: the fewer of the two kinds.
    pub fn samples(&self) -> usize {
        self.cores.len().min(self.memory_bytes.len())
    }
}

/// None with fewer than [`MIN_SAMPLES`] samples.
pub fn recommend(mut usage: Usage, method: Method, current: Quantities, replicas: u32, prices: Prices) -> Option<Recommendation> {
    let samples = usage.samples();
    if samples < MIN_SAMPLES {
        return None;
    }
    let used = Quantities {
        cpu_cores: percentile(&mut usage.cores, method.percentile),
        memory_bytes: percentile(&mut usage.memory_bytes, method.percentile),
    };
    let grow = 1.0 + method.headroom;
    // Millicores and MiB, rounded up: what a spec can say.
    let cpu = ((used.cpu_cores * grow).max(MIN_CPU_CORES) * 1000.0).ceil() / 1000.0;
    let mib = ((used.memory_bytes * grow).max(MIN_MEMORY_BYTES) / 1_048_576.0).ceil();
    let requests = Quantities { cpu_cores: cpu, memory_bytes: mib * 1_048_576.0 };
    let peak = usage.memory_peak_bytes.max(usage.memory_bytes.last().copied().unwrap_or(0.0));
    // Limits: bursts of CPU are throttled, not killed — twice the request;
    // memory over its limit is killed — the peak seen, with a fifth more.
    let limit_mib = ((peak * 1.2).max(requests.memory_bytes) / 1_048_576.0).ceil();
    let limits = Quantities { cpu_cores: requests.cpu_cores * 2.0, memory_bytes: limit_mib * 1_048_576.0 };
    let hours = MONTH_HOURS * f64::from(replicas.max(1));
    let monthly_saving =
        prices.cost(current.cpu_cores, current.memory_bytes, hours) - prices.cost(requests.cpu_cores, requests.memory_bytes, hours);
    Some(Recommendation { used, requests, limits, memory_peak_bytes: peak, samples, monthly_saving })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICES: Prices = Prices { cpu_core_hour: 0.031611, memory_gib_hour: 0.004237 };
    const MIB: f64 = 1_048_576.0;

    fn samples() -> Vec<Sample> {
        // 100 samples: cores 0.001 … 0.100, memory 20 … 119 MiB; one peak of 200 MiB.
        (1..=100)
            .map(|i| Sample {
                cores: f64::from(i) / 1000.0,
                memory_bytes: f64::from(19 + i) * MIB,
                memory_peak_bytes: if i == 50 { 200.0 * MIB } else { 0.0 },
            })
            .collect()
    }

    #[test]
    fn p95_of_use_rounded_up_with_limits_over_the_peak() {
        let current = Quantities { cpu_cores: 0.5, memory_bytes: 256.0 * MIB };
        let r = recommend(Usage::from_samples(&samples()), Method::P95, current, 2, PRICES).expect("enough samples");
        assert_eq!(r.used, Quantities { cpu_cores: 0.095, memory_bytes: 114.0 * MIB });
        assert_eq!(r.requests, Quantities { cpu_cores: 0.095, memory_bytes: 114.0 * MIB });
        assert_eq!(r.limits, Quantities { cpu_cores: 0.19, memory_bytes: 240.0 * MIB });
        assert_eq!((r.samples, r.memory_peak_bytes), (100, 200.0 * MIB));
        let saving = 2.0 * 730.0 * ((0.5 - 0.095) * 0.031611 + (256.0 - 114.0) / 1024.0 * 0.004237);
        assert!((r.monthly_saving - saving).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn the_vpa_way_adds_headroom_to_p90() {
        let current = Quantities { cpu_cores: 0.0, memory_bytes: 0.0 };
        let r = recommend(Usage::from_samples(&samples()), Method::VPA, current, 1, PRICES).expect("enough samples");
        assert_eq!(r.used.cpu_cores, 0.09);
        assert_eq!(r.requests.cpu_cores, 0.104, "0.09 × 1.15 = 0.1035, up to the millicore");
        assert_eq!(r.requests.memory_bytes, (109.0_f64 * 1.15).ceil() * MIB);
        assert!(r.monthly_saving < 0.0, "from nothing requested, it costs more");
    }

    #[test]
    fn idle_work_meets_the_floors_and_few_samples_recommend_nothing() {
        let idle = vec![Sample { cores: 0.0, memory_bytes: MIB, memory_peak_bytes: MIB }; MIN_SAMPLES];
        let current = Quantities { cpu_cores: 0.1, memory_bytes: 64.0 * MIB };
        let r = recommend(Usage::from_samples(&idle), Method::P95, current, 1, PRICES).expect("enough samples");
        assert_eq!(r.requests, Quantities { cpu_cores: 0.005, memory_bytes: 16.0 * MIB });
        assert_eq!(r.limits.memory_bytes, 16.0 * MIB);
        assert!(recommend(Usage::from_samples(&idle[1..]), Method::P95, current, 1, PRICES).is_none());
    }
}
