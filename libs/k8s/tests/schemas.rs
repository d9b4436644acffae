//! The golden manifests (which `tests/golden.rs` holds the renderer to)
//! against the Kubernetes 1.33 OpenAPI schemas, strictly (no unknown
//! fields), with `kubernetes-validate` — an independent validator, since no
//! API server can run here. `cargo xtask test` installs it and names it in
//! `PAVED_KUBERNETES_VALIDATE`.

use std::{path::PathBuf, process::Command};

fn validator() -> PathBuf {
    match std::env::var_os("PAVED_KUBERNETES_VALIDATE") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from("kubernetes-validate"),
    }
}

fn validate(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(file);
    let validator = validator();
    let out =
        Command::new(&validator).args(["--kubernetes-version", "1.33.0", "--strict"]).arg(&path).output().unwrap_or_else(|e| {
            panic!("cannot run {}: {e}; run the tests through `cargo xtask test`, which installs it", validator.display())
        });
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{file} fails the Kubernetes schemas:\n{text}");
    text
}

/// Each kind/name the validator passed.
fn passed(report: &str) -> Vec<String> {
    report
        .lines()
        .filter_map(|l| l.split_once(" passed for resource ").and_then(|(_, rest)| rest.split(' ').next()))
        .map(str::to_string)
        .collect()
}

/// What both renders hold besides their workload objects.
const SHARED: [&str; 6] =
    ["serviceaccount/web", "role/web", "rolebinding/web", "networkpolicy/default-deny", "networkpolicy/web", "poddisruptionbudget/web"];

#[test]
fn stable_manifests_pass_the_kubernetes_schemas() {
    let report = validate("web.stable.yaml");
    assert_eq!(passed(&report), [&SHARED[..], &["deployment/web", "service/web"]].concat(), "{report}");
}

#[test]
fn canary_manifests_pass_the_kubernetes_schemas() {
    let report = validate("web.canary.yaml");
    assert_eq!(passed(&report), [&SHARED[..], &["deployment/web-canary", "service/web-canary"]].concat(), "{report}");
    // Gateway API is a CRD, outside the Kubernetes schemas: the validator
    // says so rather than passing it, and the golden test holds its shape.
    assert!(report.contains("Couldn't find schema for kind HTTPRoute with api version gateway.networking.k8s.io/v1"), "{report}");
}
