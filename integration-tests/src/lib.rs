//! Helpers for Paved's integration tests (`tests/it/`): the real PostgreSQL
//! and Redis of this machine (a missing server fails the test loudly, never
//! skips it), fresh databases and stream namespaces per test, the workspace's
//! built binaries, and a bounded `eventually`.

pub mod otlp;

use std::{future::Future, path::PathBuf, time::Duration};

/// PostgreSQL server URL without a database (`PAVED_TEST_POSTGRES_URL`).
pub fn postgres_server() -> String {
    std::env::var("PAVED_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Redis URL (`PAVED_TEST_REDIS_URL`).
pub fn redis_server() -> String {
    std::env::var("PAVED_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A short unique name for databases and namespaces of one test.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A fresh PostgreSQL database URL (created on first connect by the store).
/// Panics with instructions when PostgreSQL is not reachable.
pub async fn postgres_database(prefix: &str) -> String {
    let url = format!("{}/{}", postgres_server(), unique(prefix));
    if let Err(e) = paved_store::connect(&url).await {
        panic!("this test needs PostgreSQL at {} (set PAVED_TEST_POSTGRES_URL): {e}", postgres_server());
    }
    url
}

/// A Redis URL whose streams live in a fresh namespace. Panics with
/// instructions when Redis is not reachable.
pub async fn redis_namespace(prefix: &str) -> String {
    let url = format!("{}/?paved_namespace={}", redis_server().trim_end_matches('/'), unique(prefix));
    if let Err(e) = paved_stream::open(&url, 1000).await {
        panic!("this test needs Redis at {} (set PAVED_TEST_REDIS_URL): {e}", redis_server());
    }
    url
}

/// A spec for a workload `shop` whose process writes what the runtime
/// hands it (`$PAVED_TOKEN $PAVED_BROKER_URL`: its identity token, proved
/// at the bootstrap exchange, and where to use it) to `file`, then serves
/// `hello`; `declares` adds its lines (secrets, databases, …).
pub fn handing_spec(file: &std::path::Path, declares: &str) -> String {
    format!(
        "name: shop\ncommand: [\"sh\", \"-c\", \"echo \\\"$PAVED_TOKEN $PAVED_BROKER_URL\\\" > {}; exec hello\"]\nhealth:\n  path: /healthz\n{declares}",
        file.display()
    )
}

/// Where `program` is on this process's `PATH`, as a workload's runtime
/// finds it (it puts only Paved's binaries before it).
pub fn which(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file()).unwrap_or_else(|| panic!("{program} is not on PATH"))
}

/// The identity token and broker URL a [`handing_spec`] process wrote to
/// `file`, waiting up to `timeout` for it.
pub async fn handed(file: &std::path::Path, timeout: Duration) -> (String, String) {
    let line = eventually("the process to write what it was handed", timeout, || {
        let file = file.to_path_buf();
        async move { std::fs::read_to_string(file).ok().filter(|l| l.starts_with("pvt1.")) }
    })
    .await;
    let (token, broker_url) = line.trim().split_once(' ').expect("token and broker URL");
    (token.to_string(), broker_url.to_string())
}

/// A standalone provisioner's options for tests: workloads' data in
/// `data_dir`, the executables built here, the policy bundle in `deploy/`,
/// no analyzer and no token file.
pub fn provisioner_options(data_dir: PathBuf) -> paved_provisioner::Options {
    paved_provisioner::Options {
        data_dir,
        bin_dirs: vec![bin_dir()],
        proxy_host: [127, 0, 0, 1].into(),
        platform_env: Default::default(),
        // The bundle as a directory, as production mode configures it.
        policy_dir: Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/policies")),
        trusted_keys: Default::default(),
        // Only first revisions here: nothing to judge.
        analyzer_url: None,
        cost_scheduler_url: None,
        token_file: None,
        schedule_defaults: None,
        credentials: Default::default(),
        broker_url: None,
        tls: None,
        // Not production's (serve on without a provisioner): a test that
        // fails before it stops its provisioner leaves nothing running long.
        data_plane_grace_seconds: Some(10),
        // Stopped, it stops what it started, as a test expects.
        keep_data_plane: false,
    }
}

/// Whether process `pid` is gone: exited, or exited and not yet reaped by
/// whoever inherited it (its parent died and that reaper is slow).
pub fn process_gone(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_or(true, |s| s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
}

/// The workload replicas the local runtime records in `run_dir`, by record
/// (`<key>-<index>`), each with its process group id (the file holds
/// `<pgid> <port>`); none when the directory is missing.
pub fn recorded_replicas(run_dir: &std::path::Path) -> std::collections::BTreeMap<String, i32> {
    let Ok(entries) = std::fs::read_dir(run_dir) else { return Default::default() };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = std::fs::read_to_string(e.path()).ok()?.split_whitespace().next()?.parse().ok()?;
            Some((e.path().file_stem()?.to_str()?.to_string(), pid))
        })
        .collect()
}

/// `key`'s value in the environment process `pid` was started with.
pub fn environ_of(pid: i32, key: &str) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{key}=");
    environ.split(|b| *b == 0).find_map(|kv| kv.strip_prefix(prefix.as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned()))
}

/// The current revision of workload `name` in `environment`, once it has
/// failed (waiting up to `timeout`).
pub async fn failed_revision(
    provisioner: &paved_proto::provisioner::v1::provisioner_service_client::ProvisionerServiceClient<paved_grpc::client::AuthChannel>,
    environment: &str,
    name: &str,
    timeout: Duration,
) -> paved_proto::provisioner::v1::Revision {
    use paved_proto::provisioner::v1::{GetRevisionRequest, GetWorkloadRequest, RevisionState};
    let get = GetWorkloadRequest { environment: environment.into(), name: name.into() };
    let workload = provisioner.clone().get_workload(get).await.expect("the workload").into_inner().workload.expect("workload");
    eventually(&format!("{name}'s revision to fail"), timeout, || {
        let (mut provisioner, id) = (provisioner.clone(), workload.current_revision.clone());
        async move {
            let revision = provisioner.get_revision(GetRevisionRequest { id }).await.ok()?.into_inner().revision?;
            (revision.state == RevisionState::Failed as i32).then_some(revision)
        }
    })
    .await
}

/// The directory of the workspace's built binaries (`target/debug`). The test
/// command builds them first (`cargo build --workspace --bins`); a missing one
/// fails the test with that advice.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target directory").to_path_buf();
    for bin in [
        "hello",
        "paved",
        "paved-audit",
        "paved-secrets-broker",
        "paved-canary-analyzer",
        "paved-cost-scheduler",
        "paved-provisioner",
        "paved-runtime",
    ] {
        assert!(dir.join(bin).is_file(), "{} is missing: run `cargo build --workspace --bins` before the tests", dir.join(bin).display());
    }
    dir
}

/// Polls `check` until it returns Some, for at most `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A TCP forwarder on a fixed local port that a test can cut (every
/// connection dropped, nothing listening) and restore: a database or Redis
/// that goes away and comes back, without touching the shared servers.
pub struct Cuttable {
    pub port: u16,
    target: std::net::SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Cuttable {
    pub async fn start(target: std::net::SocketAddr) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let mut cut = Self { port, target, task: None };
        cut.restore().await;
        cut
    }

    pub fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    pub async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.expect("bind the forwarder's port");
        let target = self.target;
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }
}

impl Drop for Cuttable {
    fn drop(&mut self) {
        self.cut();
    }
}

/// A `redis-server` of a test's own, on `port`: one it can kill and start
/// again without touching the shared server. With a directory it is durable
/// (every write fsynced to its append-only file before it is acknowledged),
/// so a restart loses nothing it acknowledged, as in production.
pub struct OwnRedis {
    child: tokio::process::Child,
    pub port: u16,
    dir: Option<PathBuf>,
}

impl OwnRedis {
    pub async fn start(port: u16, dir: Option<PathBuf>) -> Self {
        let mut command = tokio::process::Command::new("redis-server");
        command.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""]);
        match &dir {
            Some(dir) => command.args(["--appendonly", "yes", "--appendfsync", "always", "--dir"]).arg(dir),
            None => command.args(["--appendonly", "no"]),
        };
        let child = command.stdout(std::process::Stdio::null()).kill_on_drop(true).spawn().expect("this test needs redis-server on PATH");
        eventually("redis-server to listen", Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()
        })
        .await;
        Self { child, port, dir }
    }

    /// SIGKILL: no chance to write anything more.
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill redis");
    }

    /// Killed with SIGKILL and started again on the same port and files.
    pub async fn restart(self) -> Self {
        let (port, dir) = (self.port, self.dir.clone());
        self.kill().await;
        Self::start(port, dir).await
    }
}

/// Runs the `paved` binary as a user would, with no token (nor the
/// credentials of whoever runs the tests); the future owns its arguments.
pub fn paved(args: &[&str]) -> impl Future<Output = std::process::Output> + use<> {
    paved_with("", args)
}

/// One of the workspace's binaries, with none of Paved's settings (nor
/// OpenTelemetry's) from the environment of whoever runs the tests.
pub fn clean_command(binary: &str) -> tokio::process::Command {
    clean_program(&bin_dir().join(binary)).into()
}

/// The program at `path`, with none of Paved's settings (nor
/// OpenTelemetry's) from the environment of whoever runs the tests.
pub fn clean_program(path: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(path);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("PAVED_") || k.starts_with("OTEL_")) {
        command.env_remove(key);
    }
    command
}

/// [`paved`] presenting `token` (as `PAVED_TOKEN`).
pub fn paved_with(token: &str, args: &[&str]) -> impl Future<Output = std::process::Output> + use<> {
    paved_env(&[("PAVED_TOKEN", token)], args)
}

/// [`paved`] with these environment variables, and none other of Paved's
/// from whoever runs the tests.
pub fn paved_env(env: &[(&str, &str)], args: &[&str]) -> impl Future<Output = std::process::Output> + use<> {
    let mut command = clean_command("paved");
    command.args(args).envs(env.iter().copied()).env("PAVED_CONFIG_DIR", std::env::temp_dir().join("paved-tests-no-credentials"));
    async move { command.output().await.expect("run paved") }
}

/// An embedded platform started with `options` and ready.
pub async fn ready(options: &paved::up::UpOptions) -> paved::up::Platform {
    let platform = paved::up::Platform::start(options).await.expect("paved up");
    platform.wait_ready(std::time::Duration::from_secs(30), |_| {}).await.expect("ready");
    platform
}

/// [`paved`] against `platform`, with its root token.
pub fn paved_on(platform: &paved::up::Platform, args: &[&str]) -> impl Future<Output = std::process::Output> + use<> {
    let endpoint = platform.addr.to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--endpoint", &endpoint]);
    paved_with(&platform.root_token, &all)
}

/// A workload's endpoint in what `paved status --output json` printed;
/// None when it is not there (yet).
pub fn endpoint_in_status(status_json: &[u8], workload: &str) -> Option<String> {
    let status: serde_json::Value = serde_json::from_slice(status_json).ok()?;
    let row = status["workloads"].as_array()?.iter().find(|w| w["name"] == workload)?;
    row["endpoint"].as_str().map(str::to_string)
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Options of an embedded platform under `data_dir`, on a free port, with
/// the workloads' binaries of this build and no example.
pub fn up_options(data_dir: PathBuf) -> paved::up::UpOptions {
    paved::up::UpOptions {
        data_dir,
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        example: false,
        self_hosted: None,
        bin_dirs: vec![bin_dir()],
        trusted_keys: Default::default(),
        prometheus_url: None,
        cost: Default::default(),
        data_plane_grace_seconds: paved::up::DATA_PLANE_GRACE_SECONDS,
    }
}

/// Load on a workload's endpoint: `workers` loops of GET / (or POST, see
/// [`Load::posting`]) over kept-alive connections, counting answers by body, and failures (no answer within
/// 10 s, or a 5xx), until dropped. A failure the workload did not answer
/// itself (`hello`'s injected errors say so) is also counted as dropped:
/// the platform's doing.
pub struct Load {
    bodies: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    failed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// How many were dropped, and the first few as they were seen.
    dropped: std::sync::Arc<std::sync::Mutex<(usize, Vec<String>)>>,
    stop: tokio_util::sync::CancellationToken,
}

/// What `hello` writes in the body of an error it was told to make.
pub const INJECTED_ERROR: &str = "(injected error)";

impl Load {
    pub fn start(endpoint: &str, workers: usize) -> Self {
        Self::with(endpoint, "/", workers, http::Method::GET)
    }

    /// `POST path` with a small body, which a proxy may not send twice.
    pub fn posting(endpoint: &str, path: &str, workers: usize) -> Self {
        Self::with(endpoint, path, workers, http::Method::POST)
    }

    fn with(endpoint: &str, path: &str, workers: usize, method: http::Method) -> Self {
        use http_body_util::{BodyExt, Full};
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
        let failed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let dropped = std::sync::Arc::new(std::sync::Mutex::new((0, Vec::new())));
        let stop = tokio_util::sync::CancellationToken::new();
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
        let body = if method == http::Method::POST { "ping" } else { "" };
        let uri: http::Uri = format!("http://{endpoint}{path}").parse().expect("endpoint URI");
        for _ in 0..workers {
            let (client, uri, method, bodies, failed, dropped, stop) =
                (client.clone(), uri.clone(), method.clone(), bodies.clone(), failed.clone(), dropped.clone(), stop.clone());
            tokio::spawn(async move {
                let drop_one = |why: String| {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let mut dropped = dropped.lock().unwrap_or_else(|p| p.into_inner());
                    dropped.0 += 1;
                    if dropped.1.len() < 20 {
                        dropped.1.push(why);
                    }
                };
                while !stop.is_cancelled() {
                    let answer = async {
                        let request = http::Request::builder().method(method.clone()).uri(uri.clone()).body(Full::from(body));
                        let request = request.map_err(|e| format!("request: {e}"))?;
                        let response = client.request(request).await.map_err(|e| format!("no answer: {e:?}"))?;
                        let status = response.status();
                        let body = response.into_body().collect().await.map_err(|e| format!("{status}, body cut: {e}"))?.to_bytes();
                        Ok::<_, String>((String::from_utf8_lossy(&body).into_owned(), status))
                    };
                    // A request that hangs is a failure too, not one that
                    // never counts.
                    match tokio::time::timeout(Duration::from_secs(10), answer).await {
                        Ok(Ok((body, status))) => {
                            if status.is_server_error() && body.contains(INJECTED_ERROR) {
                                failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            } else if status.is_server_error() {
                                drop_one(format!("{status}: {}", body.trim()));
                            }
                            *bodies.lock().unwrap_or_else(|p| p.into_inner()).entry(body).or_default() += 1;
                        }
                        Ok(Err(why)) => {
                            drop_one(why);
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                        Err(_) => drop_one("no answer within 10 s".into()),
                    }
                }
            });
        }
        Self { bodies, failed, dropped, stop }
    }

    /// Requests that got no answer, or a 5xx.
    pub fn failed(&self) -> usize {
        self.failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many failures the workload did not make itself, and the first
    /// 20 of them as they were seen.
    pub fn dropped(&self) -> (usize, Vec<String>) {
        self.dropped.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Answers, by any status.
    pub fn answered(&self) -> usize {
        self.bodies.lock().unwrap_or_else(|p| p.into_inner()).values().sum()
    }

    /// Answers whose body contains `needle`.
    pub fn seen(&self, needle: &str) -> usize {
        self.bodies.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|(b, _)| b.contains(needle)).map(|(_, n)| n).sum()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The tests' root key (a production broker reads it from a file or
/// `PAVED_ROOT_KEY`).
pub const ROOT_KEY: &str = "4f1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff0";

/// The audit service's settings in tests: its log key sealed under the
/// tests' root key.
pub fn audit_options() -> paved_audit::Options {
    paved_audit::Options { root_key: Some(paved_seal::Secret(ROOT_KEY.into())), ..Default::default() }
}

/// A broker in production mode on its own PostgreSQL database, and a root
/// token minted as an operator holding the root key would (`paved token
/// root`). It runs until `shutdown`.
pub async fn start_broker(
    stream: &str,
    shutdown: &tokio_util::sync::CancellationToken,
) -> (std::net::SocketAddr, String, tokio::task::JoinHandle<anyhow::Result<()>>) {
    start_broker_with(stream, paved_service::MtlsOptions::default(), shutdown).await
}

/// [`start_broker`] with `mtls` settings.
pub async fn start_broker_with(
    stream: &str,
    mtls: paved_service::MtlsOptions,
    shutdown: &tokio_util::sync::CancellationToken,
) -> (std::net::SocketAddr, String, tokio::task::JoinHandle<anyhow::Result<()>>) {
    start_broker_at(&postgres_database("it_broker").await, stream, mtls, shutdown).await
}

/// [`start_broker_with`] on `database`, a PostgreSQL URL.
pub async fn start_broker_at(
    database: &str,
    stream: &str,
    mtls: paved_service::MtlsOptions,
    shutdown: &tokio_util::sync::CancellationToken,
) -> (std::net::SocketAddr, String, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let database = database.to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let broker = listener.local_addr().expect("addr");
    let common = paved_service::Common {
        listen: broker,
        database_url: database.clone(),
        stream_url: stream.to_string(),
        log_format: "pretty".into(),
        stream_max_len: 10_000,
        broker_url: format!("http://{broker}"),
        mtls,
    };
    let options = paved_secrets_broker::Options { root_key: Some(paved_secrets_broker::Secret(ROOT_KEY.into())), ..Default::default() };
    let config = paved_service::BasicConfig { common, options };
    // Minted first: two processes migrating one new database at once collide.
    let root = paved_secrets_broker::seal::RootKey::parse(ROOT_KEY).expect("root key");
    let published = paved_stream::open(stream, 10_000).await.expect("stream");
    let authority = paved_secrets_broker::offline_authority(&database, published, root).await.expect("authority");
    let token = authority.issue("test", &paved_secrets_broker::root_grant()).await.expect("root token").0;
    let task = tokio::spawn(paved_service::run_consumer::<paved_secrets_broker::SecretsBroker>(config, listener, shutdown.clone()));
    (broker, token, task)
}

/// `channel` presenting `token`.
pub fn authed(channel: tonic::transport::Channel, token: &str) -> paved_grpc::client::AuthChannel {
    paved_grpc::client::Bearer::new(token).expect("token").on(channel)
}

/// What this thread logs from now until the guard is dropped: a test on
/// tokio's default (current-thread) runtime sees everything the services
/// it runs in-process log while handling its calls.
pub fn capture_logs() -> (tracing::subscriber::DefaultGuard, Logs) {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt().with_writer(logs.clone()).with_ansi(false).with_max_level(tracing::Level::INFO).finish();
    (tracing::subscriber::set_default(subscriber), logs)
}

/// Log lines captured by [`capture_logs`].
#[derive(Clone, Default)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// A plain HTTP GET: the status, the headers and the body.
pub async fn http_get(url: &str) -> (http::StatusCode, http::HeaderMap, Vec<u8>) {
    try_http_get_url(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// [`http_get`], or why it failed (for a server that may not be up yet).
pub async fn try_http_get_url(url: &str) -> Result<(http::StatusCode, http::HeaderMap, Vec<u8>), String> {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    let response = client.get(uri).await.map_err(|e| e.to_string())?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes().to_vec();
    Ok((parts.status, parts.headers, body))
}

/// A service's common settings in production mode: on `listen`, its
/// database and stream, the broker at `broker`, no mTLS.
pub fn service_common(
    listen: std::net::SocketAddr,
    broker: std::net::SocketAddr,
    database_url: &str,
    stream_url: &str,
) -> paved_service::Common {
    paved_service::Common {
        listen,
        database_url: database_url.to_string(),
        stream_url: stream_url.to_string(),
        log_format: "pretty".into(),
        stream_max_len: 10_000,
        broker_url: format!("http://{broker}"),
        mtls: Default::default(),
    }
}
