//! The spec as a message (`WorkloadSpec` in `spec.proto`), for clients that
//! build specs in code: written out as YAML and validated by the same
//! parser as `paved.yaml`, so that there is one set of rules and a
//! revision keeps one form (its YAML, whose digest is its identity). Errors
//! name the message's fields (`spec.health.timeout`), not lines of a file
//! the client never wrote.

use paved_grpc::status;
use paved_proto::prost_types::Duration;
use paved_proto::provisioner::v1::{self as pb, metric};
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use tonic::Status;

/// The spec text of a request that carries it as `spec_yaml` or as `spec`
/// (exactly one), checked here when it came as a message.
pub(crate) fn text<'a>(spec_yaml: &'a str, spec: Option<&pb::WorkloadSpec>) -> Result<Cow<'a, str>, Status> {
    let Some(spec) = spec else { return Ok(Cow::Borrowed(spec_yaml)) };
    if !spec_yaml.is_empty() {
        return Err(invalid("spec", "set spec_yaml or spec, not both".into()));
    }
    let value = document(spec).map_err(|(field, message)| invalid(&format!("spec.{field}"), message))?;
    let yaml = ordered(value).and_then(|v| yaml_serde::to_string(&v)).map_err(|e| status::internal(&e))?;
    if let Err(e) = paved_spec::parse(&yaml, "spec") {
        return Err(invalid(&branch(spec, field_of(&yaml, &e)), e.message));
    }
    Ok(Cow::Owned(yaml))
}

/// The request field errors about the spec name: `spec` when it came as a
/// message, else `spec_yaml`.
pub(crate) fn field(spec: Option<&pb::WorkloadSpec>) -> &'static str {
    if spec.is_some() { "spec" } else { "spec_yaml" }
}

/// The document's top-level keys in the order `document` put them
/// (paved.yaml's, as docs/spec.md writes it): a JSON map would sort them.
fn ordered(document: Fields) -> Result<yaml_serde::Value, yaml_serde::Error> {
    let mut out = yaml_serde::Mapping::new();
    for (key, value) in document {
        out.insert(yaml_serde::Value::String(key), yaml_serde::to_value(value)?);
    }
    Ok(yaml_serde::Value::Mapping(out))
}

fn invalid(field: &str, message: String) -> Status {
    status::invalid_argument("INVALID_SPEC", format!("{field}: {message}"), [(field.to_string(), message)])
}

/// A field that cannot be said in YAML, and why.
type Unsayable = (String, String);

/// The document's top level, in order.
type Fields = Vec<(String, Value)>;

fn document(s: &pb::WorkloadSpec) -> Result<Fields, Unsayable> {
    let mut doc: Fields = vec![("name".into(), json!(s.name))];
    put(&mut doc, "team", (!s.team.is_empty()).then(|| json!(s.team)));
    put(&mut doc, "command", (!s.command.is_empty()).then(|| json!(s.command)));
    put(&mut doc, "artifact", (!s.artifact.is_empty()).then(|| json!(s.artifact)));
    put(&mut doc, "port", s.port.map(Value::from));
    if let Some(h) = &s.health {
        let mut health = Map::new();
        put(&mut health, "path", (!h.path.is_empty()).then(|| json!(h.path)));
        put(&mut health, "period", millis(h.period.as_ref(), "health.period")?);
        put(&mut health, "timeout", millis(h.timeout.as_ref(), "health.timeout")?);
        put(&mut health, "failure_threshold", h.failure_threshold.map(Value::from));
        put(&mut health, "startup_timeout", millis(h.startup_timeout.as_ref(), "health.startup_timeout")?);
        doc.push(("health".into(), Value::Object(health)));
    }
    put(&mut doc, "env", (!s.env.is_empty()).then(|| json!(s.env)));
    put(&mut doc, "replicas", s.replicas.map(Value::from));
    if let Some(r) = &s.resources {
        let quantities = |q: &Option<pb::Quantities>| {
            q.as_ref().map(|q| {
                let mut m = Map::new();
                put(&mut m, "cpu", (!q.cpu.is_empty()).then(|| json!(q.cpu)));
                put(&mut m, "memory", (!q.memory.is_empty()).then(|| json!(q.memory)));
                Value::Object(m)
            })
        };
        let mut resources = Map::new();
        put(&mut resources, "requests", quantities(&r.requests));
        put(&mut resources, "limits", quantities(&r.limits));
        doc.push(("resources".into(), Value::Object(resources)));
    }
    if let Some(sec) = &s.security {
        doc.push(("security".into(), json!({"run_as_root": sec.run_as_root, "privileged": sec.privileged})));
    }
    put(&mut doc, "secrets", (!s.secrets.is_empty()).then(|| json!(s.secrets)));
    put(&mut doc, "secret_files", (!s.secret_files.is_empty()).then(|| json!(s.secret_files)));
    put(&mut doc, "on_rotation", (!s.on_rotation.is_empty()).then(|| json!(s.on_rotation)));
    put(&mut doc, "databases", (!s.databases.is_empty()).then(|| json!(s.databases)));
    put(&mut doc, "certificate", s.certificate.then_some(Value::Bool(true)));
    if let Some(r) = &s.rollout {
        let mut rollout = Map::new();
        put(&mut rollout, "steps", (!r.steps.is_empty()).then(|| json!(r.steps)));
        put(&mut rollout, "interval", millis(r.interval.as_ref(), "rollout.interval")?);
        put(&mut rollout, "max_error_rate", finite(r.max_error_rate, "rollout.max_error_rate")?);
        put(&mut rollout, "max_p99_latency", millis(r.max_p99_latency.as_ref(), "rollout.max_p99_latency")?);
        doc.push(("rollout".into(), Value::Object(rollout)));
    }
    if let Some(a) = &s.analysis {
        doc.push(("analysis".into(), analysis(a)?));
    }
    if let Some(sc) = &s.schedule {
        let mut schedule = Map::new();
        put(&mut schedule, "uptime", ranges(&sc.uptime));
        put(&mut schedule, "downtime", ranges(&sc.downtime));
        put(&mut schedule, "exclude", (!sc.exclude.is_empty()).then(|| json!(sc.exclude)));
        put(&mut schedule, "idle_after", seconds(sc.idle_after.as_ref(), "schedule.idle_after")?);
        doc.push(("schedule".into(), Value::Object(schedule)));
    }
    Ok(doc)
}

fn analysis(a: &pb::Analysis) -> Result<Value, Unsayable> {
    let mut out = Map::new();
    put(&mut out, "alpha", finite(a.alpha, "analysis.alpha")?);
    put(&mut out, "pass_score", a.pass_score.map(Value::from));
    put(&mut out, "marginal_score", a.marginal_score.map(Value::from));
    put(&mut out, "max_extensions", a.max_extensions.map(Value::from));
    put(&mut out, "require_traffic", a.require_traffic.map(Value::from));
    let mut metrics = Map::new();
    for (name, m) in &a.metrics {
        let at = |field: &str| format!("analysis.metrics.{name}.{field}");
        let mut metric = Map::new();
        let kind = match m.kind() {
            pb::MetricKind::Unspecified => return Err((at("kind"), "set the metric's kind".into())),
            pb::MetricKind::ErrorRate => "error-rate",
            pb::MetricKind::Latency => "latency",
            pb::MetricKind::Prometheus => "prometheus",
        };
        metric.insert("kind".into(), json!(kind));
        put(&mut metric, "quantile", finite(m.quantile, &at("quantile"))?);
        put(&mut metric, "query", (!m.query.is_empty()).then(|| json!(m.query)));
        let direction = match m.direction() {
            pb::Direction::Unspecified => None,
            pb::Direction::Increase => Some("increase"),
            pb::Direction::Decrease => Some("decrease"),
            pb::Direction::Either => Some("either"),
        };
        put(&mut metric, "direction", direction.map(Value::from));
        let slo = match &m.slo {
            None => None,
            Some(metric::Slo::SloValue(v)) => finite(Some(*v), &at("slo_value"))?,
            Some(metric::Slo::SloLatency(d)) => millis(Some(d), &at("slo_latency"))?,
        };
        put(&mut metric, "slo", slo);
        put(&mut metric, "max_change", finite(m.max_change, &at("max_change"))?);
        put(&mut metric, "critical", m.critical.then_some(Value::Bool(true)));
        put(&mut metric, "weight", m.weight.map(Value::from));
        put(&mut metric, "min_samples", m.min_samples.map(Value::from));
        let judges = m
            .judges()
            .map(|j| match j {
                pb::Judge::Unspecified => Err((at("judges"), "a judge is unset".to_string())),
                pb::Judge::Sequential => Ok("sequential"),
                pb::Judge::Kayenta => Ok("kayenta"),
                pb::Judge::Slo => Ok("slo"),
            })
            .collect::<Result<Vec<_>, _>>()?;
        put(&mut metric, "judges", (!judges.is_empty()).then(|| json!(judges)));
        put(&mut metric, "group", (!m.group.is_empty()).then(|| json!(m.group)));
        let nan = match m.nan {
            None | Some(metric::Nan::NanRemove(false)) => None,
            Some(metric::Nan::NanRemove(true)) => Some(json!("remove")),
            Some(metric::Nan::NanValue(v)) => finite(Some(v), &at("nan_value"))?,
        };
        put(&mut metric, "nan", nan);
        metrics.insert(name.clone(), Value::Object(metric));
    }
    put(&mut out, "metrics", (!metrics.is_empty()).then_some(Value::Object(metrics)));
    Ok(Value::Object(out))
}

/// A number YAML can carry: JSON (and so this writer) has no NaN or
/// infinity, and would write them as null, which reads as unset.
fn finite(v: Option<f64>, field: &str) -> Result<Option<Value>, Unsayable> {
    match v {
        Some(v) if !v.is_finite() => Err((field.to_string(), format!("must be a finite number, got {v}"))),
        v => Ok(v.map(Value::from)),
    }
}

fn put(map: &mut impl Extend<(String, Value)>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.extend([(key.to_string(), value)]);
    }
}

/// `always`/`never` are words in YAML, ranges a list.
fn ranges(list: &[String]) -> Option<Value> {
    match list {
        [] => None,
        [word] if word == "always" || word == "never" => Some(json!(word)),
        _ => Some(json!(list)),
    }
}

/// A duration as paved.yaml writes it ("500ms", "2s"): whole milliseconds.
fn millis(d: Option<&Duration>, field: &str) -> Result<Option<Value>, Unsayable> {
    let Some(d) = d else { return Ok(None) };
    let bad = || (field.to_string(), format!("must be a positive whole number of milliseconds, got {}s {}ns", d.seconds, d.nanos));
    if d.seconds < 0 || d.nanos < 0 || d.nanos % 1_000_000 != 0 {
        return Err(bad());
    }
    let ms = d.seconds.checked_mul(1000).and_then(|s| s.checked_add(i64::from(d.nanos / 1_000_000))).ok_or_else(bad)?;
    Ok(Some(if ms % 1000 == 0 { json!(format!("{}s", ms / 1000)) } else { json!(format!("{ms}ms")) }))
}

/// A duration in whole seconds ("45s").
fn seconds(d: Option<&Duration>, field: &str) -> Result<Option<Value>, Unsayable> {
    let Some(d) = d else { return Ok(None) };
    if d.seconds < 0 || d.nanos != 0 {
        return Err((field.to_string(), format!("must be a positive whole number of seconds, got {}s {}ns", d.seconds, d.nanos)));
    }
    Ok(Some(json!(format!("{}s", d.seconds))))
}

/// A metric's `slo` or `nan` as the oneof's branch the message set.
fn branch(spec: &pb::WorkloadSpec, field: String) -> String {
    let Some((name, key)) = field.strip_prefix("spec.analysis.metrics.").and_then(|rest| rest.split_once('.')) else { return field };
    let metric = spec.analysis.as_ref().and_then(|a| a.metrics.get(name));
    let branch = match (key, metric.and_then(|m| m.slo.as_ref()), metric.and_then(|m| m.nan.as_ref())) {
        ("slo", Some(metric::Slo::SloValue(_)), _) => "slo_value",
        ("slo", Some(metric::Slo::SloLatency(_)), _) => "slo_latency",
        ("nan", _, Some(metric::Nan::NanValue(_))) => "nan_value",
        ("nan", _, Some(metric::Nan::NanRemove(_))) => "nan_remove",
        _ => return field,
    };
    format!("spec.analysis.metrics.{name}.{branch}")
}

/// The message field an error in the written-out YAML is at: the keys
/// above the error's line, when they end in the field the parser named
/// (a document-level error names a field but points at line 1).
fn field_of(yaml: &str, e: &paved_spec::SpecError) -> String {
    let path = keys_above(yaml, e.line);
    let last = e.field.rsplit('.').next().unwrap_or_default();
    if e.field.is_empty() {
        "spec".into()
    } else if path.last().is_some_and(|k| k == last) {
        format!("spec.{}", path.join("."))
    } else {
        format!("spec.{}", e.field)
    }
}

/// The keys leading to `line` (1-based) of block YAML: its own key, then
/// each less indented key above it. List items (`- x`) have no key.
fn keys_above(yaml: &str, line: usize) -> Vec<String> {
    let mut keys = Vec::new();
    let mut indent = usize::MAX;
    for text in yaml.lines().take(line).collect::<Vec<_>>().into_iter().rev() {
        let trimmed = text.trim_start();
        let at = text.len() - trimmed.len();
        if trimmed.starts_with('-') || at >= indent {
            continue;
        }
        if let Some((key, _)) = trimmed.split_once(':') {
            keys.push(key.trim_matches(['\'', '"']).to_string());
            indent = at;
        }
        if indent == 0 {
            break;
        }
    }
    keys.reverse();
    keys
}

#[cfg(test)]
#[path = "spec_message_tests.rs"]
mod tests;
