//! The parts of a workload spec below the whole ([`Resources`], [`Security`],
//! [`RolloutPolicy`], [`Run`], [`HealthCheck`]) and the raw form resources
//! are read in, shared by the native and the Score reader. They depend on
//! nothing but the field types, so `analysis` can use the rollout policy
//! while the spec holds an analysis.

use crate::types::{Cpu, Memory};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// CPU and memory, as Kubernetes quantities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Resources {
    pub requests: Quantities,
    pub limits: Quantities,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Quantities {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

impl Quantities {
    /// The CPU quantity in cores (`250m` is 0.25).
    pub fn cpu_cores(&self) -> Option<f64> {
        let cpu = self.cpu.as_deref()?;
        match cpu.strip_suffix('m') {
            Some(millis) => millis.parse::<f64>().ok().map(|m| m / 1000.0),
            None => cpu.parse().ok(),
        }
    }

    /// The memory quantity in bytes (`64Mi` is 64 × 2²⁰, `1G` is 10⁹).
    pub fn memory_bytes(&self) -> Option<f64> {
        let memory = self.memory.as_deref()?;
        const UNITS: [(&str, f64); 8] = [
            ("Ki", 1024.0),
            ("Mi", 1048576.0),
            ("Gi", 1073741824.0),
            ("Ti", 1099511627776.0),
            ("K", 1e3),
            ("M", 1e6),
            ("G", 1e9),
            ("T", 1e12),
        ];
        let (digits, unit) = UNITS.iter().find_map(|(u, f)| memory.strip_suffix(u).map(|d| (d, *f))).unwrap_or((memory, 1.0));
        digits.parse::<f64>().ok().map(|n| n * unit)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Security {
    pub run_as_root: bool,
    pub privileged: bool,
}

/// How a new revision takes over from the stable one: the canary's traffic
/// steps, how long each is held, and the limits its gate checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutPolicy {
    pub steps: Vec<u32>,
    #[serde(with = "millis")]
    pub interval: Duration,
    /// Parts per million of the canary's answers that may be 5xx.
    pub max_error_ppm: u32,
    #[serde(with = "millis")]
    pub max_p99_latency: Duration,
}

impl Default for RolloutPolicy {
    fn default() -> Self {
        Self {
            steps: vec![1, 5, 25, 50, 100],
            interval: Duration::from_secs(30),
            max_error_ppm: 10_000,
            max_p99_latency: Duration::from_millis(500),
        }
    }
}

/// What the runtime starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Run {
    /// Program and arguments; a bare program name is looked up on `PATH`.
    Command(Vec<String>),
    /// Path of an executable, relative to the spec's directory.
    Artifact(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthCheck {
    pub path: String,
    #[serde(with = "millis")]
    pub period: Duration,
    #[serde(with = "millis")]
    pub timeout: Duration,
    pub failure_threshold: u32,
    #[serde(with = "millis")]
    pub startup_timeout: Duration,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            path: "/healthz".into(),
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            failure_threshold: 3,
            startup_timeout: Duration::from_secs(30),
        }
    }
}

mod millis {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResources {
    requests: Option<RawQuantities>,
    limits: Option<RawQuantities>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuantities {
    cpu: Option<Cpu>,
    memory: Option<Memory>,
}

impl From<RawResources> for Resources {
    fn from(raw: RawResources) -> Self {
        Self { requests: raw.requests.into(), limits: raw.limits.into() }
    }
}

impl From<Option<RawQuantities>> for Quantities {
    fn from(raw: Option<RawQuantities>) -> Self {
        let raw = raw.unwrap_or(RawQuantities { cpu: None, memory: None });
        Self { cpu: raw.cpu.map(|c| c.0), memory: raw.memory.map(|m| m.0) }
    }
}

/// Whether `s` names content by digest: `sha256:` and 64 hex digits.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}
