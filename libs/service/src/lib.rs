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
use paved_grpc::{Component, Health, ServerOptions, tls::Tls};
use paved_stream::{SharedStream, consumer::Backoff};
use sea_orm_migration::{MigratorTrait, sea_orm::DatabaseConnection};
use serde::{Deserialize, de::DeserializeOwned};
use std::{future::Future, net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};
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
    /// mTLS between services (`PAVED_MTLS=true`): the service serves TLS
    /// with a certificate for `spiffe://paved/platform/<service>` from the
    /// broker's CA, renewed before it expires, presents it on its own
    /// calls, and verifies peers against the broker's trust bundle.
    #[serde(flatten)]
    pub mtls: MtlsOptions,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MtlsOptions {
    /// `PAVED_MTLS`.
    #[serde(default, rename = "mtls")]
    pub enabled: bool,
    /// The trust bundle shared at start (`PAVED_TRUST_BUNDLE_FILE`): the
    /// broker writes it, the other services read it to trust the broker
    /// before they hold a certificate.
    #[serde(default)]
    pub trust_bundle_file: Option<PathBuf>,
    /// A token whose subject is the service's SPIFFE id
    /// (`PAVED_IDENTITY_TOKEN_FILE`): what the service enrols with, at its
    /// first start or once a renewal is refused. Renewals need no token.
    #[serde(default, rename = "identity_token_file")]
    pub token_file: Option<PathBuf>,
    /// Where the service keeps its key and certificate
    /// (`PAVED_CERTIFICATE_DIR`: key.pem, mode 0600, cert.pem, bundle.pem),
    /// so that after a restart it renews from them rather than enrolling
    /// again with a token.
    #[serde(default)]
    pub certificate_dir: Option<PathBuf>,
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
/// the component, serve until `shutdown`. With mTLS, `build` gets the
/// service's identity (`spiffe://paved/platform/<name>`) to make its own
/// calls with, and `calls` (the bearer they present, if the service makes
/// any) is kept filled with tokens exchanged for its certificate.
pub async fn serve_standalone<Build, Fut>(
    common: &Common,
    name: &str,
    listener: TcpListener,
    shutdown: CancellationToken,
    calls: Option<paved_grpc::client::Bearer>,
    build: Build,
) -> anyhow::Result<()>
where
    Build: FnOnce(SharedStream, Health, Option<Tls>) -> Fut,
    Fut: Future<Output = anyhow::Result<Component>>,
{
    let health = Health::new();
    let tls = common.mtls.enabled.then(|| Tls::new(paved_grpc::tls::platform_id(name), common.mtls.trust_bundle_file.clone()));
    let stream = stream(common, &shutdown).await?;
    let stream_for_denials = stream.clone();
    let component = build(stream, health.clone(), tls.clone()).await?;
    let auth = paved_grpc::Authenticator::new();
    if let Some(denials) = auth.denials() {
        tokio::spawn(publish_denials(stream_for_denials, denials, shutdown.clone()));
    }
    let loaded = health.reporter(component.name, "keys");
    let is_broker = component.open_methods.contains(&paved_grpc::auth::KEY_SET_METHOD);
    // The broker trusts its own key set, from itself: asking through a
    // forwarder that waits for it to be healthy would never end.
    let broker_url = if is_broker {
        let mut own = listener.local_addr()?;
        if own.ip().is_unspecified() {
            own.set_ip(if own.is_ipv4() { std::net::Ipv4Addr::LOCALHOST.into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
        }
        format!("http://{own}")
    } else {
        common.broker_url.clone()
    };
    // The broker issues its own certificate (its component does); the
    // others ask it over the wire.
    if let Some(tls) = tls.clone().filter(|_| !is_broker) {
        let healthy = health.reporter(component.name, "certificate");
        tokio::spawn(maintain_identity(tls, broker_url.clone(), common.mtls.clone(), calls, healthy, shutdown.clone()));
    }
    tokio::spawn(paved_grpc::auth::follow(auth.clone(), broker_url, tls.clone(), loaded, shutdown.clone()));
    let options = ServerOptions { tls, ..ServerOptions::default() };
    paved_grpc::serve(listener, vec![component], health, auth, options, shutdown).await
}

/// Keeps a service's certificate and trust bundle current (mTLS): starts
/// from the bundle file (and the certificate kept in `certificate_dir`, if
/// any), then asks the broker for its bundle every
/// [`paved_grpc::tls::BUNDLE_REFRESH`] and for a new certificate (a new key
/// each time) at two thirds of the current one's life; with `calls`, for a
/// token (`ExchangeCertificate`) at two thirds of the last one's. `healthy`
/// hears whether a valid certificate (and token, with `calls`) is held.
pub async fn maintain_identity(
    tls: Tls,
    broker_url: String,
    options: MtlsOptions,
    calls: Option<paved_grpc::client::Bearer>,
    healthy: std::sync::Arc<dyn Fn(bool) + Send + Sync>,
    shutdown: CancellationToken,
) {
    let MtlsOptions { token_file, certificate_dir, .. } = options;
    use paved_proto::secrets_broker::v1::{GetTrustBundleRequest, secrets_broker_service_client::SecretsBrokerServiceClient};
    healthy(false);
    // The bundle and enrolments go over this one; renewals and exchanges
    // over their own (see `own_channel`).
    let channel = match own_channel(&tls, &broker_url) {
        Ok(channel) => channel,
        Err(e) => {
            tracing::error!(broker = %broker_url, error = %e, "invalid broker URL: no certificate, no mTLS");
            return;
        }
    };
    let bearer = paved_grpc::client::Bearer::default();
    let mut client = SecretsBrokerServiceClient::new(bearer.on(channel));
    let (mut renew_at, mut expire_at, mut warned, mut failures) = (0, 0, false, 0);
    let mut pending: Option<(Vec<u8>, String)> = None;
    // When to exchange the certificate for a token again, and when the one held expires.
    let (mut token_at, mut token_until) = (0, 0);
    // A certificate kept from before a restart: renewed at once with itself.
    if let Some(dir) = &certificate_dir {
        match kept_identity(&tls, dir) {
            Ok(expire) => expire_at = expire,
            Err(e) => tracing::info!(dir = %dir.display(), error = %format!("{e:#}"), "no certificate kept: enrolling with the token file"),
        }
    }
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        let step = async {
            let from_file = || {
                let file = tls.bundle_file().ok_or_else(|| {
                    anyhow::anyhow!("mTLS needs trust_bundle_file (PAVED_TRUST_BUNDLE_FILE) to trust the broker at first")
                })?;
                let pem = std::fs::read_to_string(file).with_context(|| format!("trust bundle {}", file.display()))?;
                tls.set_bundle(&pem)
            };
            if tls.bundle_pem().is_empty() {
                from_file()?;
            }
            let bundle = match client.get_trust_bundle(GetTrustBundleRequest {}).await {
                Ok(bundle) => bundle.into_inner(),
                Err(e) => {
                    // Away through a CA rotation, this service may no longer
                    // trust the broker's certificate: the file has the new CA.
                    let _ = from_file();
                    return Err(e.into());
                }
            };
            tls.set_bundle(&bundle.trust_bundle_pem)?;
            if now >= renew_at {
                // The same key and request until one succeeds: a renewal
                // whose answer was lost is answered again, not refused.
                let (key, csr_pem) = match pending.clone() {
                    Some(pending) => pending,
                    None => pending.insert(paved_grpc::tls::new_key(tls.spiffe_id())?).clone(),
                };
                let renewable = now < expire_at;
                let (certificate_pem, expire_time, authority_id) =
                    match obtain_certificate(&tls, &broker_url, &mut client, &bearer, token_file.as_deref(), csr_pem, renewable).await {
                        Ok(obtained) => obtained,
                        Err(e) => {
                            // Each refusal is an event: backing off, up to a minute.
                            failures = (failures + 1).min(5);
                            renew_at = now + 2_000 * (1 << failures);
                            return Err(e);
                        }
                    };
                let expire = expire_time.as_ref().map_or(now, paved_proto::millis_from_timestamp);
                tls.set_certificate(&certificate_pem, key.clone(), expire)?;
                (renew_at, expire_at, failures, pending) = (tls.renew_at(now), expire, 0, None);
                tracing::info!(spiffe_id = tls.spiffe_id(), authority = authority_id, "certificate renewed");
                if let Some(dir) = &certificate_dir
                    && let Err(e) = paved_grpc::tls::save_identity(dir, &key, &certificate_pem, &tls.bundle_pem())
                {
                    // Held all the same; a restart enrols again from the token file.
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot keep the certificate");
                }
            }
            if let Some(calls) = calls.as_ref().filter(|_| now >= token_at && tls.has_certificate()) {
                use paved_proto::secrets_broker::v1::ExchangeCertificateRequest;
                let mut client = SecretsBrokerServiceClient::new(own_channel(&tls, &broker_url)?);
                let exchanged = match client.exchange_certificate(ExchangeCertificateRequest {}).await {
                    Ok(exchanged) => exchanged.into_inner(),
                    Err(status) => {
                        // Each refusal is an event: not every 2 s.
                        token_at = now + 60_000;
                        return Err(status.into());
                    }
                };
                calls.set(&exchanged.token)?;
                token_until = exchanged.info.and_then(|i| i.expire_time).as_ref().map_or(now, paved_proto::millis_from_timestamp);
                token_at = now + (token_until - now) * 2 / 3;
            }
            anyhow::Ok(())
        };
        match step.await {
            Ok(()) => warned = false,
            Err(e) if !warned => {
                tracing::warn!(broker = %broker_url, error = %format!("{e:#}"), "cannot renew the certificate or bundle; retrying");
                warned = true;
            }
            Err(_) => {}
        }
        let now = chrono::Utc::now().timestamp_millis();
        healthy(tls.has_certificate() && now < expire_at && (calls.is_none() || now < token_until));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(paved_grpc::tls::BUNDLE_REFRESH) => {}
        }
    }
}

/// A channel to the broker presenting `tls`'s certificate of the moment. A
/// renewal or an exchange takes a new one each time: the broker sees the
/// certificate of a connection's handshake.
fn own_channel(tls: &Tls, broker_url: &str) -> anyhow::Result<tonic::transport::Channel> {
    paved_grpc::tls::connect(broker_url, Some(tls), Some(&paved_grpc::tls::platform_id("secrets-broker")), |e| {
        e.connect_timeout(Duration::from_secs(2)).timeout(Duration::from_secs(10))
    })
}

/// Installs the certificate and bundle kept in `dir` if the certificate is
/// still valid; when it expires.
fn kept_identity(tls: &Tls, dir: &std::path::Path) -> anyhow::Result<i64> {
    let (key, certificate_pem, bundle_pem) = paved_grpc::tls::load_identity(dir)?;
    let held = paved_grpc::tls::certificates(&certificate_pem)?;
    let expire = paved_grpc::tls::not_after_ms(&held[0]).context("cert.pem: no validity")?;
    anyhow::ensure!(expire > chrono::Utc::now().timestamp_millis(), "the certificate kept has expired");
    tls.set_bundle(&bundle_pem)?;
    tls.set_certificate(&certificate_pem, key, expire)?;
    Ok(expire)
}

/// A certificate for the key of `csr_pem`: renewed with the one `tls`
/// holds while it is `renewable`; enrolled with the token file at first,
/// or once renewals are refused. Its PEM, expiry and CA.
async fn obtain_certificate(
    tls: &Tls,
    broker_url: &str,
    client: &mut paved_proto::secrets_broker::v1::secrets_broker_service_client::SecretsBrokerServiceClient<
        paved_grpc::client::AuthChannel,
    >,
    bearer: &paved_grpc::client::Bearer,
    token_file: Option<&std::path::Path>,
    csr_pem: String,
    renewable: bool,
) -> anyhow::Result<(String, Option<prost_types::Timestamp>, String)> {
    if renewable && let Some(renewed) = renew_by_certificate(tls, broker_url, csr_pem.clone()).await? {
        return Ok(renewed);
    }
    let file = token_file
        .ok_or_else(|| anyhow::anyhow!("mTLS needs identity_token_file (PAVED_IDENTITY_TOKEN_FILE): a token for {}", tls.spiffe_id()))?;
    bearer.set(std::fs::read_to_string(file).with_context(|| format!("token file {}", file.display()))?.trim())?;
    let request = paved_proto::secrets_broker::v1::IssueCertificateRequest { csr_pem, spiffe_id: tls.spiffe_id().to_string(), ttl: None };
    let issued = client.issue_certificate(request).await?.into_inner();
    Ok((issued.certificate_pem, issued.expire_time, issued.authority_id))
}

/// A certificate for the one `tls` holds, asked for with it over a new
/// connection (the broker sees the certificate of a connection's
/// handshake, and the one before may have expired): its PEM, expiry and
/// CA; None when the broker refuses it, the enrolment revoked or over.
async fn renew_by_certificate(
    tls: &Tls,
    broker_url: &str,
    csr_pem: String,
) -> anyhow::Result<Option<(String, Option<prost_types::Timestamp>, String)>> {
    use paved_proto::secrets_broker::v1::{RenewCertificateRequest, secrets_broker_service_client::SecretsBrokerServiceClient};
    match SecretsBrokerServiceClient::new(own_channel(tls, broker_url)?)
        .renew_certificate(RenewCertificateRequest { csr_pem, ttl: None })
        .await
    {
        Ok(renewed) => {
            let renewed = renewed.into_inner();
            Ok(Some((renewed.certificate_pem, renewed.expire_time, renewed.authority_id)))
        }
        Err(status) if status.code() == tonic::Code::Unauthenticated => {
            tracing::warn!(spiffe_id = tls.spiffe_id(), error = status.message(), "renewal refused: enrolling again with the token file");
            Ok(None)
        }
        Err(status) => Err(status.into()),
    }
}

/// Records the auth layer's refusals as `paved.events.v1.access.denied`
/// events on the refusing service's stream, as many as wait in one batch,
/// until `shutdown`. Best effort: while the stream is away they are
/// dropped, and the log says how many.
pub async fn publish_denials(
    stream: SharedStream,
    mut denials: tokio::sync::mpsc::Receiver<paved_grpc::auth::Denied>,
    shutdown: CancellationToken,
) {
    use paved_proto::events::v1::{AccessDenied, envelope::Payload};
    let mut batch = Vec::with_capacity(256);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            n = denials.recv_many(&mut batch, 256) => if n == 0 { return },
        }
        let entries: Vec<(String, Vec<u8>)> = batch
            .drain(..)
            .map(|d: paved_grpc::auth::Denied| {
                let envelope = paved_stream::event::envelope(
                    &d.service,
                    "paved.events.v1.access.denied",
                    format!("methods{}", d.method),
                    Payload::AccessDenied(AccessDenied {
                        service: d.service.clone(),
                        method: d.method,
                        subject: d.subject,
                        reason: d.reason,
                        message: d.message,
                    }),
                );
                (paved_stream::stream_name(&d.service), paved_stream::event::encode(&envelope))
            })
            .collect();
        if let Err(e) = stream.publish_batch(&entries).await {
            tracing::warn!(error = %e, dropped = entries.len(), "cannot record refused calls as events");
        }
    }
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
    /// The producers whose streams its handler reads: every one by default.
    /// A group on a stream it ignores would still take, track and ack each
    /// of its events (the broker publishes one per token issued).
    const READS: &'static [&'static str] = paved_stream::PRODUCERS;
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
    tls: Option<Tls>,
}

impl Background {
    /// The service's mTLS identity (production mode with mTLS).
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

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
    tls: Option<Tls>,
    shutdown: CancellationToken,
) -> anyhow::Result<Component> {
    let relay = paved_stream::outbox::Relay::new(db.clone(), stream.clone());
    let mut background = Background { tasks: Default::default(), shutdown: shutdown.clone(), tls };
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
    let config = paved_stream::consumer::ConsumerConfig::for_service(S::NAME, consumer_name(S::NAME), S::READS);
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
    serve_standalone(&config.common, S::NAME, listener, shutdown, None, move |stream, health, tls| async move {
        consumer_component::<S>(db, stream, options, &health, tls, token)
    })
    .await
}

/// The whole `main` of a consumer service's binary.
pub fn main_consumer<S: ConsumerService>() -> ExitCode {
    main(S::NAME, S::PORT, run_consumer::<S>)
}

#[cfg(test)]
mod tests {
    /// mTLS settings sit flat beside the others, as `PAVED_MTLS`,
    /// `PAVED_TRUST_BUNDLE_FILE` and `PAVED_IDENTITY_TOKEN_FILE` set them.
    #[test]
    fn mtls_settings_are_flat_keys() {
        let yaml = "listen: 127.0.0.1:1\ndatabase_url: x\nstream_url: y\n\
                    mtls: true\ntrust_bundle_file: /run/paved/bundle.pem\nidentity_token_file: /run/paved/audit.token\n";
        let config: super::BasicConfig = super::load_config("audit", yaml, None).expect("config");
        let mtls = config.common.mtls;
        assert!(mtls.enabled);
        assert_eq!(mtls.trust_bundle_file.as_deref(), Some(std::path::Path::new("/run/paved/bundle.pem")));
        assert_eq!(mtls.token_file.as_deref(), Some(std::path::Path::new("/run/paved/audit.token")));
        let plain: super::BasicConfig =
            super::load_config("audit", "listen: 127.0.0.1:1\ndatabase_url: x\nstream_url: y\n", None).expect("config");
        assert!(!plain.common.mtls.enabled && plain.common.mtls.trust_bundle_file.is_none());
    }
}
