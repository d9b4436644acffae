//! Score workload files (`apiVersion: score.dev/v1b1`) as input, translated
//! into the same [`WorkloadSpec`] a `paved.yaml` gives, so everything after
//! parsing (digest, policy, rollout, Kubernetes) is one code path.
//!
//! ```yaml
//! apiVersion: score.dev/v1b1
//! metadata:
//!   name: hello
//! containers:
//!   main:                        # exactly one container
//!     image: .                   # "." runs `command` on the host; or an
//!                                # artifact: sha256:<hex> or ./bin/hello
//!     command: ["hello"]
//!     variables:
//!       GREETING: "hi from ${metadata.name}"
//!       DB_PASSWORD: "${resources.db-password.value}"
//!     resources:
//!       requests: {cpu: 100m, memory: 64Mi}
//!       limits: {cpu: 500m, memory: 128Mi}
//!     readinessProbe:
//!       httpGet: {path: /healthz, port: 8080}
//! service:
//!   ports:
//!     web: {port: 80, targetPort: 8080}
//! resources:
//!   db-password:
//!     type: secret               # the one resource type: a declared secret
//! ```
//!
//! What Score allows and Paved cannot honour (container images from a
//! registry, files, volumes, exec probes, several containers or ports) is an
//! error at the field's line and column, never silently dropped.

use crate::{
    error::{SpecError, error, from_yaml, locate},
    parts::{HealthCheck, RawResources, Resources, RolloutPolicy, Run, Security, is_digest},
    types::{EnvName, HttpPath, Name, Port},
    workload::WorkloadSpec,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use yaml_serde::Value;

/// The annotation that names a Score workload's team (`team:` in a Paved spec).
const TEAM_ANNOTATION: &str = "paved.dev/team";

const API_VERSION: &str = "score.dev/v1b1";

/// Whether `text` is a Score file: it sets `apiVersion` at the top level.
pub(crate) fn is_score(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("apiVersion:"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawScore {
    api_version: String,
    metadata: yaml_serde::Mapping,
    containers: BTreeMap<String, RawContainer>,
    service: Option<RawService>,
    #[serde(default)]
    resources: BTreeMap<Name, RawResource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawContainer {
    image: String,
    command: Option<Vec<String>>,
    args: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::types::env_values")]
    variables: BTreeMap<EnvName, String>,
    files: Option<Value>,
    volumes: Option<Value>,
    resources: Option<RawResources>,
    liveness_probe: Option<RawProbe>,
    readiness_probe: Option<RawProbe>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawProbe {
    http_get: Option<RawHttpGet>,
    exec: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawHttpGet {
    path: HttpPath,
    #[allow(dead_code)] // the runtime assigns the port; Score requires it anyway
    port: Option<Port>,
    scheme: Option<String>,
    host: Option<String>,
    http_headers: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(default)]
    ports: BTreeMap<String, RawPort>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPort {
    port: Port,
    target_port: Option<Port>,
    protocol: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    #[serde(rename = "type")]
    kind: String,
    class: Option<String>,
    id: Option<String>,
    params: Option<Value>,
    metadata: Option<Value>,
}

/// Translates a Score file into a workload spec.
pub(crate) fn parse(text: &str, file: &str) -> Result<WorkloadSpec, SpecError> {
    let raw: RawScore = yaml_serde::from_str(text).map_err(|e| from_yaml(text, file, &e))?;
    let at = |path: &[&str], message: String| {
        let path: Vec<String> = path.iter().map(|p| p.to_string()).collect();
        let (line, column) = locate(text, &path).unwrap_or((1, 1));
        error(file, line, column, &path.join("."), message)
    };
    if raw.api_version != API_VERSION {
        return Err(at(&["apiVersion"], format!("unsupported Score version {:?}: Paved reads {API_VERSION}", raw.api_version)));
    }
    let name = match raw.metadata.get("name") {
        Some(Value::String(n)) => crate::types::check_name(n).map(|()| n.clone()).map_err(|e| at(&["metadata", "name"], e))?,
        _ => return Err(at(&["metadata"], "`metadata.name` is required: the workload's name".into())),
    };
    // The team that pays for it, as an annotation (Score has no field for it).
    let team = match raw.metadata.get("annotations").and_then(|a| a.get(TEAM_ANNOTATION)) {
        None => None,
        Some(Value::String(t)) => {
            Some(crate::types::check_name(t).map(|()| t.clone()).map_err(|e| at(&["metadata", "annotations", TEAM_ANNOTATION], e))?)
        }
        Some(_) => return Err(at(&["metadata", "annotations", TEAM_ANNOTATION], "the team must be a name".into())),
    };

    // Secrets are the one kind of resource: each is a declared reference.
    let mut secrets = Vec::new();
    for (resource, r) in &raw.resources {
        let path = ["resources", resource.0.as_str()];
        if r.kind != "secret" {
            return Err(at(
                &[&path[..], &["type"]].concat(),
                format!("resource type {:?} is not supported: Paved provisions `secret` resources", r.kind),
            ));
        }
        for (field, set) in
            [("class", r.class.is_some()), ("id", r.id.is_some()), ("params", r.params.is_some()), ("metadata", r.metadata.is_some())]
        {
            if set {
                return Err(at(&[&path[..], &[field]].concat(), format!("`{field}` is not supported on a secret resource")));
            }
        }
        secrets.push(resource.0.clone());
    }

    let mut containers = raw.containers.into_iter();
    let Some((cname, c)) = containers.next() else {
        return Err(at(&["containers"], "a Score workload needs one container".into()));
    };
    if let Some((second, _)) = containers.next() {
        return Err(at(
            &["containers", &second],
            format!("only one container per workload is supported; `{cname}` is already one (run `{second}` as a workload of its own)"),
        ));
    }
    let cpath = ["containers", cname.as_str()];
    let cat = |field: &[&str], message: String| at(&[&cpath[..], field].concat(), message);
    for (field, set) in [("files", c.files.is_some()), ("volumes", c.volumes.is_some())] {
        if set {
            return Err(cat(
                &[field],
                format!("container `{field}` are not supported: the local runtime gives a workload no filesystem mounts"),
            ));
        }
    }

    let resolve = Resolver { metadata: &raw.metadata, secrets: &secrets };
    let mut argv = Vec::new();
    for (field, values) in [("command", &c.command), ("args", &c.args)] {
        for v in values.iter().flatten() {
            argv.push(resolve.value(v, false).map_err(|e| cat(&[field], e))?);
        }
    }
    let run = match (c.image.as_str(), &c.command) {
        (".", Some(_)) if argv.first().is_none_or(|p| p.trim().is_empty()) => {
            return Err(cat(&["command"], "`command` must name a program".into()));
        }
        (".", Some(_)) => Run::Command(argv),
        (".", None) => return Err(cat(&["image"], "`image: .` runs the container's `command` on the host: set `command`".into())),
        (image, None) if c.args.is_none() && is_artifact(image) => Run::Artifact(image.to_string()),
        (image, _) if is_artifact(image) => {
            return Err(cat(&["image"], "an artifact image runs as is: leave out `command` and `args`, or use `image: .`".into()));
        }
        (image, _) => {
            return Err(cat(
                &["image"],
                format!(
                    "container image {image:?} cannot run here: use an artifact (`paved artifact push` gives its sha256: digest), a path such as ./bin/app, or `.` with `command`"
                ),
            ));
        }
    };
    let mut env = BTreeMap::new();
    for (key, value) in c.variables {
        let resolved = resolve.value(&value, true).map_err(|e| cat(&["variables", &key.0], e))?;
        env.insert(key.0, resolved);
    }

    let health = match (&c.readiness_probe, &c.liveness_probe) {
        (None, None) => HealthCheck::default(),
        (readiness, liveness) => {
            let mut path = None;
            for (field, probe) in [("readinessProbe", readiness), ("livenessProbe", liveness)] {
                let Some(probe) = probe else { continue };
                let this = probe_path(probe).map_err(|(sub, e)| cat(&[&[field][..], &sub].concat(), e))?;
                match &path {
                    Some(p) if *p != this => {
                        return Err(cat(
                            &[field],
                            format!("Paved runs one HTTP health check: both probes must use the same path, not {p} and {this}"),
                        ));
                    }
                    _ => path = Some(this),
                }
            }
            HealthCheck { path: path.unwrap_or_else(|| HealthCheck::default().path), ..HealthCheck::default() }
        }
    };

    let mut ports = raw.service.map(|s| s.ports).unwrap_or_default().into_iter();
    let port = match ports.next() {
        None => 8080,
        Some((pname, p)) => {
            if let Some((second, _)) = ports.next() {
                return Err(at(&["service", "ports", &second], format!("only one service port is supported; `{pname}` is already one")));
            }
            if p.protocol.as_deref().is_some_and(|proto| !proto.eq_ignore_ascii_case("TCP")) {
                return Err(at(&["service", "ports", &pname, "protocol"], "only TCP ports are supported".into()));
            }
            p.target_port.unwrap_or(p.port).0
        }
    };

    Ok(WorkloadSpec {
        name,
        team,
        run,
        port,
        health,
        env,
        replicas: 1,
        resources: c.resources.map(Resources::from).unwrap_or_default(),
        security: Security::default(),
        secrets,
        secret_files: Vec::new(),
        on_rotation: Default::default(),
        databases: Vec::new(),
        certificate: false,
        rollout: RolloutPolicy::default(),
        analysis: None,
        schedule: None,
    })
}

/// An artifact in the store (`sha256:<64 hex>`) or an executable's path.
fn is_artifact(image: &str) -> bool {
    is_digest(image) || image.starts_with("./") || image.starts_with("../") || image.starts_with('/')
}

/// The path of an HTTP probe; an error names the sub-field it is about.
fn probe_path(probe: &RawProbe) -> Result<String, (Vec<&'static str>, String)> {
    if probe.exec.is_some() {
        return Err((vec!["exec"], "exec probes are not supported: use `httpGet`".into()));
    }
    let Some(get) = &probe.http_get else {
        return Err((vec![], "a probe needs `httpGet`".into()));
    };
    if get.scheme.as_deref().is_some_and(|s| !s.eq_ignore_ascii_case("HTTP")) {
        return Err((vec!["httpGet", "scheme"], "only HTTP probes are supported".into()));
    }
    if get.host.is_some() {
        return Err((vec!["httpGet", "host"], "a probe checks the workload itself: leave out `host`".into()));
    }
    if get.http_headers.is_some() {
        return Err((vec!["httpGet", "httpHeaders"], "probe headers are not supported".into()));
    }
    Ok(get.path.0.clone())
}

/// Resolves `${metadata.…}` and `${resources.<name>.value}` placeholders;
/// `$${` is a literal `${`.
struct Resolver<'a> {
    metadata: &'a yaml_serde::Mapping,
    secrets: &'a [String],
}

impl Resolver<'_> {
    fn value(&self, text: &str, secrets_allowed: bool) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            rest = &rest[i..];
            if let Some(after) = rest.strip_prefix("$${") {
                // Paved reads `${secret:…}` in a value as a reference: an
                // escape must not smuggle one past the declared resources.
                if after.starts_with("secret:") {
                    return Err(format!("`$${{secret:` in {text:?} would be read as a secret reference: declare a `secret` resource"));
                }
                out.push_str("${");
                rest = after;
                continue;
            }
            let Some(after) = rest.strip_prefix("${") else {
                out.push('$');
                rest = &rest[1..];
                continue;
            };
            let end = after
                .find('}')
                .filter(|end| !after[..*end].contains(['$', '{', ' ']))
                .ok_or_else(|| format!("unclosed placeholder in {text:?}: write ${{…}}, or $${{ for a literal ${{"))?;
            out.push_str(&self.placeholder(&after[..end], secrets_allowed)?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn placeholder(&self, reference: &str, secrets_allowed: bool) -> Result<String, String> {
        let parts: Vec<&str> = reference.split('.').collect();
        match parts.as_slice() {
            ["metadata", path @ ..] if !path.is_empty() => {
                let mut value = self.metadata.get(path[0]);
                for key in &path[1..] {
                    value = value.and_then(|v| v.get(key));
                }
                match value {
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(Value::Number(n)) => Ok(n.to_string()),
                    Some(Value::Bool(b)) => Ok(b.to_string()),
                    _ => Err(format!("`${{{reference}}}`: metadata has no text value at `{}`", path.join("."))),
                }
            }
            ["resources", name, "value"] if self.secrets.iter().any(|s| s == name) => {
                if secrets_allowed {
                    Ok(format!("${{secret:{name}}}"))
                } else {
                    Err(format!("`${{{reference}}}` is a secret: pass it in `variables`, never on the command line"))
                }
            }
            ["resources", name, output] if self.secrets.iter().any(|s| s == name) => {
                Err(format!("`${{{reference}}}`: a secret resource has one output, `value`, not `{output}`"))
            }
            ["resources", name, ..] => Err(format!("`${{{reference}}}`: `{name}` is not a resource of this workload")),
            _ => Err(format!("unknown placeholder `${{{reference}}}`: use ${{metadata.<key>}} or ${{resources.<name>.value}}")),
        }
    }
}

#[cfg(test)]
mod tests;
