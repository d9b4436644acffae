//! The platform's own Kubernetes manifests (`deploy/kubernetes/`): each
//! overlay, built with `kubectl kustomize`, passes the Kubernetes 1.33
//! schemas strictly (the check the rendered workloads pass), runs every
//! service from a binary the workspace builds on the port it listens on,
//! and keeps the platform's pods within the restricted Pod Security
//! Standard. No cluster can run here: this is what can be checked without.

use paved_integration_tests::{bin_dir, text};
use serde::Deserialize;
use std::{collections::BTreeSet, path::PathBuf, process::Command};

fn kubernetes_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// `kubectl kustomize` of an overlay.
fn build(overlay: &str) -> String {
    let kubectl = std::env::var("PAVED_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = Command::new(&kubectl).arg("kustomize").arg(kubernetes_dir().join("overlays").join(overlay)).output().unwrap_or_else(|e| {
        panic!("cannot run {kubectl}: {e}; the Kustomize check needs kubectl (its kustomize) on PATH or in PAVED_KUBECTL")
    });
    assert!(out.status.success(), "kustomize {overlay}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// The kind/name of each object the validator passed, strictly.
fn validated(overlay: &str, yaml: &str) -> BTreeSet<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(format!("{overlay}.yaml"));
    std::fs::write(&file, yaml).expect("write");
    let validator = std::env::var("PAVED_KUBERNETES_VALIDATE").unwrap_or_else(|_| "kubernetes-validate".into());
    let out = Command::new(&validator)
        .args(["--kubernetes-version", "1.33.0", "--strict"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {validator}: {e}; run the tests through `cargo xtask test`, which installs it"));
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{overlay} fails the Kubernetes schemas:\n{report}");
    report
        .lines()
        .filter_map(|l| l.split_once(" passed for resource ").and_then(|(_, rest)| rest.split(' ').next()))
        .map(String::from)
        .collect()
}

#[derive(Deserialize)]
struct Object {
    kind: String,
    metadata: serde_json::Value,
    #[serde(default)]
    spec: serde_json::Value,
}

/// The platform's pods: (name, pod template) of its Deployments and StatefulSets.
fn pods(yaml: &str) -> Vec<(String, serde_json::Value)> {
    let mut pods = Vec::new();
    for document in yaml_serde::Deserializer::from_str(yaml) {
        let object = Object::deserialize(document).expect("a Kubernetes object");
        if ["Deployment", "StatefulSet"].contains(&object.kind.as_str()) {
            let name = object.metadata["name"].as_str().expect("name").to_string();
            pods.push((name, object.spec["template"].clone()));
        }
    }
    pods
}

const SERVICES: [(&str, u16); 5] =
    [("provisioner", 7401), ("secrets-broker", 7402), ("canary-analyzer", 7403), ("cost-scheduler", 7404), ("audit", 7405)];

fn check(overlay: &str, image: &str, servers: &[&str]) {
    let yaml = build(overlay);
    let passed = validated(overlay, &yaml);
    for (name, _) in SERVICES {
        let workload = if name == "secrets-broker" { "deployment" } else { "statefulset" };
        for object in [format!("{workload}/{name}"), format!("service/{name}"), format!("serviceaccount/{name}")] {
            assert!(passed.contains(&object), "{overlay} has no {object} that passed: {passed:?}");
        }
    }
    for server in servers {
        assert!(passed.contains(&format!("statefulset/{server}")), "{overlay} runs {server}: {passed:?}");
    }
    let pods = pods(&yaml);
    assert_eq!(pods.len(), SERVICES.len() + servers.len(), "{overlay}: {:?}", pods.iter().map(|p| &p.0).collect::<Vec<_>>());
    for (name, template) in &pods {
        let pod = &template["spec"];
        // Restricted: non-root, no escalation, no capabilities, the
        // runtime's seccomp profile, no API token.
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{overlay}/{name}");
        assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault", "{overlay}/{name}");
        assert_eq!(pod["automountServiceAccountToken"], false, "{overlay}/{name}");
        let container = &pod["containers"][0];
        assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false, "{overlay}/{name}");
        assert_eq!(container["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"]), "{overlay}/{name}");
        let Some(&(_, port)) = SERVICES.iter().find(|(s, _)| s == name) else { continue };
        // Labelled as the platform's (the dev NetworkPolicy admits by it).
        assert_eq!(template["metadata"]["labels"]["app.kubernetes.io/part-of"], "paved", "{overlay}/{name}");
        // A platform service: the image, a binary the workspace builds, its
        // port where it listens.
        assert_eq!(container["image"], image, "{overlay}/{name}");
        let binary = container["command"][0].as_str().expect("command");
        assert!(bin_dir().join(binary).is_file(), "{overlay}/{name} runs {binary}, which the workspace does not build");
        assert_eq!(container["ports"][0]["containerPort"], port, "{overlay}/{name}");
        let env = container["env"].as_array().expect("env");
        let listen = env.iter().find(|e| e["name"] == "PAVED_LISTEN").and_then(|e| e["value"].as_str());
        assert_eq!(listen, Some(format!("0.0.0.0:{port}").as_str()), "{overlay}/{name}");
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true, "{overlay}/{name}");
    }
}

#[test]
fn the_dev_overlay_passes_the_kubernetes_schemas() {
    check("dev", "paved:dev", &["postgres", "redis"]);
}

#[test]
fn the_prod_overlay_passes_the_kubernetes_schemas() {
    check("prod", "registry.example.com/paved:0.1.0", &[]);
}
