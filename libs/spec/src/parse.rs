//! Reading a spec: [`parse`] takes a native `paved.yaml` (validated while it
//! is deserialised, see the crate doc) or hands a Score file to `score`, and
//! assembles the [`WorkloadSpec`].

use crate::{
    analysis,
    delivery::{self, OnRotation},
    error::{SpecError, at_key, error, from_yaml, locate},
    parts::{HealthCheck, RawResources, Resources, RolloutPolicy, Run, Security},
    schedule::RawSchedule,
    score,
    types::{self, Command, DurationStr, HttpPath, Port, Ratio, Replicas, Steps, Threshold},
    types::{EnvName, Name},
    workload::WorkloadSpec,
};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Name,
    team: Option<Name>,
    command: Option<Command>,
    artifact: Option<String>,
    port: Option<Port>,
    health: Option<RawHealth>,
    #[serde(default, deserialize_with = "crate::types::env_values")]
    env: BTreeMap<EnvName, String>,
    replicas: Option<Replicas>,
    resources: Option<RawResources>,
    security: Option<RawSecurity>,
    #[serde(default)]
    secrets: Vec<Name>,
    #[serde(default)]
    secret_files: Vec<Name>,
    #[serde(default)]
    on_rotation: OnRotation,
    #[serde(default)]
    databases: Vec<Name>,
    #[serde(default)]
    certificate: bool,
    rollout: Option<RawRollout>,
    analysis: Option<analysis::RawAnalysis>,
    schedule: Option<RawSchedule>,
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

/// Checks a name (of a workload or an environment): a DNS label.
pub fn validate_name(name: &str) -> Result<(), String> {
    types::check_name(name)
}

/// Parses and validates `text`, the content of `file`: a `paved.yaml`, or a
/// Score file (`apiVersion: score.dev/v1b1`).
pub fn parse(text: &str, file: &str) -> Result<WorkloadSpec, SpecError> {
    let empty = || error(file, 1, 1, "", "the spec is empty: it needs at least `name` and `command` or `artifact`");
    if text.trim().is_empty() {
        return Err(empty());
    }
    if score::is_score(text) {
        return score::parse(text, file);
    }
    let raw: RawSpec = yaml_serde::from_str(text).map_err(|e| {
        // Only comments (or `---`): YAML would point past the last line.
        match yaml_serde::from_str::<yaml_serde::Value>(text) {
            Ok(yaml_serde::Value::Null) => empty(),
            _ => from_yaml(text, file, &e),
        }
    })?;
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
        // At the timeout when it is written; else at the period that is
        // shorter than the default timeout.
        let path = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        let (line, column) =
            locate(text, &path(&["health", "timeout"])).or_else(|| locate(text, &path(&["health", "period"]))).unwrap_or((1, 1));
        return Err(error(file, line, column, "health.timeout", "`health.timeout` must not exceed `health.period`"));
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
    let schedule = raw
        .schedule
        .map(|s| {
            s.build().map_err(|(field, message)| {
                let path = ["schedule".to_string(), field.to_string()];
                let (line, column) = locate(text, &path).unwrap_or((1, 1));
                error(file, line, column, &path.join("."), message)
            })
        })
        .transpose()?;
    let secrets: Vec<String> = raw.secrets.into_iter().map(|n| n.0).collect();
    let secret_files: Vec<String> = raw.secret_files.into_iter().map(|n| n.0).collect();
    undeclared_secrets(&raw.env, &secrets, &secret_files, text, file)?;
    Ok(WorkloadSpec {
        name: raw.name.0,
        team: raw.team.map(|t| t.0),
        run,
        port: raw.port.map_or(8080, |p| p.0),
        health,
        env: raw.env.into_iter().map(|(k, v)| (k.0, v)).collect(),
        replicas: raw.replicas.map_or(1, |r| r.0),
        resources: raw.resources.map(Resources::from).unwrap_or_default(),
        security: raw.security.map_or_else(Security::default, |s| Security { run_as_root: s.run_as_root, privileged: s.privileged }),
        secrets,
        secret_files,
        on_rotation: raw.on_rotation,
        databases: raw.databases.into_iter().map(|n| n.0).collect(),
        certificate: raw.certificate,
        rollout,
        analysis,
        schedule,
    })
}

/// Every secret an env value refers to or `secret_files` names must be
/// declared under `secrets`: the identity can read nothing else, and a
/// reference no identity can resolve is a mistake best shown here.
fn undeclared_secrets(
    env: &BTreeMap<EnvName, String>,
    secrets: &[String],
    files: &[String],
    text: &str,
    file: &str,
) -> Result<(), SpecError> {
    let declared = |name: &str| secrets.iter().any(|s| s == name);
    for (key, value) in env {
        if let Some(name) = delivery::references(value).into_iter().find(|n| !declared(n)) {
            let path = ["env".to_string(), key.0.clone()];
            let (line, column) = locate(text, &path).unwrap_or((1, 1));
            let message = format!("`${{secret:{name}}}` refers to a secret not declared under `secrets`");
            return Err(error(file, line, column, &path.join("."), message));
        }
    }
    if let Some(name) = files.iter().find(|n| !declared(n)) {
        return Err(at_key(text, file, "secret_files", &format!("`{name}` is not declared under `secrets`")));
    }
    Ok(())
}
