//! The Prometheus provider against a real Prometheus (Debian's, which
//! `cargo xtask test` installs) scraping a real embedded platform.

use crate::rollouts::endpoint_of;
use paved::up::{Platform, UpOptions};
use paved_integration_tests::{Load, eventually, paved_with, text, up_options};
use paved_prometheus::{Prometheus, ProviderError};
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, SystemTime},
};

pub(crate) struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// Prometheus scraping `target` every second, on a free port.
fn prometheus(dir: &std::path::Path, target: &str) -> (Server, String) {
    prometheus_on(dir, target, free_port(), "1s")
}

/// Prometheus on `port` scraping `target` every `every`.
fn prometheus_on(dir: &std::path::Path, target: &str, port: u16, every: &str) -> (Server, String) {
    let text = format!(
        "global:\n  scrape_interval: {every}\nscrape_configs:\n  - job_name: paved\n    static_configs:\n      - targets: [\"{target}\"]\n"
    );
    prometheus_with(dir, &text, port)
}

/// Prometheus on `port` with the configuration `text`, keeping its data in `dir`.
pub(crate) fn prometheus_with(dir: &std::path::Path, text: &str, port: u16) -> (Server, String) {
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, text).expect("write config");
    let binary = std::env::var("PAVED_PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
    let child = Command::new(&binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}; run the tests through `cargo xtask test`, which installs Prometheus"));
    (Server(child), format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn range_queries_against_a_real_prometheus() {
    let dir = tempfile::tempdir().expect("temp dir");
    let platform = Platform::start(&up_options(dir.path().join("data"))).await.expect("paved up");
    platform.wait_ready(Duration::from_secs(30), |_| {}).await.expect("ready");
    // A few gRPC requests for the platform's counters to count.
    let out = paved_with(&platform.root_token, &["status", "--endpoint", &platform.addr.to_string()]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (mut server, url) = prometheus(dir.path(), &platform.addr.to_string());
    let provider = Prometheus::new(&url, Duration::from_secs(5));
    let range = || {
        let end = SystemTime::now();
        (end - Duration::from_secs(60), end)
    };

    // The platform's own gRPC counters, scraped.
    let series = eventually("scraped gRPC counters", Duration::from_secs(30), || async {
        // Prometheus scrapes for the first time some seconds after it starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (start, end) = range();
        let q = "sum(paved_grpc_server_requests_total{job=\"paved\"})";
        // Until the first scrapes land the answer is "no data".
        provider.query_range(q, start, end, Duration::from_secs(1)).await.ok()
    })
    .await;
    let last = series[0].values.last().expect("a value").1;
    assert!(last > 0.0, "the platform has answered gRPC requests: {series:?}");

    let (start, end) = range();
    let step = Duration::from_secs(1);
    match provider.query_range("sum(rate(paved_grpc_server_requests_total[", start, end, step).await {
        Err(ProviderError::Query { kind, message }) => assert!(kind == "bad_data" && message.contains("parse error"), "{kind}: {message}"),
        other => panic!("a malformed query: {other:?}"),
    }
    match provider.query_range("up{job=\"nothing-scrapes-this\"}", start, end, step).await {
        Err(ProviderError::NoData { why, .. }) => assert_eq!(why, "no series matched"),
        other => panic!("a query without series: {other:?}"),
    }
    match provider.query_range("0 / 0", start, end, step).await {
        Err(ProviderError::NoData { why, .. }) => assert_eq!(why, "every value is NaN or infinite"),
        other => panic!("a NaN-only series: {other:?}"),
    }

    drop(server.0.kill());
    let _ = server.0.wait();
    match provider.query_range("up", start, end, step).await {
        Err(e @ ProviderError::Unreachable { .. }) => {
            assert!(e.to_string().starts_with(&format!("Prometheus at {url} is unreachable")), "{e}")
        }
        other => panic!("Prometheus down: {other:?}"),
    }
}

/// `shop` judged on one metric, from Prometheus: each revision's share of
/// 5xx answers as Prometheus scraped it from the workload proxy's counters
/// (the baseline's under its own `revision` label).
fn judged_by_prometheus(version: &str, error_rate: &str) -> String {
    let query = "(sum(rate(paved_proxy_requests_total{revision=\"$REVISION\",class=\"5xx\"}[2s])) or vector(0)) / sum(rate(paved_proxy_requests_total{revision=\"$REVISION\"}[2s]))";
    format!(
        "name: shop\nteam: shop\ncommand: [\"hello\"]\nhealth:\n  period: 200ms\n  timeout: 200ms\nrollout:\n  steps: [50, 100]\n  interval: 8s\nenv:\n  HELLO_VERSION: {version}\n  HELLO_ERROR_RATE: \"{error_rate}\"\nanalysis:\n  metrics:\n    errors:\n      kind: prometheus\n      query: '{query}'\n      critical: true\n      max_change: 0.5\n"
    )
}

/// A rollout whose analysis is a Prometheus query, against Debian's
/// Prometheus scraping the platform: a canary with 20% errors is rolled
/// back by the Kayenta judge on the scraped series; an identical one is
/// promoted.
#[tokio::test]
async fn rollouts_judged_on_a_prometheus_metric() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let options = UpOptions { prometheus_url: Some(format!("http://127.0.0.1:{port}")), ..up_options(dir.path().join("data")) };
    let platform = Platform::start(&options).await.expect("paved up");
    platform.wait_ready(Duration::from_secs(30), |_| {}).await.expect("ready");
    let endpoint = platform.addr.to_string();
    let (_server, url) = prometheus_on(dir.path(), &endpoint, port, "500ms");
    let provider = Prometheus::new(&url, Duration::from_secs(5));
    eventually("Prometheus scraping the platform", Duration::from_secs(30), || async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let end = SystemTime::now();
        provider.query_range("up{job=\"paved\"}", end - Duration::from_secs(10), end, Duration::from_secs(1)).await.ok()
    })
    .await;
    let svc = dir.path().join("shop");
    std::fs::create_dir_all(&svc).expect("mkdir");
    let svc_dir = svc.to_str().expect("path").to_string();
    let deploy = |version: &str, error_rate: &str| {
        std::fs::write(svc.join("paved.yaml"), judged_by_prometheus(version, error_rate)).expect("write spec");
        paved_with(&platform.root_token, &["deploy", &svc_dir, "--env", "dev", "--endpoint", &endpoint])
    };
    let out = deploy("v1", "0").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let _load = Load::start(&endpoint_of(&endpoint, &platform.root_token, "shop").await, 8);

    let out = deploy("v2", "0.2").await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "rolled back:\n{stderr}");
    assert!(
        stderr.contains("step 1 (50% of traffic) failed: critical metric errors: shift +0.") && stderr.contains("the canary is higher"),
        "{stderr}"
    );

    let out = deploy("v3", "0").await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "promoted:\n{stderr}");
    // All 0 on both sides, or a difference within the allowed change.
    let passed = ["every value is 0 on both sides", "no difference beyond the allowed change"];
    assert!(stderr.contains("step 1 passed: errors (kayenta): ") && passed.iter().any(|p| stderr.contains(p)), "{stderr}");

    // Every panel of the Grafana dashboards asks Prometheus something it
    // answers with data, the canary verdicts included. Meanwhile someone
    // reads the audit log (its read latency) and asks each service
    // something, as an ops team's platform would be (a ratio over calls
    // that stopped is 0/0, no data); and a token that may only read the
    // provisioner is refused by the others.
    let issue = |subject: &'static str, scope: &'static str| {
        let args = ["token", "issue", "--subject", subject, "--scope", scope, "--ttl", "1h", "--endpoint", &endpoint];
        let out = paved_with(&platform.root_token, &args);
        async move {
            let out = out.await;
            assert!(out.status.success(), "{}", text(&out.stderr));
            text(&out.stdout).trim().to_string()
        }
    };
    let narrow = issue("spiffe://paved/dev/narrow", "read:provisioner").await;
    // shop's own identity reads a secret (there is none: NOT_FOUND is a
    // call all the same), as the broker's per-workload panel shows.
    let shop = issue("spiffe://paved/dev/shop", "secrets:read:dev/shop/api-key").await;
    let out = paved_with(
        &platform.root_token,
        &["cost", "budget", "set", "--team", "shop", "--env", "dev", "--monthly", "100", "--endpoint", &endpoint],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    const NOTHING: &str = "00000000-0000-0000-0000-000000000000";
    let calls: [&[&str]; 5] = [
        &["token", "list"],
        &["cost", "report"],
        &["audit", "query", "--actor", "root"],
        &["rollback", "shop", "--env", "nowhere"],
        &["canary", "explain", NOTHING],
    ];
    for args in calls {
        let args: Vec<&str> = args.iter().copied().chain(["--endpoint", &endpoint]).collect();
        let out = paved_with(&narrow, &args).await;
        assert!(text(&out.stderr).contains("lacks scope"), "{args:?} refused: {}", text(&out.stderr));
    }
    let reader = {
        let (endpoint, root, shop) = (endpoint.clone(), platform.root_token.clone(), shop.clone());
        tokio::spawn(async move {
            loop {
                paved_integration_tests::http_get(&format!("http://{endpoint}/audit/log/checkpoint")).await;
                for args in calls {
                    let args: Vec<&str> = args.iter().copied().chain(["--endpoint", &endpoint]).collect();
                    paved_with(&root, &args).await;
                }
                paved_with(&shop, &["secrets", "get", "dev/shop/api-key", "--endpoint", &endpoint]).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let dashboards = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/dashboards");
    let mut queries = 0;
    for file in std::fs::read_dir(&dashboards).expect("dashboards").flatten() {
        let dashboard: serde_json::Value = serde_json::from_slice(&std::fs::read(file.path()).expect("read")).expect("a JSON dashboard");
        // The variables offer the workload this test deployed.
        for (variable, wanted) in [("environment", "dev"), ("workload", "shop")] {
            let list = dashboard["templating"]["list"].as_array().expect("variables");
            let query = list.iter().find(|v| v["name"] == variable).and_then(|v| v["query"].as_str()).expect("the variable");
            let query = query.replace("$environment", "dev");
            let (series, label) = label_values(&query);
            eventually(&format!("{variable} offers {wanted}"), Duration::from_secs(20), || async {
                let end = SystemTime::now();
                let got = provider
                    .query_range(&format!("count by ({label}) ({series})"), end - Duration::from_secs(30), end, Duration::from_secs(1))
                    .await
                    .ok()?;
                got.iter().any(|s| s.labels.get(label).is_some_and(|v| v == wanted)).then_some(())
            })
            .await;
        }
        for panel in dashboard["panels"].as_array().expect("panels").iter().filter(|p| p["type"] != "row") {
            for target in panel["targets"].as_array().expect("targets") {
                let expr = target["expr"].as_str().expect("expr").replace("$environment", "dev").replace("$workload", "shop");
                let title = panel["title"].as_str().unwrap_or_default();
                queries += 1;
                eventually(&format!("data for {title:?} in {}", file.path().display()), Duration::from_secs(20), || async {
                    let end = SystemTime::now();
                    let got = provider.query_range(&expr, end - Duration::from_secs(120), end, Duration::from_secs(1)).await.ok()?;
                    (!got.is_empty()).then_some(())
                })
                .await;
            }
        }
    }
    assert!(queries >= 50, "only {queries} panel queries found");
    reader.abort();
    platform.stop().await.expect("stop");
}

/// `label_values(<series>, <label>)`, Grafana's variable query, as its parts.
fn label_values(query: &str) -> (&str, &str) {
    let inner = query.strip_prefix("label_values(").and_then(|q| q.strip_suffix(')')).expect("a label_values query");
    let (series, label) = inner.rsplit_once(',').expect("series, label");
    (series.trim(), label.trim())
}

/// Right-sizing from Prometheus: the provisioner exports each replica's
/// use (`paved_instance_*`), a real Prometheus scrapes it, and `paved cost
/// rightsize --source prometheus` recommends from its series, showing the
/// queries; its memory agrees with the samples' (the same `/proc` reads).
/// Prometheus gone, the answer says so.
#[tokio::test]
async fn rightsizing_reads_use_from_prometheus() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let cost = paved::up::CostOptions { sample_seconds: Some(1), ..Default::default() };
    let options = UpOptions { prometheus_url: Some(format!("http://127.0.0.1:{port}")), cost, ..up_options(dir.path().join("data")) };
    let platform = paved_integration_tests::ready(&options).await;
    let endpoint = platform.addr.to_string();
    let run = |args: &[&str]| paved_integration_tests::paved_on(&platform, args);
    let svc = dir.path().join("basket");
    std::fs::create_dir_all(&svc).expect("mkdir");
    let spec = "name: basket\nteam: shop\ncommand: [hello]\nreplicas: 2\nresources:\n  requests: {cpu: 500m, memory: 64Mi}\n";
    std::fs::write(svc.join("paved.yaml"), spec).expect("write");
    let out = run(&["deploy", svc.to_str().expect("path"), "--env", "dev"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The provisioner's own metrics, per replica.
    let metrics = || async {
        String::from_utf8_lossy(&paved_integration_tests::http_get(&format!("http://{endpoint}/metrics")).await.2).into_owned()
    };
    let mine = |line: &str| line.contains("workload=\"basket\"");
    let series = eventually("replica usage exported", Duration::from_secs(10), || async {
        let metrics = metrics().await;
        // Other tests' platforms share this process's registry: only
        // basket's series are this one's.
        let lines: Vec<String> =
            metrics.lines().filter(|l| l.starts_with("paved_instance_memory_bytes{") && mine(l)).map(String::from).collect();
        (lines.len() == 2).then_some(lines)
    })
    .await;
    assert!(series.iter().all(|l| l.contains("environment=\"dev\"")), "{series:?}");
    let counters = metrics().await.lines().filter(|l| l.starts_with("paved_instance_cpu_seconds_total{") && mine(l)).count();
    assert_eq!(counters, 2, "a counter per replica");
    let (mut server, _) = prometheus_on(dir.path(), &endpoint, port, "500ms");

    let rightsize = |source: &'static str| {
        let out = run(&["cost", "rightsize", "basket", "--env", "dev", "--since", "1m", "--source", source, "--output", "json"]);
        async move {
            let out = out.await;
            let json = serde_json::from_slice::<serde_json::Value>(&out.stdout).ok();
            (json, text(&out.stderr))
        }
    };
    let from_prometheus = eventually("a recommendation from Prometheus", Duration::from_secs(60), || async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (json, stderr) = rightsize("prometheus").await;
        assert!(json.is_some() || stderr.contains("NOT_ENOUGH_SAMPLES") || stderr.contains("points from Prometheus"), "{stderr}");
        json
    })
    .await;
    let evidence = &from_prometheus["evidence"];
    assert_eq!(evidence["source"], "prometheus", "{from_prometheus}");
    assert_eq!(evidence["step_seconds"], 1, "the sample interval");
    assert!(evidence["cpu_query"].as_str().is_some_and(|q| q.contains("workload=\"basket\"") && q.contains("[60s]")), "{evidence}");
    assert!(evidence["samples"].as_u64().is_some_and(|n| n >= 10), "{evidence}");
    assert_eq!(from_prometheus["current"]["requests"], serde_json::json!({"cpu": "500m", "memory": "64Mi"}));
    let from_samples = eventually("a recommendation from the samples", Duration::from_secs(30), || async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        rightsize("samples").await.0
    })
    .await;
    assert_eq!(from_samples["evidence"]["source"], "samples");
    let mib = |v: &serde_json::Value| v.as_str().and_then(|m| m.trim_end_matches("Mi").parse::<f64>().ok()).expect("MiB");
    let (a, b) = (mib(&evidence["used"]["memory"]), mib(&from_samples["evidence"]["used"]["memory"]));
    assert!(a > 0.0 && (a - b).abs() <= 2.0, "the same memory both ways: {a} vs {b} MiB");

    drop(server.0.kill());
    let _ = server.0.wait();
    let (_, stderr) = rightsize("prometheus").await;
    assert!(stderr.contains("Prometheus did not answer the usage query (error id "), "{stderr}");
    platform.stop().await.expect("stop");
}
