//! The canary analyzer's demonstration: with load on `hello`, a v2 with 5%
//! errors is rolled back at the first step, a v2 30% slower is rolled back,
//! and a v2 identical to v1 is promoted to 100%; `paved canary explain`
//! says why in words and numbers, and `paved canary replay` judges the
//! recorded looks again under another analysis.

use crate::rollouts::{all_traffic_on, embedded, endpoint_of};
use paved_integration_tests::{Load, eventually, paved_with, text};
use paved_proto::audit::v1::{ListEntriesRequest, audit_service_client::AuditServiceClient};
use std::time::Duration;

/// `shop`: hello with 40 ms of work per request (well above the scheduling
/// noise of a busy 2-core machine, so 30% more is 30% more at p99 too) and
/// a short rollout: steps of 2 s at 20%, 50% and 100%.
fn spec(version: &str, latency_ms: u32, error_rate: &str) -> String {
    format!(
        "name: shop\ncommand: [\"hello\"]\nhealth:\n  period: 200ms\n  timeout: 200ms\nrollout:\n  steps: [20, 50, 100]\n  interval: 2s\n  max_error_rate: 0.02\nenv:\n  HELLO_VERSION: {version}\n  HELLO_LATENCY_MS: \"{latency_ms}\"\n  HELLO_ERROR_RATE: \"{error_rate}\"\n"
    )
}

/// The rollout id `paved deploy` reports on stderr.
fn rollout_of(stderr: &str) -> String {
    let start = stderr.find("(rollout ").map(|i| i + "(rollout ".len()).expect("a rollout id");
    stderr[start..].split(')').next().expect("id").to_string()
}

#[tokio::test]
async fn canaries_with_errors_or_latency_are_rolled_back_and_an_identical_one_is_promoted() {
    let (dir, platform, svc) = embedded().await;
    let endpoint = platform.addr.to_string();
    let svc_dir = svc.to_str().expect("path").to_string();
    let deploy = |version: &str, latency_ms: u32, error_rate: &str| {
        std::fs::write(svc.join("paved.yaml"), spec(version, latency_ms, error_rate)).expect("write spec");
        paved_with(&platform.root_token, &["deploy", &svc_dir, "--env", "dev", "--endpoint", &endpoint])
    };
    let out = deploy("v1", 40, "0").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shop = endpoint_of(&endpoint, &platform.root_token, "shop").await;
    let load = Load::start(&shop, 32);

    // 5% errors: rolled back at the first step.
    let out = deploy("v2", 40, "0.05").await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "rolled back:\n{stderr}");
    assert!(stderr.contains("step 1 (20% of traffic) failed: errors (5xx answers): "), "{stderr}");
    let errors_rollout = rollout_of(&stderr);
    all_traffic_on(&shop, "v1").await;

    // 30% slower (52 ms against 40 ms): rolled back.
    let out = deploy("v3", 52, "0").await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "rolled back:\n{stderr}");
    assert!(stderr.contains("failed: p99 (requests slower than the baseline's p99): "), "{stderr}");
    all_traffic_on(&shop, "v1").await;

    // Identical to v1: promoted through every step.
    let out = deploy("v4", 40, "0").await;
    let stderr = text(&out.stderr);
    if !out.status.success() {
        let why = paved_with(&platform.root_token, &["canary", "explain", &rollout_of(&stderr), "--endpoint", &endpoint]).await;
        panic!("not promoted:\n{stderr}\n{}", text(&why.stdout));
    }
    for passed in ["step 1 passed: ", "step 2 passed: ", "step 3 passed: no baseline at 100% of traffic"] {
        assert!(stderr.contains(passed), "missing {passed:?} in:\n{stderr}");
    }
    let identical = rollout_of(&stderr);
    all_traffic_on(&shop, "v4").await;
    assert!(load.seen("hello from v1") > 1000 && load.seen("hello from v4") > 500, "load ran throughout");
    drop(load);

    // Why, in words and numbers.
    let out = paved_with(&platform.root_token, &["canary", "explain", &errors_rollout, "--endpoint", &endpoint]).await;
    let why = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(why.contains("step 1 (20% of traffic): ") && why.contains(": fail: errors (5xx answers): "), "{why}");
    assert!(why.contains("likelihood ratio") && why.contains("sequential") && why.contains("slo"), "{why}");
    let out = paved_with(&platform.root_token, &["canary", "explain", &identical, "--endpoint", &endpoint]).await;
    let why = text(&out.stdout);
    assert!(why.contains("step 3 (100% of traffic)") && why.contains(": pass: "), "{why}");
    // The same for scripts: the failing look of step 1, its checks' numbers.
    let args = ["canary", "explain", &errors_rollout, "--output", "json", "--endpoint", &endpoint];
    let why: serde_json::Value = serde_json::from_slice(&paved_with(&platform.root_token, &args).await.stdout).expect("explain JSON");
    let failed = why["decisions"].as_array().expect("decisions").iter().find(|d| d["verdict"] == "fail").expect("a failing look").clone();
    assert_eq!(failed["step"], 1, "{failed}");
    let sequential = failed["checks"].as_array().expect("checks").iter().find(|c| c["judge"] == "sequential").expect("sequential").clone();
    assert!(sequential["statistic"].as_f64().is_some() && sequential["threshold"].as_f64().is_some_and(|t| t > 0.0), "{sequential}");
    let args = ["canary", "replay", &errors_rollout, "--output", "json", "--endpoint", &endpoint];
    let out = paved_with(&platform.root_token, &args).await;
    let replayed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("replay JSON");
    assert_eq!(out.status.code(), Some(1), "{replayed}");
    assert!(replayed["failed"] == true && replayed["first_failure"].as_u64().is_some_and(|l| l > 0), "{replayed}");

    // Replayed as recorded, the errors rollout fails again (exit 1); under
    // an analysis that only watches latency, no look fails.
    let out = paved_with(&platform.root_token, &["canary", "replay", &errors_rollout, "--endpoint", &endpoint]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("under the analysis recorded, rollout") && text(&out.stdout).contains("fails at look"),
        "{}",
        text(&out.stdout)
    );
    let latency_only = dir.path().join("latency-only.yaml");
    let analysis = "analysis:\n  metrics:\n    p99:\n      kind: latency\n      quantile: 0.99\n";
    std::fs::write(&latency_only, format!("{}{analysis}", spec("v2", 40, "0.05"))).expect("write");
    let out = paved_with(
        &platform.root_token,
        &["canary", "replay", &errors_rollout, "--spec", latency_only.to_str().expect("path"), "--endpoint", &endpoint],
    )
    .await;
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("under this analysis, no look of rollout"), "{}", text(&out.stdout));
    // A bad replacement spec is refused with its location, before anything is sent.
    std::fs::write(&latency_only, format!("{}analysis:\n  alpha: 2\n", spec("v2", 40, "0"))).expect("write");
    let out = paved_with(
        &platform.root_token,
        &["canary", "replay", &errors_rollout, "--spec", latency_only.to_str().expect("path"), "--endpoint", &endpoint],
    )
    .await;
    assert!(
        !out.status.success() && text(&out.stderr).contains("latency-only.yaml:15:10: must be between 0 and 1"),
        "{}",
        text(&out.stderr)
    );
    let out = paved_with(&platform.root_token, &["canary", "explain", "no-such-rollout", "--endpoint", &endpoint]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("no judged look of rollout no-such-rollout"), "{}", text(&out.stderr));

    // Every verdict is an event, in the audit log.
    let audit = AuditServiceClient::new(paved::client::connect_with(&endpoint, &platform.root_token).await.expect("connect"));
    eventually("canary verdicts in the audit log", Duration::from_secs(20), || {
        let mut audit = audit.clone();
        async move {
            let entries = audit.list_entries(ListEntriesRequest { page_size: 5000, page_token: String::new() }).await.ok()?.into_inner();
            let verdicts = entries.entries.iter().filter(|e| e.r#type == "paved.canary_analyzer.v1.canary.verdict").count();
            (verdicts >= 5).then_some(())
        }
    })
    .await;
    platform.stop().await.expect("stop");
}
