//! The Prometheus provider against a real Prometheus (Debian's, which
//! `cargo xtask test` installs) scraping a real embedded platform.

use paved::up::Platform;
use paved_canary_analyzer::prometheus::{Prometheus, ProviderError};
use paved_integration_tests::{eventually, paved, text, up_options};
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, SystemTime},
};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Prometheus scraping `target` every second, on a free port.
fn prometheus(dir: &std::path::Path, target: &str) -> (Server, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let config = dir.join("prometheus.yml");
    let text = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: paved\n    static_configs:\n      - targets: [\"{target}\"]\n"
    );
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
    let out = paved(&["status", "--endpoint", &platform.addr.to_string()]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (mut server, url) = prometheus(dir.path(), &platform.addr.to_string());
    let provider = Prometheus::new(&url, Duration::from_secs(5));
    let range = || {
        let end = SystemTime::now();
        (end - Duration::from_secs(60), end)
    };

    // The platform's own gRPC counters, scraped; `$REVISION` is substituted.
    let series = eventually("scraped gRPC counters", Duration::from_secs(30), || async {
        // Prometheus scrapes for the first time some seconds after it starts.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (start, end) = range();
        let q = "sum(paved_grpc_server_requests_total{job=\"$REVISION\"})";
        // Until the first scrapes land the answer is "no data".
        provider.query_range(q, "paved", start, end, Duration::from_secs(1)).await.ok()
    })
    .await;
    let last = series[0].values.last().expect("a value").1;
    assert!(last > 0.0, "the platform has answered gRPC requests: {series:?}");

    let (start, end) = range();
    let step = Duration::from_secs(1);
    match provider.query_range("sum(rate(paved_grpc_server_requests_total[", "r", start, end, step).await {
        Err(ProviderError::Query { kind, message }) => assert!(kind == "bad_data" && message.contains("parse error"), "{kind}: {message}"),
        other => panic!("a malformed query: {other:?}"),
    }
    match provider.query_range("up{job=\"nothing-scrapes-this\"}", "r", start, end, step).await {
        Err(ProviderError::NoData { why, .. }) => assert_eq!(why, "no series matched"),
        other => panic!("a query without series: {other:?}"),
    }
    match provider.query_range("0 / 0", "r", start, end, step).await {
        Err(ProviderError::NoData { why, .. }) => assert_eq!(why, "every value is NaN or infinite"),
        other => panic!("a NaN-only series: {other:?}"),
    }

    drop(server.0.kill());
    let _ = server.0.wait();
    match provider.query_range("up", "r", start, end, step).await {
        Err(e @ ProviderError::Unreachable { .. }) => {
            assert!(e.to_string().starts_with(&format!("Prometheus at {url} is unreachable")), "{e}")
        }
        other => panic!("Prometheus down: {other:?}"),
    }
}
