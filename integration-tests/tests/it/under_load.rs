//! Load, against `paved up` (the binary, as a developer starts it) and
//! against production mode (compose.yaml's five services as processes over
//! mTLS on PostgreSQL and Redis, see `compose`):
//!
//! - **gRPC**: many clients at once, each on connections of its own, each
//!   calling in turn what a CLI user and a service call most: `paved
//!   status` (a health check, then the workload list), a workload list, a
//!   workload, a token issued. Beside them in the same loop, an empty RPC
//!   (health `Check`): the baseline every p99 is reported against. Target:
//!   no error at all.
//! - **Proxy**: many keep-alive connections open at once to one workload
//!   through its proxy, a request answered on every one, then a second
//!   request on each of the same connections. Target: every connection
//!   held, every request answered.
//!
//! The suite runs them small: `PAVED_LOAD_CLIENTS` (50),
//! `PAVED_LOAD_SECONDS` (5) and `PAVED_LOAD_CONNECTIONS` (1,000). `cargo
//! xtask bench load` runs them at the issue's size (1,000 clients for 60 s,
//! 10,000 connections), optimised.

use crate::compose::{Platform, compose_file};
use crate::secrets;
use paved_integration_tests::{authed, endpoint_in_status, paved_env, text};
use paved_proto::{
    provisioner::v1::{GetWorkloadRequest, ListWorkloadsRequest, provisioner_service_client::ProvisionerServiceClient},
    secrets_broker::v1::{IssueTokenRequest, secrets_broker_service_client::SecretsBrokerServiceClient},
};
use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// What each client calls, in turn; the first is the baseline.
const OPERATIONS: [&str; 5] = ["empty RPC (health Check)", "status", "list workloads", "get workload", "issue token"];
/// Each call's limit, as production mode's test clients have it.
const TIMEOUT: Duration = Duration::from_secs(5);
const SPEC: &str = "name: hello\ncommand: [hello]\nhealth:\n  path: /healthz\nenv:\n  HELLO_VERSION: v1\n";

struct Size {
    clients: usize,
    time: Duration,
    connections: usize,
}

impl Size {
    fn from_env() -> Self {
        let setting = |name: &str, default: usize| {
            std::env::var(name).ok().map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a count")))
        };
        let size = Self {
            clients: setting("PAVED_LOAD_CLIENTS", 50),
            time: Duration::from_secs(setting("PAVED_LOAD_SECONDS", 5) as u64),
            connections: setting("PAVED_LOAD_CONNECTIONS", 1_000),
        };
        size.open_files();
        size
    }

    /// Raises this process's open-file limit to its hard limit (what it
    /// starts inherits it): each connection needs a descriptor here, each
    /// client two, and the proxy's host one per connection plus its pool
    /// of upstream ones (as many as requests were in flight at once).
    fn open_files(&self) {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum }).expect("raise the open-file limit");
        let (hard, wanted) = (limit.maximum.unwrap_or(u64::MAX), (self.connections + 2 * self.clients + 1_000) as u64);
        assert!(hard >= wanted, "the open-file limit is {hard}; this test needs {wanted} (raise the hard limit: ulimit -Hn)");
    }
}

/// `paved up` as a developer starts it, with `hello` deployed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paved_up_answers_every_call_and_holds_every_connection() {
    let size = Size::from_env();
    let dir = tempfile::tempdir().expect("temp dir");
    let up = secrets::up_with(dir.path(), 0, &[("RUST_LOG", "error")]);
    let env = [("PAVED_TOKEN", up.root.as_str())];
    let endpoint = format!("http://{}", up.endpoint);
    let proxy = deploy_hello(dir.path(), &env, &endpoint).await;
    let connect = || {
        // One server answers both: one connection, timed out as production
        // mode's clients are (`compose::Platform::channel`).
        let channel = tonic::transport::Endpoint::from_shared(endpoint.clone()).expect("endpoint").timeout(TIMEOUT).connect_lazy();
        (channel.clone(), channel)
    };
    grpc("paved up", &size, &up.root, connect).await;
    connections(&proxy, size.connections).await;
    // A workload read alone and in a page both say when its proxy last
    // had a request (a page reads the data plane once for all of them).
    let mut workloads = ProvisionerServiceClient::new(authed(connect().0, &up.root));
    let read = GetWorkloadRequest { environment: "dev".into(), name: "hello".into() };
    let alone = workloads.get_workload(read).await.expect("get").into_inner().workload.expect("hello").last_request_time;
    let page = workloads.list_workloads(ListWorkloadsRequest::default()).await.expect("list").into_inner().workloads;
    let in_page = page.into_iter().find(|w| w.name == "hello").expect("hello listed").last_request_time;
    assert!(alone.is_some(), "hello's last request, after all that load");
    assert_eq!(alone, in_page, "its last request, read alone and in a page (nothing was sent between)");
    secrets::stop(up);
}

/// Production mode, every client over TLS with a connection to the
/// provisioner and one to the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_mode_answers_every_call_and_holds_every_connection() {
    let size = Size::from_env();
    let dir = tempfile::tempdir().expect("temp dir");
    let root_key = hex::encode(rand::random::<[u8; 32]>());
    let mut platform = Platform::start(dir.path(), &compose_file(&root_key)).await;
    platform.enrolled().await;
    let bundle = platform.bundle().await;
    for name in platform.ports.keys() {
        platform.serving(name, &bundle).await;
    }
    let token = platform.root_token(&root_key).await;
    let bundle_file = platform.volumes.join("trust/bundle.pem").display().to_string();
    let env = [("PAVED_TOKEN", token.as_str()), ("PAVED_CA_BUNDLE", bundle_file.as_str())];
    let proxy = deploy_hello(dir.path(), &env, &format!("https://127.0.0.1:{}", platform.ports["provisioner"])).await;
    let connect = || (platform.channel("provisioner", &bundle), platform.channel("secrets-broker", &bundle));
    grpc("production mode", &size, &token, connect).await;
    connections(&proxy, size.connections).await;
}

/// `hello` deployed (`paved deploy`, as a developer does) in the `dev`
/// environment; its proxy's address.
async fn deploy_hello(dir: &Path, env: &[(&str, &str)], endpoint: &str) -> String {
    let svc = dir.join("hello");
    std::fs::create_dir_all(&svc).expect("mkdir");
    std::fs::write(svc.join("paved.yaml"), SPEC).expect("spec");
    let out = paved_env(env, &["deploy", svc.to_str().expect("path"), "--env", "dev", "--endpoint", endpoint]).await;
    assert!(out.status.success(), "paved deploy: {}", text(&out.stderr));
    let out = paved_env(env, &["status", "--output", "json", "--endpoint", endpoint]).await;
    endpoint_in_status(&out.stdout, "hello").unwrap_or_else(|| panic!("no endpoint of hello in {}", text(&out.stdout)))
}

/// `size.clients` clients for `size.time`, each on channels `connect`
/// makes (to the provisioner, to the broker); every operation's p50 and
/// p99 printed, each p99 against the empty RPC's. Fails on any error.
async fn grpc(mode: &str, size: &Size, token: &str, connect: impl Fn() -> (Channel, Channel)) {
    println!("load: {} gRPC clients against {mode} for {} s", size.clients, size.time.as_secs());
    let start = Arc::new(tokio::sync::Barrier::new(size.clients));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..size.clients {
        let ((provisioner, broker), token, start) = (connect(), token.to_string(), start.clone());
        set.spawn(client(authed(provisioner, &token), authed(broker, &token), start, size.time));
    }
    let mut by_op: Vec<Vec<Duration>> = vec![Vec::new(); OPERATIONS.len()];
    let mut errors = Vec::new();
    // Every call is bounded (`TIMEOUT`), so the clients end; this says so
    // if they do not.
    let deadline = tokio::time::Instant::now() + size.time + Duration::from_secs(120);
    while let Some(joined) = tokio::time::timeout_at(deadline, set.join_next()).await.expect("the clients end in time") {
        let (timed, failed) = joined.expect("a client panicked");
        for (op, took) in timed {
            by_op[op].push(took);
        }
        errors.extend(failed);
    }
    let calls: usize = by_op.iter().map(Vec::len).sum();
    println!("  {calls} calls answered ({:.0}/s), {} errors", calls as f64 / size.time.as_secs_f64(), errors.len());
    errors.sort();
    errors.dedup();
    assert!(errors.is_empty(), "{} kinds of error under load (target: none): {errors:#?}", errors.len());
    if let Some(op) = by_op.iter().position(Vec::is_empty) {
        panic!("no {} call was made", OPERATIONS[op]);
    }
    let baseline = percentile(&mut by_op[0], 0.99);
    for (op, latencies) in by_op.iter_mut().enumerate() {
        let (p50, p99) = (percentile(latencies, 0.5), percentile(latencies, 0.99));
        println!(
            "  {:<26} {:>7} calls, p50 {:>7.2} ms, p99 {:>7.2} ms ({:.2}× the empty RPC's p99)",
            OPERATIONS[op],
            latencies.len(),
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0,
            p99.as_secs_f64() / baseline.as_secs_f64()
        );
    }
}

type Auth = paved_grpc::client::AuthChannel;

/// One client's calls for `time` once every client is connected: (the
/// operation, its latency) of each, and the errors.
async fn client(
    provisioner: Auth,
    broker: Auth,
    start: Arc<tokio::sync::Barrier>,
    time: Duration,
) -> (Vec<(usize, Duration)>, Vec<String>) {
    let mut health = HealthClient::new(provisioner.clone());
    let mut workloads = ProvisionerServiceClient::new(provisioner);
    let mut tokens = SecretsBrokerServiceClient::new(broker.clone());
    let (mut timed, mut errors) = (Vec::new(), Vec::new());
    // Connected (over TLS, through the handshake) before any call is timed.
    let empty = || HealthCheckRequest { service: String::new() };
    for (name, warm) in
        [(OPERATIONS[0], health.check(empty()).await), ("the broker's health", HealthClient::new(broker).check(empty()).await)]
    {
        if let Err(status) = warm {
            errors.push(format!("connecting, {name}: {:?} {}", status.code(), status.message()));
        }
    }
    start.wait().await;
    let deadline = Instant::now() + time;
    let mut n = 0usize;
    while errors.is_empty() && Instant::now() < deadline {
        let op = n % OPERATIONS.len();
        n += 1;
        let started = Instant::now();
        let result = match op {
            0 => health.check(empty()).await.map(drop),
            1 => match health.check(HealthCheckRequest { service: "paved.provisioner.v1.ProvisionerService".into() }).await {
                Ok(_) => workloads.list_workloads(ListWorkloadsRequest { page_size: 500, ..Default::default() }).await.map(drop),
                Err(e) => Err(e),
            },
            2 => workloads.list_workloads(ListWorkloadsRequest { environment: "dev".into(), ..Default::default() }).await.map(drop),
            3 => workloads.get_workload(GetWorkloadRequest { environment: "dev".into(), name: "hello".into() }).await.map(drop),
            _ => {
                let request = IssueTokenRequest { subject: "load".into(), role: "viewer".into(), ..Default::default() };
                tokens.issue_token(request).await.map(drop)
            }
        };
        match result {
            Ok(()) => timed.push((op, started.elapsed())),
            Err(status) => errors.push(format!("{}: {:?} {}", OPERATIONS[op], status.code(), status.message())),
        }
    }
    (timed, errors)
}

fn percentile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]
}

/// Opens `n` connections to `addr`, each answered once, all held; then a
/// second request on each.
async fn connections(addr: &str, n: usize) {
    println!("load: {n} keep-alive connections to hello through its proxy ({addr})");
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let (go, _) = tokio::sync::broadcast::channel::<()>(1);
    let (opened_tx, mut opened) = tokio::sync::mpsc::channel::<()>(n);
    for _ in 0..n {
        let (addr, opened, mut go) = (addr.to_string(), opened_tx.clone(), go.subscribe());
        set.spawn(async move {
            let connect = tokio::net::TcpStream::connect(&addr);
            let mut stream = tokio::time::timeout(Duration::from_secs(30), connect)
                .await
                .map_err(|_| "connect: no answer in 30 s".to_string())?
                .map_err(|e| format!("connect: {e}"))?;
            request(&mut stream).await.map_err(|e| format!("first request: {e}"))?;
            let _ = opened.send(()).await;
            // Held open until every connection has had its first answer.
            let _ = go.recv().await;
            request(&mut stream).await.map_err(|e| format!("second request on the same connection: {e}"))
        });
    }
    drop(opened_tx);
    let mut open = 0;
    while open < n && matches!(tokio::time::timeout(Duration::from_secs(60), opened.recv()).await, Ok(Some(()))) {
        open += 1;
    }
    println!("  {open} of {n} connections open and answered at once after {:.1} s", started.elapsed().as_secs_f64());
    let _ = go.send(());
    let mut failed = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Err(e) = joined.expect("a connection panicked") {
            failed.push(e);
        }
    }
    println!("  {} connections answered twice, {} failed", n - failed.len(), failed.len());
    failed.sort();
    failed.dedup();
    assert!(open == n && failed.is_empty(), "{open} of {n} connections held; failures: {failed:#?}");
}

/// One `GET /` on a keep-alive connection, its 200 read to the end.
async fn request(stream: &mut tokio::net::TcpStream) -> Result<(), String> {
    stream.write_all(b"GET / HTTP/1.1\r\nhost: hello\r\n\r\n").await.map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await.map_err(|_| "no answer in 30 s")?;
        let got = read.map_err(|e| e.to_string())?;
        if got == 0 {
            return Err("closed by the proxy".into());
        }
        answer.extend_from_slice(&buf[..got]);
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_lowercase();
            if !head.starts_with("http/1.1 200") {
                return Err(format!("answered {}", head.lines().next().unwrap_or("")));
            }
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or("no content-length")?;
            if answer.len() >= end + 4 + length {
                return Ok(());
            }
        }
    }
}
