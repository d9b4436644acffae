//! The workload spec, `paved.yaml`: parsing and validation.
//!
//! Validation happens while deserialising: every field has a type whose
//! `Deserialize` checks it, so an error carries the line and column where the
//! bad value stands, and unknown fields are rejected the same way. The few
//! rules that relate two fields are checked afterwards and pointed at the
//! second field's line.
//!
//! ```yaml
//! name: hello                  # DNS label: a-z, 0-9, '-', at most 63
//! command: ["hello", "--x"]    # or artifact: ./bin/hello (exactly one)
//! port: 8080                   # the port it listens on; the local runtime
//!                              # assigns its own and passes it in $PORT
//! health:
//!   path: /healthz             # HTTP GET, 2xx means healthy
//!   period: 1s
//!   timeout: 1s
//!   failure_threshold: 3
//!   startup_timeout: 30s
//! env:
//!   HELLO_VERSION: v1
//! replicas: 1
//! resources:                   # what the policy gate and Kubernetes expect
//!   requests: {cpu: 100m, memory: 64Mi}
//!   limits: {cpu: 500m, memory: 128Mi}
//! security:
//!   run_as_root: false         # the default; true is denied by policy
//!   privileged: false
//! secrets: [db-password]       # declared references; env uses ${secret:db-password}
//! databases: [orders]          # dynamic PostgreSQL credentials it may ask for
//! certificate: true            # may enrol an X.509 certificate for its own SPIFFE id
//! rollout:                     # how a new revision takes over (all optional)
//!   steps: [1, 5, 25, 50, 100] # canary traffic weights in percent
//!   interval: 30s              # each step is held this long, then checked
//!   max_error_rate: 0.01       # share of 5xx answers the canary may give
//!   max_p99_latency: 500ms     # the canary's p99 latency limit
//! analysis: …                  # how each step is judged (see `analysis`)
//! ```

mod analysis;
mod diff;
mod overlay;
mod score;
mod types;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::{collections::BTreeMap, time::Duration};

pub use analysis::{Analysis, Direction, Judge, Metric, Slo, Source};
pub use diff::{FieldChange, diff};
use overlay::locate;
pub use overlay::{Rendered, overlay_files, render};
use types::{Command, Cpu, DurationStr, HttpPath, Memory, Port, Ratio, Replicas, Steps, Threshold};
pub use types::{EnvName, Name};

/// A validated workload spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadSpec {
    pub name: String,
    pub run: Run,
    pub port: u16,
    pub health: HealthCheck,
    pub env: BTreeMap<String, String>,
    pub replicas: u32,
    pub resources: Resources,
    pub security: Security,
    /// Names of the secrets the workload may read (`${secret:<name>}` in env).
    pub secrets: Vec<String>,
    /// Databases configured at the broker whose dynamic credentials the
    /// workload may ask for (`database:creds:<name>`). Left out of the
    /// canonical form when empty, so older digests hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<String>,
    /// Whether its identity may enrol a certificate for its own SPIFFE id
    /// (`certs:issue:<env>/<workload>`), for mTLS. Left out of the
    /// canonical form when false, so older digests hold.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub certificate: bool,
    pub rollout: RolloutPolicy,
    /// As written; [`WorkloadSpec::analysis`] gives the defaults when absent.
    /// Absent, it is left out of the canonical form, so a spec written
    /// before analyses existed keeps its digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
}

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

/// A spec error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the offending field, e.g. `health.path`; empty for the document.
    pub field: String,
    pub message: String,
}

impl SpecError {
    /// The field violation of an RPC that carried the spec in `field`:
    /// (`field.<path>`, the located message).
    pub fn violation(&self, field: &str) -> (String, String) {
        let path = if self.field.is_empty() { field.to_string() } else { format!("{field}.{}", self.field) };
        (path, self.to_string())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Name,
    command: Option<Command>,
    artifact: Option<String>,
    port: Option<Port>,
    health: Option<RawHealth>,
    #[serde(default)]
    env: BTreeMap<EnvName, String>,
    replicas: Option<Replicas>,
    resources: Option<RawResources>,
    security: Option<RawSecurity>,
    #[serde(default)]
    secrets: Vec<Name>,
    #[serde(default)]
    databases: Vec<Name>,
    #[serde(default)]
    certificate: bool,
    rollout: Option<RawRollout>,
    analysis: Option<analysis::RawAnalysis>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResources {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    #[serde(default)]
    run_as_root: bool,
    #[serde(default)]
    privileged: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRollout {
    steps: Option<Steps>,
    interval: Option<DurationStr>,
    max_error_rate: Option<Ratio>,
    max_p99_latency: Option<DurationStr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    path: Option<HttpPath>,
    period: Option<DurationStr>,
    timeout: Option<DurationStr>,
    failure_threshold: Option<Threshold>,
    startup_timeout: Option<DurationStr>,
}

/// Whether `s` names content by digest: `sha256:` and 64 hex digits.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Checks a name (of a workload or an environment): a DNS label.
pub fn validate_name(name: &str) -> Result<(), String> {
    types::check_name(name)
}

/// Parses and validates `text`, the content of `file`: a `paved.yaml`, or a
/// Score file (`apiVersion: score.dev/v1b1`).
pub fn parse(text: &str, file: &str) -> Result<WorkloadSpec, SpecError> {
    if text.trim().is_empty() {
        return Err(error(file, 1, 1, "", "the spec is empty: it needs at least `name` and `command` or `artifact`"));
    }
    if score::is_score(text) {
        return score::parse(text, file);
    }
    let raw: RawSpec = yaml_serde::from_str(text).map_err(|e| from_yaml(file, &e))?;
    let run = match (raw.command, raw.artifact) {
        (Some(command), None) => Run::Command(command.0),
        (None, Some(artifact)) if !artifact.trim().is_empty() => Run::Artifact(artifact),
        (None, Some(_)) => return Err(at_key(text, file, "artifact", "`artifact` must be a path")),
        (None, None) => {
            return Err(error(file, 1, 1, "command", "set `command` (program and arguments) or `artifact` (an executable)"));
        }
        (Some(_), Some(_)) => {
            return Err(at_key(text, file, "artifact", "set either `command` or `artifact`, not both"));
        }
    };
    let defaults = HealthCheck::default();
    let health = match raw.health {
        None => defaults,
        Some(h) => HealthCheck {
            path: h.path.map_or(defaults.path, |p| p.0),
            period: h.period.map_or(defaults.period, |d| d.0),
            timeout: h.timeout.map_or(defaults.timeout, |d| d.0),
            failure_threshold: h.failure_threshold.map_or(defaults.failure_threshold, |t| t.0),
            startup_timeout: h.startup_timeout.map_or(defaults.startup_timeout, |d| d.0),
        },
    };
    if health.timeout > health.period {
        return Err(at_key(text, file, "timeout", "`health.timeout` must not exceed `health.period`"));
    }
    let rollout = raw.rollout.map_or_else(RolloutPolicy::default, |r| {
        let d = RolloutPolicy::default();
        RolloutPolicy {
            steps: r.steps.map_or(d.steps, |s| s.0),
            interval: r.interval.map_or(d.interval, |i| i.0),
            max_error_ppm: r.max_error_rate.map_or(d.max_error_ppm, |e| e.0),
            max_p99_latency: r.max_p99_latency.map_or(d.max_p99_latency, |l| l.0),
        }
    });
    let analysis = raw.analysis.map(|a| a.build(&rollout, text, file)).transpose()?;
    Ok(WorkloadSpec {
        name: raw.name.0,
        run,
        port: raw.port.map_or(8080, |p| p.0),
        health,
        env: raw.env.into_iter().map(|(k, v)| (k.0, v)).collect(),
        replicas: raw.replicas.map_or(1, |r| r.0),
        resources: raw.resources.map(Resources::from).unwrap_or_default(),
        security: raw.security.map_or_else(Security::default, |s| Security { run_as_root: s.run_as_root, privileged: s.privileged }),
        secrets: raw.secrets.into_iter().map(|n| n.0).collect(),
        databases: raw.databases.into_iter().map(|n| n.0).collect(),
        certificate: raw.certificate,
        rollout,
        analysis,
    })
}

impl WorkloadSpec {
    /// How the canary analyzer judges this workload's rollout steps: as
    /// written, or the defaults (error rate and p99 against the rollout's
    /// limits).
    pub fn analysis(&self) -> Analysis {
        self.analysis.clone().unwrap_or_else(|| Analysis::defaults(&self.rollout))
    }

    /// `sha256:<hex>` of the spec's canonical JSON form: the same spec gives
    /// the same digest whatever its YAML formatting.
    pub fn digest(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(&canonical)))
    }
}

pub(crate) fn error(file: &str, line: usize, column: usize, field: &str, message: impl Into<String>) -> SpecError {
    SpecError { file: file.to_string(), line, column, field: field.to_string(), message: message.into() }
}

/// Points an error at the first line that sets `key` (at any depth).
fn at_key(text: &str, file: &str, key: &str, message: &str) -> SpecError {
    let needle = format!("{key}:");
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with(&needle) {
            return error(file, n + 1, line.len() - trimmed.len() + 1, key, message);
        }
    }
    error(file, 1, 1, key, message)
}

pub(crate) fn from_yaml(file: &str, e: &yaml_serde::Error) -> SpecError {
    let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
    // The message reads "<path>: <what> at line L column C"; keep the path as
    // the field and drop the location, which we print in front.
    let mut message = e.to_string();
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    let (field, message) = match message.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => (path.to_string(), rest.to_string()),
        _ => (String::new(), message),
    };
    error(file, line, column, &field, message)
}

#[cfg(test)]
mod tests;
