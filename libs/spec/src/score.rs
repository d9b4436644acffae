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
    HealthCheck, RawResources, Resources, RolloutPolicy, Run, Security, SpecError, WorkloadSpec, error, from_yaml, locate,
    types::{EnvName, HttpPath, Name, Port},
};
use serde::Deserialize;
use std::collections::BTreeMap;
use yaml_serde::Value;

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
    #[serde(default)]
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
    let raw: RawScore = yaml_serde::from_str(text).map_err(|e| from_yaml(file, &e))?;
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
        run,
        port,
        health,
        env,
        replicas: 1,
        resources: c.resources.map(Resources::from).unwrap_or_default(),
        security: Security::default(),
        secrets,
        databases: Vec::new(),
        certificate: false,
        rollout: RolloutPolicy::default(),
        analysis: None,
    })
}

/// An artifact in the store (`sha256:<64 hex>`) or an executable's path.
fn is_artifact(image: &str) -> bool {
    crate::is_digest(image) || image.starts_with("./") || image.starts_with("../") || image.starts_with('/')
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
mod tests {
    use super::*;

    const SCORE: &str = "\
apiVersion: score.dev/v1b1
metadata:
  name: hello
  annotations:
    team: web
containers:
  main:
    image: .
    command: [\"hello\", \"--name\", \"${metadata.name}\"]
    variables:
      GREETING: \"hi from ${metadata.name} of ${metadata.annotations.team}, $${literal}\"
      DB_PASSWORD: \"${resources.db.value}\"
    resources:
      requests: {cpu: 100m, memory: 64Mi}
      limits: {cpu: 500m, memory: 128Mi}
    readinessProbe:
      httpGet: {path: /ready, port: 8080}
    livenessProbe:
      httpGet: {path: /ready, port: 8080}
service:
  ports:
    web: {port: 80, targetPort: 9090}
resources:
  db:
    type: secret
";

    #[test]
    fn a_score_file_is_a_workload_spec() {
        let spec = crate::parse(SCORE, "score.yaml").expect("valid Score");
        assert_eq!(spec.name, "hello");
        assert_eq!(spec.run, Run::Command(vec!["hello".into(), "--name".into(), "hello".into()]));
        assert_eq!(spec.env["GREETING"], "hi from hello of web, ${literal}");
        assert_eq!(spec.env["DB_PASSWORD"], "${secret:db}");
        assert_eq!(spec.secrets, ["db"]);
        assert_eq!(spec.port, 9090);
        assert_eq!(spec.health.path, "/ready");
        assert_eq!(spec.resources.limits.memory.as_deref(), Some("128Mi"));
        assert_eq!(spec.resources.requests.cpu.as_deref(), Some("100m"));
        // The same workload written natively has the same digest.
        let native = "name: hello\ncommand: [hello, --name, hello]\nport: 9090\nhealth: {path: /ready}\nsecrets: [db]\n\
            env:\n  GREETING: \"hi from hello of web, ${literal}\"\n  DB_PASSWORD: \"${secret:db}\"\n\
            resources:\n  requests: {cpu: 100m, memory: 64Mi}\n  limits: {cpu: 500m, memory: 128Mi}\n";
        assert_eq!(crate::parse(native, "paved.yaml").expect("native").digest(), spec.digest());
    }

    #[test]
    fn artifacts_run_by_digest() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let text = format!("apiVersion: score.dev/v1b1\nmetadata: {{name: app}}\ncontainers:\n  app:\n    image: {digest}\n");
        assert_eq!(crate::parse(&text, "score.yaml").expect("valid").run, Run::Artifact(digest));
    }

    /// (line, column, field, part of the message) of the error `text` gives.
    fn err(text: &str) -> (usize, usize, String, String) {
        let e = crate::parse(text, "score.yaml").expect_err("invalid");
        assert_eq!(e.file, "score.yaml");
        (e.line, e.column, e.field, e.message)
    }

    fn with(replace: &str, by: &str) -> String {
        assert!(SCORE.contains(replace), "{replace}");
        SCORE.replacen(replace, by, 1)
    }

    #[test]
    fn unsupported_fields_are_precise_errors() {
        let (line, column, field, message) = err(&with("    resources:\n", "    files:\n      - target: /etc/x\n    resources:\n"));
        assert_eq!((line, column, field.as_str()), (13, 5, "containers.main.files"));
        assert!(message.contains("not supported"), "{message}");
        let (line, _, field, message) = err(&with("image: .", "image: nginx:1.27"));
        assert_eq!((line, field.as_str()), (8, "containers.main.image"));
        assert!(message.contains("paved artifact push"), "{message}");
        let (line, column, field, message) = err(&with("  db:\n    type: secret", "  db:\n    type: postgres"));
        assert_eq!((line, column, field.as_str()), (25, 5, "resources.db.type"));
        assert!(message.contains("\"postgres\""), "{message}");
        let (line, _, field, _) =
            err(&with("    readinessProbe:\n      httpGet:", "    readinessProbe:\n      exec: {command: [x]}\n      httpGet:"));
        assert_eq!((line, field.as_str()), (17, "containers.main.readinessProbe.exec"));
        let (line, _, field, message) = err(&with("web: {port: 80, targetPort: 9090}", "web: {port: 80}\n    dns: {port: 53}"));
        assert_eq!((line, field.as_str()), (22, "service.ports.web"), "in name order `dns` is first, `web` second");
        assert!(message.contains("one service port"), "{message}");
        let (line, _, field, _) = err(&with("containers:\n", "containers:\n  side:\n    image: .\n    command: [x]\n"));
        assert_eq!((line, field.as_str()), (7, "containers.side"));
        let (line, column, _, message) = err(&with("    image: .\n", "    image: .\n    ports: []\n"));
        assert_eq!((line, column), (9, 5));
        assert!(message.contains("unknown field `ports`"), "{message}");
        let (line, _, field, message) =
            err(&with("livenessProbe:\n      httpGet: {path: /ready", "livenessProbe:\n      httpGet: {path: /live"));
        assert_eq!((line, field.as_str()), (18, "containers.main.livenessProbe"));
        assert!(message.contains("not /ready and /live"), "{message}");
        let (line, _, field, _) = err(&with("score.dev/v1b1", "score.dev/v2"));
        assert_eq!((line, field.as_str()), (1, "apiVersion"));
    }

    #[test]
    fn placeholders_are_checked() {
        let (line, _, field, message) = err(&with("${resources.db.value}", "${resources.cache.host}"));
        assert_eq!((line, field.as_str()), (12, "containers.main.variables.DB_PASSWORD"));
        assert!(message.contains("`cache` is not a resource"), "{message}");
        let (_, _, _, message) = err(&with("${resources.db.value}", "${resources.db.password}"));
        assert!(message.contains("one output, `value`"), "{message}");
        let (_, _, field, message) = err(&with("\"--name\", \"${metadata.name}\"", "\"${resources.db.value}\""));
        assert_eq!(field, "containers.main.command");
        assert!(message.contains("never on the command line"), "{message}");
        let (_, _, _, message) = err(&with("${metadata.annotations.team}", "${metadata.annotations.owner}"));
        assert!(message.contains("no text value at `annotations.owner`"), "{message}");
        let (_, _, _, message) = err(&with("${metadata.name} of", "${secret:db} of"));
        assert!(message.contains("unknown placeholder"), "{message}");
        let (_, _, _, message) = err(&with("${metadata.name} of", "${metadata.name of"));
        assert!(message.contains("unclosed"), "{message}");
        let (_, _, _, message) = err(&with("$${literal}", "$${secret:db}"));
        assert!(message.contains("declare a `secret` resource"), "{message}");
        let (_, _, field, message) = err(&with("command: [\"hello\", \"--name\", \"${metadata.name}\"]", "command: []"));
        assert_eq!(field, "containers.main.command");
        assert!(message.contains("must name a program"), "{message}");
    }

    #[test]
    fn overlays_change_score_values() {
        let r =
            crate::render(SCORE, "score.yaml", Some(("containers:\n  main:\n    variables:\n      GREETING: hey\n", "score.prod.yaml")))
                .expect("valid overlay");
        assert_eq!(r.spec.env["GREETING"], "hey");
        let e = crate::render(SCORE, "score.yaml", Some(("containers:\n  main:\n    image: nginx\n", "score.prod.yaml")))
            .expect_err("bad image");
        assert_eq!((e.file.as_str(), e.line, e.field.as_str()), ("score.prod.yaml", 3, "containers.main.image"), "{e}");
    }
}
