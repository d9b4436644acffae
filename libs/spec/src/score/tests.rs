//! The Score reader's tests: each parses a Score file with `score::parse`
//! directly (every text here has an `apiVersion`, so `crate::parse` would hand
//! it over the same way). Comparisons with native specs and overlays, which
//! need the crate's other readers, are in the crate's `tests.rs`: from here
//! they would make `score` import `parse`, which imports `score`.

use super::*;

/// A Score file using every feature Paved reads; `tests.rs` reads it too.
const SCORE: &str = include_str!("../../testdata/hello.score.yaml");

#[test]
fn a_score_file_is_a_workload_spec() {
    let spec = parse(SCORE, "score.yaml").expect("valid Score");
    assert_eq!(spec.name, "hello");
    assert_eq!(spec.run, Run::Command(vec!["hello".into(), "--name".into(), "hello".into()]));
    assert_eq!(spec.env["GREETING"], "hi from hello of web, ${literal}");
    assert_eq!(spec.env["DB_PASSWORD"], "${secret:db}");
    assert_eq!(spec.secrets, ["db"]);
    assert_eq!(spec.port, 9090);
    assert_eq!(spec.health.path, "/ready");
    assert_eq!(spec.resources.limits.memory.as_deref(), Some("128Mi"));
    assert_eq!(spec.resources.requests.cpu.as_deref(), Some("100m"));
}

#[test]
fn artifacts_run_by_digest() {
    let digest = format!("sha256:{}", "ab".repeat(32));
    let text = format!("apiVersion: score.dev/v1b1\nmetadata: {{name: app}}\ncontainers:\n  app:\n    image: {digest}\n");
    assert_eq!(parse(&text, "score.yaml").expect("valid").run, Run::Artifact(digest));
}

/// (line, column, field, part of the message) of the error `text` gives.
fn err(text: &str) -> (usize, usize, String, String) {
    let e = parse(text, "score.yaml").expect_err("invalid");
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
