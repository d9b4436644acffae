//! The process shell of a standalone Paved service: layered configuration
//! (defaults, then an optional YAML/TOML file, then `PAVED_*` environment
//! variables), telemetry, binding, connecting to the database and the event
//! stream with retries, serving, and draining on SIGTERM or Ctrl-C.
//!
//! A service crate provides its `Config` and `run`, or implements
//! [`ConsumerService`]; its `main.rs` is one call to [`main`] or
//! [`main_consumer`]. The embedded mode (`paved up`) skips this crate's
//! process handling and assembles the same components itself.

use anyhow::Context;
use paved_grpc::{Component, Health, ServerOptions};
use paved_stream::{SharedStream, consumer::Backoff};
use sea_orm_migration::{MigratorTrait, sea_orm::DatabaseConnection};
use serde::{Deserialize, de::DeserializeOwned};
use std::{future::Future, net::SocketAddr, path::PathBuf, process::ExitCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Settings every service has. Environment variables override the file:
/// `PAVED_LISTEN`, `PAVED_DATABASE_URL`, `PAVED_STREAM_URL`, `PAVED_LOG_FORMAT`.
#[derive(Debug, Clone, Deserialize)]
pub struct Common {
    /// gRPC (and `/healthz`, `/metrics`) address.
    pub listen: SocketAddr,
    /// `postgres://…` or `sqlite://…`: this service's own database.
    pub database_url: String,
    /// `redis://…` (production) or `sqlite://…` (embedded stream file).
    pub stream_url: String,
    #[serde(default = "default_log_format")]
    pub log_format: String,
    /// Entries kept per stream.
    #[serde(default = "default_max_len")]
    pub stream_max_len: u64,
    /// The secrets broker, whose key set verifies every call's token.
    #[serde(default = "default_broker_url")]
    pub broker_url: String,
}

fn default_broker_url() -> String {
    "http://127.0.0.1:7402".into()
}

fn default_log_format() -> String {
    "pretty".into()
}

fn default_max_len() -> u64 {
    paved_stream::DEFAULT_MAX_LEN
}

/// A service's configuration type.
pub trait ServiceConfig: DeserializeOwned + Send + 'static {
    fn common(&self) -> &Common;
}

/// Loads `T` from `defaults` (a YAML document), then `file`, then `PAVED_*`
/// environment variables (`PAVED_DATABASE_URL` sets `database_url`).
///
/// A service the platform deploys itself gets the servers instead
/// (`PAVED_POSTGRES_URL`, `PAVED_DATABASE_PREFIX`, `PAVED_REDIS_URL`) and
/// derives its own database (`<postgres>/<prefix><service>`) and stream URLs,
/// unless `PAVED_DATABASE_URL` / `PAVED_STREAM_URL` say otherwise.
pub fn load_config<T: DeserializeOwned>(service: &str, defaults: &str, file: Option<&std::path::Path>) -> anyhow::Result<T> {
    let mut builder = config::Config::builder().add_source(config::File::from_str(defaults, config::FileFormat::Yaml));
    if let Some(file) = file {
        anyhow::ensure!(file.exists(), "config file {} does not exist", file.display());
        builder = builder.add_source(config::File::from(file));
    }
    builder = builder.add_source(config::Environment::with_prefix("PAVED").try_parsing(true));
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(server), None) = (var("PAVED_POSTGRES_URL"), var("PAVED_DATABASE_URL")) {
        let prefix = var("PAVED_DATABASE_PREFIX").unwrap_or_else(|| "paved_".into());
        builder =
            builder.set_override("database_url", format!("{}/{prefix}{}", server.trim_end_matches('/'), service.replace('-', "_")))?;
    }
    if let (Some(redis), None) = (var("PAVED_REDIS_URL"), var("PAVED_STREAM_URL")) {
        builder = builder.set_override("stream_url", redis)?;
    }
    let config = builder.build().context("read configuration")?;
    config.try_deserialize().context("invalid configuration")
}

#[derive(Debug, clap::Parser)]
struct Args {
    /// Configuration file (YAML or TOML); `PAVED_*` environment variables override it.
    #[arg(long, short, env = "PAVED_CONFIG")]
    config: Option<PathBuf>,
}

/// A service's built-in defaults: it listens on `port` and finds its
/// database (`paved_<service>`) and the stream on this machine.
pub fn defaults(service: &str, port: u16) -> String {
    format!(
        "listen: 127.0.0.1:{port}\ndatabase_url: postgres://postgres@127.0.0.1:5432/paved_{}\nstream_url: redis://127.0.0.1:6379\n",
        service.replace('-', "_")
    )
}

/// The whole `main` of a standalone service binary.
pub fn main<C, F, Fut>(service: &'static str, port: u16, run: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let args = <Args as clap::Parser>::parse();
    let config: C = match load_config(service, &defaults(service, port), args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paved-{service}: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("paved-{service}: start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let format = config.common().log_format.parse().unwrap_or_default();
        let _telemetry = match paved_telemetry::init(&format!("paved-{service}"), format) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("paved-{service}: telemetry: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let addr = listen_addr(config.common());
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot bind");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(service, %addr, "listening");
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        match run(config, listener, shutdown).await {
            Ok(()) => {
                tracing::info!(service, "stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(service, error = format!("{e:#}"), "failed");
                ExitCode::FAILURE
            }
        }
    })
}

/// The configured address, unless `PORT` is set: a process started by the
/// local runtime (the platform deploying itself) listens where it is told.
fn listen_addr(common: &Common) -> SocketAddr {
    match std::env::var("PORT").ok().and_then(|p| p.parse::<u16>().ok()) {
        Some(port) => SocketAddr::new(common.listen.ip(), port),
        None => common.listen,
    }
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: draining requests and stopping workloads");
    token.cancel();
}

/// Retries `attempt` with backoff until it succeeds or `shutdown`: a database
/// or Redis that is still starting must delay a service, not crash it.
pub async fn retry<T, E: std::fmt::Display, Fut: Future<Output = Result<T, E>>>(
    what: &str,
    shutdown: &CancellationToken,
    mut attempt: impl FnMut() -> Fut,
) -> anyhow::Result<T> {
    let mut backoff = Backoff::default();
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                tracing::warn!(error = %e, "{what} failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => anyhow::bail!("{what}: interrupted by shutdown (last error: {e})"),
                    _ = backoff.wait() => {}
                }
            }
        }
    }
}

/// Connects to the service's database (retrying) and runs its migrations.
pub async fn database<M: MigratorTrait>(url: &str, shutdown: &CancellationToken) -> anyhow::Result<DatabaseConnection> {
    retry("connect to database", shutdown, || paved_store::connect_and_migrate::<M>(url)).await
}

/// Opens the event stream (retrying).
pub async fn stream(common: &Common, shutdown: &CancellationToken) -> anyhow::Result<SharedStream> {
    retry("connect to event stream", shutdown, || paved_stream::open(&common.stream_url, common.stream_max_len)).await
}

/// The standalone `run` shared by every service: connect the stream, build
/// the component, serve until `shutdown`.
pub async fn serve_standalone<Build, Fut>(
    common: &Common,
    listener: TcpListener,
    shutdown: CancellationToken,
    build: Build,
) -> anyhow::Result<()>
where
    Build: FnOnce(SharedStream, Health) -> Fut,
    Fut: Future<Output = anyhow::Result<Component>>,
{
    let health = Health::new();
    let stream = stream(common, &shutdown).await?;
    let component = build(stream, health.clone()).await?;
    let auth = paved_grpc::Authenticator::new();
    let loaded = health.reporter(component.name, "keys");
    // The broker trusts its own key set, from itself: asking through a
    // forwarder that waits for it to be healthy would never end.
    let broker_url = if component.open_methods.contains(&paved_grpc::auth::KEY_SET_METHOD) {
        let mut own = listener.local_addr()?;
        if own.ip().is_unspecified() {
            own.set_ip(if own.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
        }
        format!("http://{own}")
    } else {
        common.broker_url.clone()
    };
    tokio::spawn(paved_grpc::auth::follow(auth.clone(), broker_url, loaded, shutdown.clone()));
    paved_grpc::serve(listener, vec![component], health, auth, ServerOptions::default(), shutdown).await
}

/// Keeps `bearer` loaded from `file`, read again every minute, until
/// `shutdown`: whoever renews the token replaces the file.
pub async fn reload_token(file: PathBuf, bearer: paved_grpc::client::Bearer, shutdown: CancellationToken) {
    loop {
        let loaded = std::fs::read_to_string(&file).map_err(anyhow::Error::from).and_then(|token| bearer.set(token.trim()));
        if let Err(e) = loaded {
            tracing::warn!(file = %file.display(), error = %e, "cannot load the token file");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
        }
    }
}

/// A consumer name unique to this process: `PAVED_CONSUMER_NAME` if set, else
/// `<group>-<hostname>-<pid>`. A restarted process gets a new name; what the
/// old one left pending is claimed after the claim interval.
fn consumer_name(group: &str) -> String {
    if let Ok(name) = std::env::var("PAVED_CONSUMER_NAME") {
        return format!("{group}-{name}");
    }
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    format!("{group}-{host}-{}", std::process::id())
}

/// The configuration of a [`ConsumerService`]: the [`Common`] settings and
/// its own `options` (in the same file and `PAVED_*` variables).
#[derive(Debug, Clone, Deserialize)]
pub struct BasicConfig<O = NoOptions> {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub options: O,
}

impl<O: DeserializeOwned + Send + 'static> ServiceConfig for BasicConfig<O> {
    fn common(&self) -> &Common {
        &self.common
    }
}

/// The options of a service that has none of its own.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NoOptions {}

/// Adds a service's routes to a server's.
pub type Mount = Box<dyn FnOnce(tonic::service::Routes) -> tonic::service::Routes + Send>;

/// A service made of its database, one consumer group on every producer's
/// stream, and a gRPC API: what the four services besides the provisioner
/// are today. The shell (config, run, component) is written once, here.
pub trait ConsumerService: 'static {
    /// Short name: the consumer group, the binary (`paved-<NAME>`), the default database.
    const NAME: &'static str;
    /// Full gRPC service name; health is reported under it.
    const GRPC_NAME: &'static str;
    /// Default port in production mode.
    const PORT: u16;
    type Migrator: MigratorTrait;
    /// Its own settings ([`NoOptions`] for none).
    type Options: DeserializeOwned + Default + Clone + Send + 'static;
    /// Whether the service publishes events: then its migrator has the
    /// outbox table and the shell runs its relay.
    const PUBLISHES: bool = false;
    /// Methods callable without a token (full paths).
    const OPEN_METHODS: &'static [&'static str] = &[];
    /// Methods callable with any valid token (a holder acting on its own).
    const TOKEN_ONLY_METHODS: &'static [&'static str] = &[];
    /// The routes and the event handler, on the service's migrated
    /// database; `relay` is to be woken after committing events; loops the
    /// service needs go to `background`.
    fn parts(
        db: DatabaseConnection,
        relay: paved_stream::outbox::Relay,
        options: Self::Options,
        background: &mut Background,
    ) -> anyhow::Result<(Mount, std::sync::Arc<dyn paved_stream::consumer::Handler>)>;
}

/// Where a service starts its loops: they get the shutdown token and are
/// awaited when the server stops.
pub struct Background {
    tasks: tokio::task::JoinSet<()>,
    shutdown: CancellationToken,
}

impl Background {
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&mut self, task: impl FnOnce(CancellationToken) -> F) {
        self.tasks.spawn(task(self.shutdown.clone()));
    }
}

/// The service's component: its routes, and its consumer group reporting
/// health as check `stream`.
pub fn consumer_component<S: ConsumerService>(
    db: DatabaseConnection,
    stream: SharedStream,
    options: S::Options,
    health: &Health,
    shutdown: CancellationToken,
) -> anyhow::Result<Component> {
    let relay = paved_stream::outbox::Relay::new(db.clone(), stream.clone());
    let mut background = Background { tasks: Default::default(), shutdown: shutdown.clone() };
    let (mount, handler) = S::parts(db, relay.clone(), options, &mut background)?;
    let mut component = Component {
        name: S::GRPC_NAME,
        mount,
        tasks: background.tasks,
        open_methods: S::OPEN_METHODS,
        token_only_methods: S::TOKEN_ONLY_METHODS,
    };
    if S::PUBLISHES {
        component.tasks.spawn(relay.run(health.reporter(S::GRPC_NAME, "outbox"), shutdown.clone()));
    }
    let config = paved_stream::consumer::ConsumerConfig::for_service(S::NAME, consumer_name(S::NAME));
    let healthy = health.reporter(S::GRPC_NAME, "stream");
    component.tasks.spawn(paved_stream::consumer::run(stream, config, handler, healthy, shutdown));
    Ok(component)
}

/// Runs a consumer service on its own (production mode).
pub async fn run_consumer<S: ConsumerService>(
    config: BasicConfig<S::Options>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let db = database::<S::Migrator>(&config.common.database_url, &shutdown).await?;
    let token = shutdown.clone();
    let options = config.options;
    serve_standalone(&config.common, listener, shutdown, move |stream, health| async move {
        consumer_component::<S>(db, stream, options, &health, token)
    })
    .await
}

/// The whole `main` of a consumer service's binary.
pub fn main_consumer<S: ConsumerService>() -> ExitCode {
    main(S::NAME, S::PORT, run_consumer::<S>)
}
