//! `cargo xtask bench load`: `paved up` under many clients at once.
//!
//! - **gRPC**: 1,000 clients, each on its own connection, for 60 s
//!   (`PAVED_LOAD_SECONDS`), each calling in turn what a CLI user and a
//!   service call most: `paved status` (health check and the workload
//!   list), a workload list, a workload, a token issued. Beside them in the
//!   same loop, an empty RPC (health `Check` of the server): the baseline
//!   every p99 is reported against. Target: no error at all.
//! - **Proxy**: 10,000 keep-alive connections open at once to one
//!   workload through its proxy, a request answered on every one, then a
//!   second request on each of the same connections. Target: every
//!   connection held and every request answered.

use crate::measure::ms;
use crate::pipeline::{Platform, channel_to, deploy_version, percentile};
use anyhow::{Context, bail};
use paved_proto::{
    provisioner::v1::{GetWorkloadRequest, ListWorkloadsRequest, provisioner_service_client::ProvisionerServiceClient},
    secrets_broker::v1::{IssueTokenRequest, secrets_broker_service_client::SecretsBrokerServiceClient},
};
use std::{
    path::Path,
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

const CLIENTS: usize = 1_000;
const CONNECTIONS: usize = 10_000;
/// What each client calls, in turn; the first is the baseline.
const OPERATIONS: [&str; 5] = ["empty RPC (health Check)", "status", "list workloads", "get workload", "issue token"];

pub fn run(bin: &Path) -> anyhow::Result<()> {
    let seconds: u64 = std::env::var("PAVED_LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    open_files()?;
    let platform = Platform::start(bin, "load")?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let mut client = platform.client().await?;
        let proxy = deploy_version(&mut client, "hello", "v1", "").await?;
        grpc(&platform, Duration::from_secs(seconds)).await?;
        connections(&proxy).await
    })
}

/// Raises this process's open-file limit to its hard limit (`paved up`,
/// started after, inherits it): 10,000 connections need a descriptor each
/// here and in the proxy's host, which also holds its upstream
/// connections to the workload.
fn open_files() -> anyhow::Result<()> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    setrlimit(Resource::Nofile, rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum })
        .context("raise the open-file limit")?;
    let wanted = CONNECTIONS as u64 + CLIENTS as u64 + 1_000;
    if hard < wanted {
        bail!("the open-file limit is {hard}; this benchmark needs {wanted} (raise the hard limit: ulimit -Hn)");
    }
    Ok(())
}

/// One client's calls until `deadline`: (operation, latency) of each, and
/// the errors by operation.
async fn client(
    endpoint: &str,
    token: &str,
    start: &tokio::sync::Barrier,
    time: Duration,
) -> anyhow::Result<(Vec<(usize, Duration)>, Vec<String>)> {
    let channel = channel_to(endpoint, token).await?;
    let mut health = HealthClient::new(channel.clone());
    let mut provisioner = ProvisionerServiceClient::new(channel.clone());
    let mut broker = SecretsBrokerServiceClient::new(channel);
    let (mut timed, mut errors) = (Vec::new(), Vec::new());
    // Every client is connected before any calls.
    start.wait().await;
    let deadline = Instant::now() + time;
    let mut n = 0usize;
    while Instant::now() < deadline {
        let op = n % OPERATIONS.len();
        n += 1;
        let started = Instant::now();
        let result = match op {
            0 => health.check(HealthCheckRequest { service: String::new() }).await.map(drop),
            1 => {
                let checked = health.check(HealthCheckRequest { service: "paved.provisioner.v1.ProvisionerService".into() }).await;
                match checked {
                    Ok(_) => provisioner.list_workloads(ListWorkloadsRequest { page_size: 500, ..Default::default() }).await.map(drop),
                    Err(e) => Err(e),
                }
            }
            2 => provisioner.list_workloads(ListWorkloadsRequest { environment: "bench".into(), ..Default::default() }).await.map(drop),
            3 => provisioner.get_workload(GetWorkloadRequest { environment: "bench".into(), name: "hello".into() }).await.map(drop),
            _ => broker
                .issue_token(IssueTokenRequest { subject: "load".into(), role: "viewer".into(), ..Default::default() })
                .await
                .map(drop),
        };
        match result {
            Ok(()) => timed.push((op, started.elapsed())),
            Err(status) => errors.push(format!("{}: {:?} {}", OPERATIONS[op], status.code(), status.message())),
        }
    }
    Ok((timed, errors))
}

async fn grpc(platform: &Platform, time: Duration) -> anyhow::Result<()> {
    println!("bench load: {CLIENTS} gRPC clients on {CLIENTS} connections to paved up, {} s", time.as_secs());
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (endpoint, token, start) = (platform.endpoint.clone(), platform.token.clone(), start.clone());
        set.spawn(async move { client(&endpoint, &token, &start, time).await });
    }
    let mut by_op: Vec<Vec<Duration>> = vec![Vec::new(); OPERATIONS.len()];
    let mut errors = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (timed, errs) = joined.context("a client panicked")??;
        for (op, took) in timed {
            by_op[op].push(took);
        }
        errors.extend(errs);
    }
    let calls: usize = by_op.iter().map(Vec::len).sum();
    println!("  {calls} calls answered ({:.0}/s), {} errors", calls as f64 / time.as_secs_f64(), errors.len());
    if let Some(op) = by_op.iter().position(Vec::is_empty) {
        bail!("no {} call was answered; errors: {errors:#?}", OPERATIONS[op]);
    }
    let baseline = percentile(&mut by_op[0].clone(), 0.99);
    for (op, latencies) in by_op.iter_mut().enumerate() {
        let (p50, p99) = (percentile(latencies, 0.5), percentile(latencies, 0.99));
        let ratio = p99.as_secs_f64() / baseline.as_secs_f64();
        println!(
            "  {:<26} {:>7} calls, p50 {:>7.2} ms, p99 {:>7.2} ms ({ratio:.2}× the empty RPC's p99)",
            OPERATIONS[op],
            latencies.len(),
            ms(p50),
            ms(p99)
        );
    }
    if !errors.is_empty() {
        errors.sort();
        errors.dedup();
        bail!("{} kinds of error under load (target: none): {errors:#?}", errors.len());
    }
    Ok(())
}

/// Opens `CONNECTIONS` connections to `addr`, each answered once, all
/// held; then a second request on each.
async fn connections(addr: &str) -> anyhow::Result<()> {
    println!("bench load: {CONNECTIONS} keep-alive connections to hello through its proxy ({addr})");
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let (ready_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel::<()>(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let (addr, opened, mut go) = (addr.to_string(), opened_tx.clone(), ready_tx.subscribe());
        set.spawn(async move {
            let connect = tokio::net::TcpStream::connect(&addr);
            let mut stream =
                tokio::time::timeout(Duration::from_secs(30), connect).await.context("connect: no answer in 30 s")?.context("connect")?;
            request(&mut stream).await.context("first request")?;
            let _ = opened.send(()).await;
            // Held open until every connection has had its first answer.
            let _ = go.recv().await;
            request(&mut stream).await.context("second request on the same connection")
        });
    }
    drop(opened_tx);
    let mut open = 0;
    while open < CONNECTIONS {
        match tokio::time::timeout(Duration::from_secs(60), opened_rx.recv()).await {
            Ok(Some(())) => open += 1,
            _ => break,
        }
    }
    let held = started.elapsed();
    println!("  {open} of {CONNECTIONS} connections open and answered at once after {:.1} s", held.as_secs_f64());
    let _ = ready_tx.send(());
    let mut failed = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Err(e) = joined.context("a connection panicked")? {
            failed.push(format!("{e:#}"));
        }
    }
    println!(
        "  {} connections answered twice, {} failed (at connect, the first or the second request)",
        CONNECTIONS - failed.len(),
        failed.len()
    );
    if open < CONNECTIONS || !failed.is_empty() {
        failed.sort();
        failed.dedup();
        bail!("{open} of {CONNECTIONS} connections held; failures: {failed:#?}");
    }
    Ok(())
}

/// One `GET /` on a keep-alive connection, its 200 read to the end.
async fn request(stream: &mut tokio::net::TcpStream) -> anyhow::Result<()> {
    stream.write_all(b"GET / HTTP/1.1\r\nhost: hello\r\n\r\n").await?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await.context("no answer in 30 s")??;
        if n == 0 {
            bail!("closed by the proxy");
        }
        answer.extend_from_slice(&buf[..n]);
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_lowercase();
            if !head.starts_with("http/1.1 200") {
                bail!("answered {}", head.lines().next().unwrap_or(""));
            }
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .context("no content-length")?;
            if answer.len() >= end + 4 + length {
                return Ok(());
            }
        }
    }
}
