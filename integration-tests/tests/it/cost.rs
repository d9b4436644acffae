//! Cost attribution as a user meets it: workloads deployed with a team and
//! requests, their processes sampled from `/proc`, `paved cost report` by
//! workload and by team — by requested and by used resources, at the
//! price sheet's prices — and what sleeping saved; the same figures as
//! `paved_cost_*` metrics; a workload without a team refused in staging.

use crate::services::http_get;
use paved::up::{CostOptions, UpOptions};
use paved_integration_tests::{Load, eventually, text, up_options};
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
    let cost = CostOptions { price_sheet: Some(sheet), sample_seconds: Some(1), ..Default::default() };
    let options = UpOptions { cost, ..up_options(dir.path().join("data")) };
    let platform = paved_integration_tests::ready(&options).await;
    let endpoint = platform.addr.to_string();
    let run = |args: &[&str]| paved_integration_tests::paved_on(&platform, args);
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

    // Right-sizing from the samples: hello idles far below half a core and
    // 64 MiB; applied, it is a new revision rolled out like any other.
    let out = run(&["cost", "rightsize", "cart", "--env", "dev", "--output", "json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let advice: serde_json::Value = serde_json::from_slice(&out.stdout).expect("recommendation json");
    assert!(advice["evidence"]["samples"].as_u64().unwrap_or(0) >= 10, "{advice}");
    assert_eq!(advice["current"]["requests"], serde_json::json!({"cpu": "500m", "memory": "64Mi"}), "{advice}");
    assert!(advice["monthly_saving"].as_f64().unwrap_or(0.0) > 0.0, "{advice}");
    let recommended = advice["recommended"].clone();
    let out = run(&["cost", "rightsize", "cart", "--env", "dev", "--apply"]).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("cpu request     500m -> "), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("revision 2 of cart: promoted with the recommended resources"), "{}", text(&out.stdout));
    let status = run(&["status", "--output", "json"]).await;
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    let row = status["workloads"].as_array().expect("workloads").iter().find(|w| w["name"] == "cart").expect("cart").clone();
    assert_eq!((row["revision"].as_i64(), row["state"].as_str()), (Some(2), Some("healthy")), "{row}");
    let revision = running_spec(&endpoint, &platform.root_token, "dev", "cart").await;
    let requests = format!("cpu: {}", recommended["requests"]["cpu"].as_str().expect("cpu"));
    assert!(revision.contains(&requests) && revision.contains("team: shop"), "{revision}");
    // Too few samples: a precise refusal, not a guess.
    let out = run(&["cost", "rightsize", "index", "--env", "qa", "--since", "1s"]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("a recommendation needs at least 10"), "{}", text(&out.stderr));
    // No Prometheus configured here: asking for it is refused, saying why.
    let out = run(&["cost", "rightsize", "cart", "--env", "dev", "--source", "prometheus"]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("has no Prometheus configured"), "{}", text(&out.stderr));

    // Deleted at once, most likely before a sample described it: its time
    // is still on a line of its own name (with nothing requested, as its
    // spec is gone), not on a line without one.
    let brief = dir.path().join("brief");
    std::fs::create_dir_all(&brief).expect("mkdir");
    std::fs::write(brief.join("paved.yaml"), "name: brief\ncommand: [hello]\n").expect("write");
    let out = run(&["deploy", brief.to_str().expect("path"), "--env", "qa"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["delete", "brief", "--env", "qa"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let named = eventually("brief's line, named", Duration::from_secs(20), || async {
        let r = report("workload").await;
        let unnamed = r["lines"].as_array().expect("lines").iter().any(|l| l["workload"] == "");
        line(&r, "brief").filter(|l| !unnamed && l["environment"] == "qa" && figure(l, "replica_hours") > 0.0)
    })
    .await;
    assert_eq!(named["team"], "", "{named}");
    platform.stop().await.expect("stop");
}

/// A spec of cart with `replicas`: half a core and 64 MiB each.
fn cart(replicas: u32) -> String {
    format!(
        "name: cart\nteam: shop\ncommand: [hello]\nreplicas: {replicas}\nresources:\n  requests: {{cpu: 500m, memory: 64Mi}}\n\
         rollout:\n  steps: [100]\n  interval: 1s\n"
    )
}

/// The budget crossings in the audit log: (team, environment, percent).
async fn crossings(endpoint: &str, token: &str) -> Vec<(String, String, u32)> {
    use paved_proto::audit::v1::{ListLogEntriesRequest, LogEntry, audit_service_client::AuditServiceClient};
    use prost::Message;
    let channel = tonic::transport::Channel::from_shared(format!("http://{endpoint}")).expect("uri").connect().await.expect("connect");
    let mut client = AuditServiceClient::new(paved_integration_tests::authed(channel, token));
    let leaves = client.list_log_entries(ListLogEntriesRequest { start: 0, count: 1000 }).await.expect("entries").into_inner().entries;
    leaves
        .iter()
        .filter_map(|leaf| match LogEntry::decode(leaf.as_slice()).ok()?.event?.payload? {
            paved_proto::events::v1::envelope::Payload::BudgetCrossed(b) => Some((b.team, b.environment, b.threshold_percent)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn plans_show_cost_and_budgets_deny_what_would_exceed_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cost = CostOptions { sample_seconds: Some(1), ..Default::default() };
    let options = UpOptions { cost, ..up_options(dir.path().join("data")) };
    let platform = paved_integration_tests::ready(&options).await;
    let endpoint = platform.addr.to_string();
    let token = platform.root_token.clone();
    let run = |args: &[&str]| paved_integration_tests::paved_on(&platform, args);
    let svc = dir.path().join("cart");
    std::fs::create_dir_all(&svc).expect("mkdir");
    let svc_dir = svc.to_str().expect("path").to_string();
    std::fs::write(svc.join("paved.yaml"), cart(2)).expect("write");
    let out = run(&["deploy", &svc_dir, "--env", "dev"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // OpenCost's prices: two replicas of half a core and 64 MiB, 730 hours.
    let month = |replicas: f64| replicas * 730.0 * (0.5 * 0.031611 + 64.0 / 1024.0 * 0.004237);

    // The plan prices the change, before and after, once the cost scheduler
    // has read what runs (until then it says why there is no price).
    std::fs::write(svc.join("paved.yaml"), cart(4)).expect("write");
    let plan = eventually("a priced plan", Duration::from_secs(20), || async {
        let out = run(&["plan", &svc_dir, "--env", "dev", "--output", "json"]).await;
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan json");
        if plan["cost"].is_null() {
            assert!(plan["cost_error"].as_str().is_some_and(|e| e.contains("Unavailable")), "{plan}");
        }
        (!plan["cost"].is_null()).then_some(plan)
    })
    .await;
    let figure = |key: &str| plan["cost"][key].as_f64().unwrap_or_else(|| panic!("cost.{key} in {plan}"));
    assert!(close(figure("after_monthly"), month(4.0)), "{plan}");
    let before = eventually("the running month known", Duration::from_secs(20), || async {
        let out = run(&["plan", &svc_dir, "--env", "dev", "--output", "json"]).await;
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan json");
        let before = plan["cost"]["before_monthly"].as_f64().unwrap_or(0.0);
        (before > 0.0).then_some(before)
    })
    .await;
    assert!(close(before, month(2.0)), "{before}");
    assert_eq!((plan["cost"]["currency"].as_str(), plan["cost"]["team"].as_str()), (Some("USD"), Some("shop")), "{plan}");
    let out = run(&["plan", &svc_dir, "--env", "dev"]).await;
    let expected = format!("  cost: {:.2} -> {:.2} USD a month by request\n", month(2.0), month(4.0));
    assert!(text(&out.stdout).contains(&expected), "{}", text(&out.stdout));

    // A budget the team runs 84% of: 80% crossed, an event once.
    let budget = month(2.0) / 0.84;
    let out = run(&["cost", "budget", "set", "--team", "shop", "--env", "dev", "--monthly", &format!("{budget}")]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("(84%)"), "{}", text(&out.stdout));
    let shop = |percent| ("shop".to_string(), "dev".to_string(), percent);
    eventually("the 80% crossing in the audit log", Duration::from_secs(30), || async {
        (crossings(&endpoint, &token).await == [shop(80)]).then_some(())
    })
    .await;
    // Four replicas would take the team over it: the plan says so, a deploy is denied.
    let out = run(&["plan", &svc_dir, "--env", "dev"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("policy: team shop would run"), "{}", text(&out.stdout));
    let out = run(&["deploy", &svc_dir, "--env", "dev"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&format!("over its budget of {:.2}", budget)), "{}", text(&out.stderr));
    // One replica saves: deployed.
    std::fs::write(svc.join("paved.yaml"), cart(1)).expect("write");
    let out = run(&["deploy", &svc_dir, "--env", "dev"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = eventually("the budget's month after the saving", Duration::from_secs(20), || async {
        let out = run(&["cost", "budget", "list", "--output", "json"]).await;
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("budgets json");
        close(listed["budgets"][0]["forecast_monthly"].as_f64().unwrap_or(0.0), month(1.0)).then_some(listed)
    })
    .await;
    assert_eq!((listed["budgets"][0]["team"].as_str(), listed["currency"].as_str()), (Some("shop"), Some("USD")), "{listed}");

    // Lowered under what runs: 100% crossed (80% again: a budget set anew rearms).
    let out = run(&["cost", "budget", "set", "--team", "shop", "--env", "dev", "--monthly", &format!("{}", month(1.0) / 2.0)]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    eventually("the 100% crossing in the audit log", Duration::from_secs(30), || async {
        (crossings(&endpoint, &token).await == [shop(80), shop(80), shop(100)]).then_some(())
    })
    .await;
    eventually("twice the budget in its metric", Duration::from_secs(20), || async {
        http_get(&endpoint, "/metrics").await.contains(r#"paved_cost_budget_ratio{team="shop",environment="dev"} 2"#).then_some(())
    })
    .await;

    // Bad budgets are refused with the field.
    let out = run(&["cost", "budget", "set", "--team", "shop", "--env", "dev", "--monthly=-5"]).await;
    let stderr = text(&out.stderr);
    assert!(!out.status.success() && stderr.contains("monthly: a budget is an amount of at least 0 (0 removes it), not -5"), "{stderr}");
    let out = run(&["cost", "budget", "set", "--team", "Shop!", "--env", "dev", "--monthly", "5"]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("team: invalid name \"Shop!\""), "{}", text(&out.stderr));
    platform.stop().await.expect("stop");
}

/// The spec the workload's current revision runs.
async fn running_spec(endpoint: &str, token: &str, environment: &str, name: &str) -> String {
    use paved_proto::provisioner::v1::{GetRevisionRequest, GetWorkloadRequest, provisioner_service_client::ProvisionerServiceClient};
    let channel = tonic::transport::Channel::from_shared(format!("http://{endpoint}")).expect("uri").connect().await.expect("connect");
    let mut client = ProvisionerServiceClient::new(paved_integration_tests::authed(channel, token));
    let request = GetWorkloadRequest { environment: environment.into(), name: name.into() };
    let workload = client.get_workload(request).await.expect("workload").into_inner().workload.expect("a workload");
    let request = GetRevisionRequest { id: workload.current_revision };
    client.get_revision(request).await.expect("revision").into_inner().revision.expect("a revision").spec_yaml
}
