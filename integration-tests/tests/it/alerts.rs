//! The alert and recording rules (`deploy/prometheus/rules/`) as operators
//! get them: `promtool check rules` accepts them, `promtool test rules`
//! shows each alert firing on a series made to trip it and quiet on a
//! healthy one, and a real Prometheus scraping a live platform evaluates
//! every rule without error, on metrics the platform really exposes.

use crate::prometheus::{free_port, prometheus_with};
use crate::rollouts::endpoint_of;
use paved_integration_tests::{Load, eventually, paved_on, paved_with, ready, text, up_options};
use std::{collections::BTreeSet, path::Path, process::Command, time::Duration};

fn rules_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/rules")
}

#[test]
fn promtool_checks_the_rules_and_each_alert_fires_and_stays_quiet() {
    let promtool = std::env::var("PAVED_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    for args in [["check", "rules", "paved.rules.yml"], ["test", "rules", "paved.rules.test.yml"]] {
        let out = Command::new(&promtool).args(args).current_dir(rules_dir()).output().unwrap_or_else(|e| {
            panic!("cannot run {promtool}: {e}; run the tests through `cargo xtask test`, which installs Prometheus (and promtool)")
        });
        assert!(out.status.success(), "promtool {}:\n{}{}", args.join(" "), text(&out.stdout), text(&out.stderr));
    }
}

/// The metric names a rules file reads (recording rules' own names aside).
fn metrics_named(rules: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in rules.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(i) = rest.find("paved_") {
            let name: String = rest[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            // Counters are exposed as <name>_total under `# TYPE <name>`.
            names.insert(name.strip_suffix("_total").unwrap_or(&name).to_string());
            rest = &rest[i + name.len()..];
        }
    }
    names
}

#[tokio::test]
async fn alert_rules_resolve_against_a_live_platform() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cost = paved::up::CostOptions { sample_seconds: Some(1), ..Default::default() };
    let platform = ready(&paved::up::UpOptions { cost, ..up_options(dir.path().join("data")) }).await;
    let endpoint = platform.addr.to_string();
    // What makes the lazily registered metrics appear: a rollout judged
    // under load, a refused call, a budget.
    let svc = dir.path().join("shop");
    std::fs::create_dir_all(&svc).expect("mkdir");
    let spec = |v: &str| {
        format!("name: shop\nteam: demo\ncommand: [hello]\nrollout:\n  steps: [50, 100]\n  interval: 1s\nenv:\n  HELLO_VERSION: {v}\n")
    };
    let mut load = None;
    for version in ["v1", "v2"] {
        std::fs::write(svc.join("paved.yaml"), spec(version)).expect("write");
        let out = paved_on(&platform, &["deploy", svc.to_str().expect("path"), "--env", "dev"]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        // v2's steps are judged on traffic.
        load.get_or_insert(Load::start(&endpoint_of(&endpoint, &platform.root_token, "shop").await, 4));
    }
    drop(load);
    let refused = paved_with("pvt1.not-a-token", &["status", "--endpoint", &endpoint]).await;
    assert!(!refused.status.success());
    let budget = paved_on(&platform, &["cost", "budget", "set", "--team", "demo", "--env", "dev", "--monthly", "100"]).await;
    assert!(budget.status.success(), "{}", text(&budget.stderr));
    // Someone asks what to trust (the current CA's expiry).
    let bundle = paved_on(&platform, &["ca", "bundle"]).await;
    assert!(bundle.status.success(), "{}", text(&bundle.stderr));

    let rules = std::fs::read_to_string(rules_dir().join("paved.rules.yml")).expect("read the rules");
    let mut names = metrics_named(&rules);
    assert!(names.len() >= 10, "{names:?}");
    // Only a process presenting a certificate (mTLS, production mode) has
    // one's expiry: `mtls::services_speak_mtls_with_broker_issued_spiffe_certificates`
    // reads it from each service.
    assert!(names.remove("paved_certificate_expiry_timestamp_seconds"));
    let metrics_url = format!("http://{endpoint}/metrics");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let exposed = text(&paved_integration_tests::http_get(&metrics_url).await.2);
        let missing: Vec<&String> = names.iter().filter(|n| !exposed.contains(&format!("# TYPE {n} "))).collect();
        if missing.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "metrics the rules read that the platform does not expose: {missing:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Prometheus evaluates every rule, each second, on what it scraped.
    let port = free_port();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: paved\n    static_configs:\n      - targets: [\"{endpoint}\"]\n",
        rules_dir().join("paved.rules.yml").display()
    );
    let (_server, url) = prometheus_with(dir.path(), &config, port);
    let evaluated = eventually("every rule evaluated", Duration::from_secs(30), || async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (status, _, body) = paved_integration_tests::try_http_get_url(&format!("{url}/api/v1/rules")).await.ok()?;
        if !status.is_success() {
            return None;
        }
        let answer: serde_json::Value = serde_json::from_slice(&body).ok()?;
        let rules: Vec<serde_json::Value> =
            answer["data"]["groups"].as_array()?.iter().flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default()).collect();
        let evaluated =
            rules.iter().all(|r| r["health"] != "unknown" && r["lastEvaluation"].as_str().is_some_and(|t| !t.starts_with("0001")));
        (rules.len() == 26 && evaluated).then_some(rules)
    })
    .await;
    let broken: Vec<String> =
        evaluated.iter().filter(|r| r["health"] != "ok").map(|r| format!("{}: {}", r["name"], r["lastError"])).collect();
    assert!(broken.is_empty(), "rules Prometheus cannot evaluate: {broken:#?}");
    // The recording rules produce series from the live metrics (a rate
    // needs two scrapes).
    let query = format!("{url}/api/v1/query?query=paved:grpc_server_errors:ratio_rate5m");
    eventually("the recording rules' series", Duration::from_secs(20), || async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let answer: serde_json::Value = serde_json::from_slice(&paved_integration_tests::http_get(&query).await.2).ok()?;
        answer["data"]["result"].as_array().is_some_and(|r| !r.is_empty()).then_some(())
    })
    .await;
    platform.stop().await.expect("stop");
}
