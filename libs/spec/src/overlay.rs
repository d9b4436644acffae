//! Environments as overlays: a base `paved.yaml` (or `score.yaml`) plus, per
//! environment, a `paved.<env>.yaml` (`score.<env>.yaml`; previews `pr-<n>`
//! fall back to `paved.preview.yaml`)
//! that changes values and never structure: every key it sets must exist in
//! the base with the same kind (mapping, list or scalar). One section may be
//! added whole, `schedule`: environments differ in when they sleep (`dev`
//! does, `prod` does not) far more often than in what they run. The merged
//! spec is validated like any spec; errors point into the file that holds the
//! value.

use crate::{
    error::{SpecError, error, from_yaml, locate},
    parse::parse,
    workload::WorkloadSpec,
};
use std::collections::BTreeMap;
use yaml_serde::Value;

/// A spec resolved for one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The merged spec as YAML: what is deployed and what `paved render` prints.
    pub text: String,
    pub spec: WorkloadSpec,
}

/// The overlay files an environment may use beside the base file `stem`.yaml
/// (`paved` or `score`), in order of preference.
pub fn overlay_files(stem: &str, environment: &str) -> Vec<String> {
    let mut files = vec![format!("{stem}.{environment}.yaml")];
    if environment.strip_prefix("pr-").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
        files.push(format!("{stem}.preview.yaml"));
    }
    files
}

/// Validates the base, applies the overlay (text and file name) if any, and
/// validates the result.
pub fn render(base: &str, base_file: &str, overlay: Option<(&str, &str)>) -> Result<Rendered, SpecError> {
    let spec = parse(base, base_file)?;
    let Some((overlay, overlay_file)) = overlay else {
        return Ok(Rendered { text: base.to_string(), spec });
    };
    let mut merged: Value = yaml_serde::from_str(base).map_err(|e| from_yaml(base, base_file, &e))?;
    let mut changes: Value = yaml_serde::from_str(overlay).map_err(|e| from_yaml(overlay, overlay_file, &e))?;
    as_written(&mut merged, base);
    as_written(&mut changes, overlay);
    match changes {
        Value::Null => return Ok(Rendered { text: base.to_string(), spec }),
        Value::Mapping(_) => {}
        _ => return Err(error(overlay_file, 1, 1, "", "an overlay is a mapping of the base spec's keys to new values")),
    }
    let mut path = Vec::new();
    merge(&mut merged, changes, &mut path).map_err(|(path, message)| located(overlay, overlay_file, &path, message))?;
    let text = yaml_serde::to_string(&merged).map_err(|e| error(overlay_file, 1, 1, "", format!("cannot write the merged spec: {e}")))?;
    // The merged text is ours; a value it rejects came from the overlay when
    // the overlay sets that field, else from the base.
    let spec = parse(&text, overlay_file).map_err(|e| {
        let path: Vec<String> = e.field.split('.').filter(|p| !p.is_empty()).map(str::to_string).collect();
        match locate(overlay, &path) {
            Some(_) => located(overlay, overlay_file, &path, e.message),
            None => located(base, base_file, &path, e.message),
        }
    })?;
    Ok(Rendered { text, spec })
}

/// The fields read as text where a plain scalar may look like a number or
/// a boolean (`V: 1.10`, `yes`, `0x10`), each as written.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Written {
    env: Option<BTreeMap<String, Option<String>>>,
    command: Option<Vec<Option<String>>>,
    containers: Option<BTreeMap<String, WrittenContainer>>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct WrittenContainer {
    variables: Option<BTreeMap<String, Option<String>>>,
    command: Option<Vec<Option<String>>>,
    args: Option<Vec<Option<String>>>,
}

/// Puts back, as strings, the text fields' numbers and booleans as they
/// were written: the merged spec is written out by the YAML library, which
/// prints `1.10` as `1.1` and `0x10` as `16`, and the text is what runs.
/// Found reviewing the `overlay` fuzz target.
fn as_written(value: &mut Value, text: &str) {
    let written: Written = yaml_serde::from_str(text).unwrap_or_default();
    restore_map(value.get_mut("env"), written.env.as_ref());
    restore_seq(value.get_mut("command"), written.command.as_ref());
    for (name, container) in written.containers.iter().flatten() {
        let Some(slot) = value.get_mut("containers").and_then(|c| c.get_mut(name.as_str())) else { continue };
        restore_map(slot.get_mut("variables"), container.variables.as_ref());
        restore_seq(slot.get_mut("command"), container.command.as_ref());
        restore_seq(slot.get_mut("args"), container.args.as_ref());
    }
}

fn as_text(slot: &mut Value, written: Option<&String>) {
    if let (Value::Number(_) | Value::Bool(_), Some(text)) = (&*slot, written) {
        *slot = Value::String(text.clone());
    }
}

fn restore_map(value: Option<&mut Value>, written: Option<&BTreeMap<String, Option<String>>>) {
    let (Some(Value::Mapping(map)), Some(written)) = (value, written) else { return };
    for (key, slot) in map.iter_mut() {
        as_text(slot, key.as_str().and_then(|k| written.get(k)?.as_ref()));
    }
}

fn restore_seq(value: Option<&mut Value>, written: Option<&Vec<Option<String>>>) {
    let (Some(Value::Sequence(items)), Some(written)) = (value, written) else { return };
    for (slot, text) in items.iter_mut().zip(written) {
        as_text(slot, text.as_ref());
    }
}

/// Top-level sections an overlay may add when the base has none.
const ADDABLE: &[&str] = &["schedule"];

/// Replaces values of `base` with those of `changes`, refusing new keys and
/// changes of kind. The error carries the offending key's path.
fn merge(base: &mut Value, changes: Value, path: &mut Vec<String>) -> Result<(), (Vec<String>, String)> {
    let (Value::Mapping(base), Value::Mapping(changes)) = (base, changes) else {
        return Err((path.clone(), "internal: merge of non-mappings".into()));
    };
    for (key, value) in changes {
        let name = match &key {
            Value::String(s) => s.clone(),
            other => format!("{other:?}"),
        };
        path.push(name.clone());
        if path.len() == 1 && ADDABLE.contains(&name.as_str()) && !base.contains_key(&key) {
            base.insert(key, value);
            path.pop();
            continue;
        }
        let Some(slot) = base.get_mut(&key) else {
            let shown = path.join(".");
            return Err((path.clone(), format!("`{shown}` is not in the base spec: an overlay changes values, not structure")));
        };
        match (kind(slot), kind(&value)) {
            ("mapping", "mapping") => merge(slot, value, path)?,
            (was, now) if was == now || was == "null" || now == "null" => *slot = value,
            (was, now) => {
                let shown = path.join(".");
                return Err((
                    path.clone(),
                    format!("`{shown}` is a {was} in the base spec, not a {now}: an overlay changes values, not structure"),
                ));
            }
        }
        path.pop();
    }
    Ok(())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Mapping(_) => "mapping",
        Value::Sequence(_) => "list",
        Value::Null => "null",
        Value::Tagged(_) => "tagged value",
        _ => "scalar",
    }
}

fn located(text: &str, file: &str, path: &[String], message: String) -> SpecError {
    let (line, column) = locate(text, path).unwrap_or((1, 1));
    error(file, line, column, &path.join("."), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        "name: hello\ncommand: [\"hello\"]\nport: 8080\nhealth:\n  path: /healthz\n  period: 1s\nenv:\n  HELLO_VERSION: v1\n  LOG: info\n";

    fn with(overlay: &str) -> Result<Rendered, SpecError> {
        render(BASE, "svc/paved.yaml", Some((overlay, "svc/paved.prod.yaml")))
    }

    #[test]
    fn overlay_changes_values() {
        let r = with("env:\n  HELLO_VERSION: v2\nhealth:\n  period: 2s\nreplicas: 1\n").err();
        // `replicas` is not in this base: structure, refused.
        assert_eq!(r.map(|e| (e.file, e.line, e.column, e.field)), Some(("svc/paved.prod.yaml".into(), 5, 1, "replicas".into())));
        let r = with("env:\n  HELLO_VERSION: v2\nhealth:\n  period: 2s\n").expect("valid overlay");
        assert_eq!(r.spec.env["HELLO_VERSION"], "v2");
        assert_eq!(r.spec.env["LOG"], "info", "untouched values stay");
        assert_eq!(r.spec.health.period, std::time::Duration::from_secs(2));
        assert_eq!(r.spec.health.path, "/healthz");
        assert!(r.text.contains("HELLO_VERSION: v2"), "{}", r.text);
        assert_eq!(crate::parse(&r.text, "x").expect("rendered text is a valid spec"), r.spec);
    }

    /// Found reviewing the `overlay` fuzz target: the merged spec, written
    /// out again, turned an unquoted `1.10` into `1.1` and `0x10` into `16`.
    #[test]
    fn values_that_look_like_numbers_stay_as_written() {
        let base = "name: hello\ncommand: [hello, 0x10]\nenv:\n  V: 1.10\n  ON: yes\n  T: True\n  LOG: info\n";
        let r = render(base, "paved.yaml", Some(("env:\n  LOG: 1.50\n", "paved.prod.yaml"))).expect("valid");
        assert_eq!((r.spec.env["V"].as_str(), r.spec.env["ON"].as_str(), r.spec.env["T"].as_str()), ("1.10", "yes", "True"));
        assert_eq!(r.spec.env["LOG"], "1.50", "the overlay's value as written");
        assert_eq!(r.spec.run, crate::parts::Run::Command(vec!["hello".into(), "0x10".into()]));
        let score = "apiVersion: score.dev/v1b1\nmetadata:\n  name: s\ncontainers:\n  main:\n    image: .\n    command: [hello]\n    args: [1.0]\n    variables:\n      V: 2.10\n";
        let r =
            render(score, "score.yaml", Some(("containers:\n  main:\n    variables:\n      V: 3.10\n", "score.qa.yaml"))).expect("valid");
        assert_eq!(r.spec.env["V"], "3.10");
        assert_eq!(r.spec.run, crate::parts::Run::Command(vec!["hello".into(), "1.0".into()]));
    }

    #[test]
    fn no_overlay_is_the_base() {
        let r = render(BASE, "svc/paved.yaml", None).expect("valid");
        assert_eq!(r.text, BASE);
        assert_eq!(render(BASE, "b", Some(("", "o"))).expect("empty overlay").spec, r.spec);
    }

    #[test]
    fn structure_changes_are_located_in_the_overlay() {
        let e = with("env:\n  NEW_VAR: x\n").expect_err("new env var");
        assert_eq!((e.line, e.column, e.field.as_str()), (2, 3, "env.NEW_VAR"), "{e}");
        assert!(e.message.contains("not in the base spec"), "{e}");
        let e = with("health: /healthz\n").expect_err("mapping to scalar");
        assert_eq!((e.line, e.field.as_str()), (1, "health"), "{e}");
        assert!(e.message.contains("is a mapping in the base spec, not a scalar"), "{e}");
        let e = with("- a\n").expect_err("not a mapping");
        assert_eq!(e.file, "svc/paved.prod.yaml");
    }

    #[test]
    fn invalid_values_are_located_where_they_stand() {
        let e = with("port: 0\n").expect_err("bad port from the overlay");
        assert_eq!((e.file.as_str(), e.line, e.field.as_str()), ("svc/paved.prod.yaml", 1, "port"), "{e}");
        assert!(e.message.contains("between 1 and 65535"), "{e}");
        let e = with("health:\n  period: forever\n").expect_err("bad duration");
        assert_eq!((e.file.as_str(), e.line, e.column), ("svc/paved.prod.yaml", 2, 3), "{e}");
        let e = render("name: Bad\ncommand: [x]\n", "svc/paved.yaml", Some(("", "o"))).expect_err("bad base");
        assert_eq!(e.file, "svc/paved.yaml");
    }

    #[test]
    fn preview_environments_fall_back_to_the_preview_overlay() {
        assert_eq!(overlay_files("paved", "prod"), ["paved.prod.yaml"]);
        assert_eq!(overlay_files("paved", "pr-42"), ["paved.pr-42.yaml", "paved.preview.yaml"]);
        assert_eq!(overlay_files("score", "pr-42"), ["score.pr-42.yaml", "score.preview.yaml"]);
        assert_eq!(overlay_files("paved", "pr-x"), ["paved.pr-x.yaml"]);
    }
}
