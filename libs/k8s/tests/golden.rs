//! The Kubernetes target against golden files (`tests/golden/*.yaml`):
//! regenerate them with `PAVED_UPDATE_GOLDEN=1 cargo test -p paved-k8s` and
//! review the diff like code.

use paved_k8s::{RenderError, Target, manifests, to_yaml};
use std::path::PathBuf;

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn spec() -> paved_spec::WorkloadSpec {
    let text = std::fs::read_to_string(golden("web.paved.yaml")).expect("read the golden spec");
    paved_spec::parse(&text, "web.paved.yaml").expect("a valid spec")
}

fn check(name: &str, actual: &str) {
    let path = golden(name);
    if std::env::var_os("PAVED_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (create it with PAVED_UPDATE_GOLDEN=1)", path.display()));
    assert!(
        expected == actual,
        "{name} differs from what renders now:\n{actual}\n(regenerate with PAVED_UPDATE_GOLDEN=1 and review the diff)"
    );
}

#[test]
fn stable_manifests_match_the_golden_file() {
    let m = manifests(&spec(), "prod", &Target::default()).expect("render");
    let kinds: Vec<String> = m.iter().map(|m| format!("{}/{}", m.kind, m.name)).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount/web",
            "Role/web",
            "RoleBinding/web",
            "NetworkPolicy/default-deny",
            "NetworkPolicy/web",
            "PodDisruptionBudget/web",
            "Deployment/web",
            "Service/web"
        ]
    );
    assert!(m.iter().all(|m| m.namespace == "prod" && m.body["metadata"]["namespace"] == "prod"));
    check("web.stable.yaml", &to_yaml(&m));
}

#[test]
fn a_canary_gets_its_own_deployment_and_a_weighted_route() {
    let target = Target { canary_weight: Some(25), ..Target::default() };
    let m = manifests(&spec(), "prod", &target).expect("render");
    let route = m.iter().find(|m| m.kind == "HTTPRoute").expect("a route");
    assert_eq!(route.api_version, "gateway.networking.k8s.io/v1");
    let weights: Vec<_> = route.body["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .expect("backends")
        .iter()
        .map(|b| (b["name"].as_str().unwrap_or_default().to_string(), b["weight"].as_u64()))
        .collect();
    assert_eq!(weights, [("web".to_string(), Some(75)), ("web-canary".to_string(), Some(25))]);
    check("web.canary.yaml", &to_yaml(&m));
}

#[test]
fn only_artifacts_pinned_by_digest_render() {
    let mut spec = spec();
    spec.run = paved_spec::Run::Command(vec!["hello".into()]);
    let e = manifests(&spec, "prod", &Target::default()).expect_err("a command is not an image");
    assert!(matches!(e, RenderError::NotPinned(_)), "{e}");
    assert!(e.to_string().contains("paved artifact push"), "{e}");
    spec.run = paved_spec::Run::Artifact("./bin/web".into());
    assert!(matches!(manifests(&spec, "prod", &Target::default()), Err(RenderError::NotPinned(_))));
    let e = manifests(&self::spec(), "prod", &Target { canary_weight: Some(100), ..Target::default() }).expect_err("weight");
    assert!(matches!(e, RenderError::CanaryWeight(100)), "{e}");
    let mut spec = self::spec();
    spec.name = "9lives".into();
    assert!(matches!(manifests(&spec, "prod", &Target::default()), Err(RenderError::Name(_))));
}

#[test]
fn only_declared_secrets_are_read_and_dollars_stay_as_written() {
    let mut spec = spec();
    spec.env.insert("OTHER".into(), "${secret:not-declared}".into());
    spec.env.insert("PRICE".into(), "$5 or $$ or $(PORT)".into());
    let m = manifests(&spec, "prod", &Target::default()).expect("render");
    let env = &m.iter().find(|m| m.kind == "Deployment").expect("deployment").body["spec"]["template"]["spec"]["containers"][0]["env"];
    let var = |name: &str| env.as_array().expect("env").iter().find(|v| v["name"] == name).cloned().expect("variable");
    assert_eq!(var("OTHER")["value"], "$${secret:not-declared}", "an undeclared reference is text, never a Secret read");
    assert_eq!(var("PRICE")["value"], "$$5 or $$$$ or $$(PORT)");
    assert_eq!(var("DATABASE_URL")["value"], "postgres://app:$(PAVED_SECRET_DB_PASSWORD)@db:5432/app");
}

/// A schedule travels as kube-downscaler's annotations (its own
/// vocabulary) and Paved's for what it has no word for; asleep, the
/// Deployment has no replica; the team is a label cost tools read.
#[test]
fn a_schedule_is_annotated_and_asleep_is_zero_replicas() {
    let text = std::fs::read_to_string(golden("web.paved.yaml")).expect("read the golden spec")
        + "team: shop\nschedule:\n  uptime: \"Mon-Fri 07:30-20:30 Europe/Berlin, Sat 10:00-12:00 Europe/Berlin\"\n  exclude: [\"2026-12-24\"]\n  idle_after: 30m\n";
    let spec = paved_spec::parse(&text, "web.paved.yaml").expect("a valid spec");
    let awake = manifests(&spec, "dev", &Target::default()).expect("render");
    let deployment = awake.iter().find(|m| m.kind == "Deployment").expect("a deployment");
    let annotations = &deployment.body["metadata"]["annotations"];
    assert_eq!(annotations["paved.dev/uptime"], "Mon-Fri 07:30-20:30 Europe/Berlin, Sat 10:00-12:00 Europe/Berlin");
    // kube-downscaler's grammar: a single day as a range of one, comma-separated.
    assert_eq!(annotations["downscaler/uptime"], "Mon-Fri 07:30-20:30 Europe/Berlin,Sat-Sat 10:00-12:00 Europe/Berlin");
    assert_eq!(annotations["downscaler/downtime-replicas"], "0");
    assert_eq!(annotations["paved.dev/exclude"], "2026-12-24");
    assert_eq!(annotations["paved.dev/idle-after"], "1800s");
    assert_eq!(deployment.body["spec"]["replicas"], spec.replicas);
    assert!(awake.iter().all(|m| m.body["metadata"]["labels"]["paved.dev/team"] == "shop" || m.name == "default-deny"));
    let asleep = manifests(&spec, "dev", &Target { asleep: true, ..Target::default() }).expect("render");
    let deployment = asleep.iter().find(|m| m.kind == "Deployment").expect("a deployment");
    assert_eq!(deployment.body["spec"]["replicas"], 0);
    assert_eq!(deployment.body["metadata"]["annotations"]["downscaler/original-replicas"], spec.replicas.to_string());
    // A range past midnight has no kube-downscaler form: Paved's only.
    let night = std::fs::read_to_string(golden("web.paved.yaml")).expect("read") + "schedule:\n  downtime: \"Fri 22:00-06:00 UTC\"\n";
    let night = paved_spec::parse(&night, "web.paved.yaml").expect("a valid spec");
    let m = manifests(&night, "dev", &Target::default()).expect("render");
    let annotations = &m.iter().find(|m| m.kind == "Deployment").expect("a deployment").body["metadata"]["annotations"];
    assert_eq!(annotations["paved.dev/downtime"], "Fri 22:00-06:00 UTC");
    assert!(annotations.get("downscaler/downtime").is_none() && annotations.get("downscaler/downtime-replicas").is_none(), "{annotations}");
    // Without a schedule, no annotation at all (the golden files hold).
    let plain = manifests(&self::spec(), "dev", &Target::default()).expect("render");
    assert!(plain.iter().all(|m| m.body["metadata"].get("annotations").is_none()));
}
