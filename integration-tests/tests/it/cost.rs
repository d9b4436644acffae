//! Cost attribution as a user meets it: workloads deployed with a team and
//! requests, their processes sampled from `/proc`, `paved cost report` by
//! workload and by team — by requested and by used resources, at the
//! price sheet's prices — and what sleeping saved; the same figures as
//! `paved_cost_*` metrics; a workload without a team refused in staging.

use crate::services::http_get;
use paved::up::{CostOptions, Platform, UpOptions};
use paved_integration_tests::{Load, eventually, paved_with, text, up_options};
use std::time::Duration;

/// Prices that make small figures visible: a core-hour 3600, a GiB-hour 36.
const SHEET: &str = "currency: EUR\ncpu_core_hour: 3600\nmemory_gib_hour: 36\nenvironments:\n  qa: {cpu_core_hour: 7200}\n";

const CART: &str = "name: cart\nteam: shop\ncommand: [hello]\nreplicas: 2\nresources:\n  requests: {cpu: 500m, memory: 64Mi}\n\
    rollout:\n  steps: [100]\n  interval: 1s\n";
const INDEX: &str = "name: index\nteam: search\ncommand: [hello]\nrollout:\n  steps: [100]\n  interval: 1s\n";

/// Cart's rate by request, per replica-hour: half a core and 64 MiB.
const CART_RATE: f64 = 0.5 * 3600.0 + 64.0 / 1024.0 * 36.0;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

#[tokio::test]
async fn cost_is_attributed_by_team_from_requests_and_measured_usage() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sheet = dir.path().join("prices.yaml");
    std::fs::write(&sheet, SHEET).expect("write the price sheet");
    let cost = CostOptions { price_sheet: Some(sheet), sample_seconds: Some(1) };
    let options = UpOptions { cost, ..up_options(dir.path().join("data")) };
    let platform = Platform::start(&options).await.expect("paved up");
    platform.wait_ready(Duration::from_secs(30), |_| {}).await.expect("ready");
    let endpoint = platform.addr.to_string();
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--endpoint", &endpoint]);
        paved_with(&platform.root_token, &all)
    };
    for (name, spec, env) in [("cart", CART, "dev"), ("index", INDEX, "qa")] {
        let svc = dir.path().join(name);
        std::fs::create_dir_all(&svc).expect("mkdir");
        std::fs::write(svc.join("paved.yaml"), spec).expect("write");
        let out = run(&["deploy", svc.to_str().expect("path"), "--env", env]).await;
        assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    }
    // Staging and prod attribute everything: no team, no deploy.
    let orphan = dir.path().join("orphan");
    std::fs::create_dir_all(&orphan).expect("mkdir");
    std::fs::write(orphan.join("paved.yaml"), "name: orphan\ncommand: [hello]\n").expect("write");
    let out = run(&["deploy", orphan.to_str().expect("path"), "--env", "staging"]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("team is not set"), "{}", text(&out.stderr));

    // Some work for index's processes, then samples of both.
    let status = run(&["status", "--output", "json"]).await;
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    let index_endpoint =
        status["workloads"].as_array().expect("workloads").iter().find(|w| w["name"] == "index").expect("index")["endpoint"]
            .as_str()
            .expect("endpoint")
            .to_string();
    let load = Load::start(&index_endpoint, 2);
    let report = |by: &'static str| {
        let run = run(&["cost", "report", "--by", by, "--since", "1h", "--output", "json"]);
        async move {
            let out = run.await;
            assert!(out.status.success(), "{}", text(&out.stderr));
            serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("report json")
        }
    };
    let line = |report: &serde_json::Value, workload: &str| {
        report["lines"].as_array().expect("lines").iter().find(|l| l["workload"] == workload).cloned()
    };
    let figure = |line: &serde_json::Value, key: &str| line[key].as_f64().unwrap_or_else(|| panic!("{key} in {line}"));
    let by_workload = eventually("samples of both workloads", Duration::from_secs(30), || async {
        let r = report("workload").await;
        let sampled = |w| line(&r, w).is_some_and(|l| l["samples"].as_u64().unwrap_or(0) >= 6);
        (sampled("cart") && sampled("index")).then_some(r)
    })
    .await;
    assert!(load.seen("hello") > 0, "index served the load");
    drop(load);
    assert_eq!(by_workload["currency"], "EUR");
    let cart = line(&by_workload, "cart").expect("cart");
    assert_eq!((cart["team"].as_str(), cart["environment"].as_str()), (Some("shop"), Some("dev")), "{cart}");
    let replica_hours = figure(&cart, "replica_hours");
    assert!(replica_hours > 2.0 * 2.0 / 3600.0, "two replicas, healthy for seconds: {cart}");
    assert!(close(figure(&cart, "requested_cost"), replica_hours * CART_RATE), "by request, at its requests: {cart}");
    assert!(figure(&cart, "memory_gib_hours") > 0.0 && figure(&cart, "used_cost") > 0.0, "used, as measured: {cart}");
    assert!(figure(&cart, "used_cost") < figure(&cart, "requested_cost"), "hello idles far below half a core: {cart}");
    let index = line(&by_workload, "index").expect("index");
    assert_eq!(index["team"], "search");
    assert_eq!(figure(&index, "requested_cost"), 0.0, "it requests nothing: {index}");
    assert!(figure(&index, "cpu_core_hours") > 0.0, "its CPU under load is measured: {index}");
    // qa's price sheet line: a core-hour costs 7200 there.
    let used = figure(&index, "cpu_core_hours") * 7200.0 + figure(&index, "memory_gib_hours") * 36.0;
    assert!(close(figure(&index, "used_cost"), used), "at qa's prices: {index}");

    // By team: one line each, adding up to the total.
    let by_team = report("team").await;
    let teams: Vec<&str> = by_team["lines"].as_array().expect("lines").iter().filter_map(|l| l["team"].as_str()).collect();
    assert_eq!(teams.len(), 2, "{by_team}");
    assert!(teams.contains(&"shop") && teams.contains(&"search"), "{by_team}");
    assert!(by_team["lines"][0].get("workload").is_none(), "a line by team names no workload: {by_team}");
    let sum: f64 = by_team["lines"].as_array().expect("lines").iter().map(|l| figure(l, "requested_cost")).sum();
    assert!(close(figure(&by_team["total"], "requested_cost"), sum), "{by_team}");

    // Asleep, cart costs nothing and saves what it would have cost.
    let out = run(&["sleep", "cart", "--env", "dev"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let asleep = report("workload").await;
    let cart = line(&asleep, "cart").expect("cart");
    let slept = figure(&cart, "slept_hours");
    assert!(slept > 2.0 / 3600.0, "{cart}");
    assert!(close(figure(&cart, "savings"), slept * 2.0 * CART_RATE), "two replicas asleep, at their requests: {cart}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let later = report("workload").await;
    let still = line(&later, "cart").expect("cart");
    assert!(close(figure(&still, "replica_hours"), figure(&cart, "replica_hours")), "no running time while asleep: {still}");
    assert!(figure(&still, "slept_hours") > slept, "sleep time grows: {still}");

    // People get a table; Prometheus gets the month to date.
    let out = run(&["cost", "report", "--by", "workload"]).await;
    let table = text(&out.stdout);
    assert!(table.contains("REQUESTED EUR") && table.contains("shop") && table.contains("total"), "{table}");
    let out = run(&["cost", "report", "--since", "0d"]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("--since \"0d\" must be more than 0"), "{}", text(&out.stderr));
    let metrics = eventually("cost metrics", Duration::from_secs(20), || async {
        let m = http_get(&endpoint, "/metrics").await;
        m.contains(r#"paved_cost_savings{team="shop",environment="dev",workload="cart"}"#).then_some(m)
    })
    .await;
    assert!(metrics.contains(r#"paved_cost_requested{team="search",environment="qa",workload="index"} 0"#), "{metrics}");
    platform.stop().await.expect("stop");
}
