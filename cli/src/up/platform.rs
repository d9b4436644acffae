//! The platform `paved up` assembles, in one process: embedded mode (the
//! five services on one gRPC server, SQLite files, the local runtime) or
//! self-hosted mode (the provisioner on PostgreSQL and Redis, deploying the
//! other four from `deploy/platform/`). The integration tests start it too.

use crate::{SERVICES, selfhost};
use anyhow::Context;
use paved_grpc::{Component, Health, ServerOptions};
use paved_provisioner::{Provisioner, model::State};
use paved_service::{ConsumerService, database};
use paved_store::sqlite_url;
use paved_stream::SharedStream;
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// How long the data plane of `paved up` serves on after the platform
/// vanished (killed, say), by default: a `paved up` started again within it
/// adopts the workloads without an outage; after it, they stop.
pub const DATA_PLANE_GRACE_SECONDS: u64 = 10;

/// The demo workload `paved up` deploys on first start.
pub const HELLO_SPEC: &str = include_str!("../../../examples/hello/paved.yaml");

/// The specs of the platform's own services, as `deploy/platform/` has them.
pub const PLATFORM_SPECS: [(&str, &str); 4] = [
    ("secrets-broker", include_str!("../../../deploy/platform/secrets-broker.yaml")),
    ("canary-analyzer", include_str!("../../../deploy/platform/canary-analyzer.yaml")),
    ("cost-scheduler", include_str!("../../../deploy/platform/cost-scheduler.yaml")),
    ("audit", include_str!("../../../deploy/platform/audit.yaml")),
];

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub example: bool,
    pub self_hosted: Option<SelfHosted>,
    /// Extra directories for workloads' `PATH` (the directory of the running
    /// executable is always there).
    pub bin_dirs: Vec<PathBuf>,
    /// Ed25519 public keys (hex) whose attestations the policy gate trusts, by name.
    pub trusted_keys: std::collections::BTreeMap<String, String>,
    /// Where the canary analyzer queries metrics of kind `prometheus`.
    pub prometheus_url: Option<String>,
    /// The cost scheduler's settings beyond whom it calls: its price sheet,
    /// the default schedules (the provisioner reads them too) and how often
    /// it samples usage.
    pub cost: CostOptions,
    /// How long the data plane serves on after the platform vanished
    /// (`DATA_PLANE_GRACE_SECONDS` by default).
    pub data_plane_grace_seconds: u64,
}

#[derive(Debug, Clone, Default)]
pub struct CostOptions {
    pub price_sheet: Option<PathBuf>,
    pub schedule_defaults: Option<PathBuf>,
    pub sample_seconds: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct SelfHosted {
    /// Server URL without a database: `postgres://user@host:port`.
    pub postgres_url: String,
    pub redis_url: String,
    /// Prefix of the services' database names (default `paved_`).
    pub database_prefix: String,
}

impl SelfHosted {
    fn database_url(&self, service: &str) -> String {
        format!("{}/{}{}", self.postgres_url.trim_end_matches('/'), self.database_prefix, service.replace('-', "_"))
    }

    /// What the platform's own services are told about the servers (through
    /// the runtime, not their specs: the API serves specs back, and these
    /// URLs may carry passwords).
    fn platform_env(&self) -> std::collections::BTreeMap<String, String> {
        [
            ("PAVED_POSTGRES_URL", self.postgres_url.trim_end_matches('/').to_string()),
            ("PAVED_DATABASE_PREFIX", self.database_prefix.clone()),
            ("PAVED_REDIS_URL", self.redis_url.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

pub struct Platform {
    pub addr: SocketAddr,
    pub health: Health,
    pub provisioner: Provisioner,
    /// A token with every scope, minted at start (`paved up` prints it once).
    pub root_token: String,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
    /// The data directory's lock, held while the platform runs.
    _owner: std::fs::File,
}

/// Locks `dir/paved.lock` (an OS lock: it goes with the process, also when
/// it crashes) so that one platform at a time uses the directory: two would
/// both relay the same outboxes, revoke the same leases and serve the same
/// workloads. The file names the owner's process id, for the message.
fn own(dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read, Write};
    let path = dir.join("paved.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut owner = String::new();
            let _ = file.read_to_string(&mut owner);
            anyhow::bail!(
                "{} is in use by another `paved up` (process {}): stop it, or give this one another --data-dir",
                dir.display(),
                owner.trim()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e).with_context(|| format!("lock {}", path.display())),
    }
    file.set_len(0)?;
    file.write_all(std::process::id().to_string().as_bytes())?;
    Ok(file)
}

impl Platform {
    pub async fn start(options: &UpOptions) -> anyhow::Result<Platform> {
        let dir = &options.data_dir;
        super::private::claim(dir)?;
        let owner = own(dir)?;
        let listener = TcpListener::bind(options.listen).await.with_context(|| {
            format!("cannot listen on {} (is another `paved up` running? choose another with --listen)", options.listen)
        })?;
        let addr = listener.local_addr()?;
        let health = Health::new();
        let shutdown = CancellationToken::new();
        // Whatever fails from here on stops what was already started.
        let guard = shutdown.clone().drop_guard();
        // The root key seals the broker's keys; it lives beside the data,
        // never in a database. Created on first start.
        let broker_options =
            paved_secrets_broker::Options { root_key_file: Some(dir.join("root.key")), create_root_key: true, ..Default::default() };
        let credentials = paved_grpc::client::Bearer::default();
        let cost_credentials = paved_grpc::client::Bearer::default();
        let provisioner_options = paved_provisioner::Options {
            data_dir: dir.join("provisioner"),
            bin_dirs: options.bin_dirs.clone(),
            proxy_host: options.listen.ip(),
            platform_env: options
                .self_hosted
                .as_ref()
                .map(|hosted| {
                    let mut env = hosted.platform_env();
                    // The broker runs as a workload there and needs the key.
                    env.insert("PAVED_ROOT_KEY_FILE".into(), dir.join("root.key").display().to_string());
                    env.insert("PAVED_BROKER_URL".into(), format!("http://{addr}"));
                    // The canary analyzer and the cost scheduler run as workloads there.
                    env.extend(options.prometheus_url.clone().map(|url| ("PAVED_PROMETHEUS_URL".to_string(), url)));
                    // And so does the cost scheduler.
                    let sheet = options.cost.price_sheet.as_ref().map(|p| ("PAVED_PRICE_SHEET".to_string(), p.display().to_string()));
                    let every = options.cost.sample_seconds.map(|s| ("PAVED_SAMPLE_SECONDS".to_string(), s.to_string()));
                    let defaults =
                        options.cost.schedule_defaults.as_ref().map(|p| ("PAVED_SCHEDULE_DEFAULTS".to_string(), p.display().to_string()));
                    env.extend(sheet.into_iter().chain(every).chain(defaults));
                    env
                })
                .unwrap_or_default(),
            // The built-in bundle (deploy/policies/); production mode reads
            // `policy_dir` from its config instead.
            policy_dir: None,
            trusted_keys: options.trusted_keys.clone(),
            // This server: the analyzer runs in it (embedded) or is reached
            // through its forwarder (self-hosted).
            analyzer_url: Some(format!("http://{addr}")),
            // This server too: plans show cost, the gate checks budgets.
            cost_scheduler_url: Some(format!("http://{addr}")),
            token_file: None,
            schedule_defaults: options.cost.schedule_defaults.clone(),
            credentials: credentials.clone(),
            // This server: the broker runs in it (embedded) or behind its forwarder.
            broker_url: Some(format!("http://{addr}")),
            // One process on loopback: no mTLS between its parts.
            tls: None,
            // Nothing `paved up` started outlives it for long, SIGKILL
            // included; a `paved up` started again within this adopts it all.
            data_plane_grace_seconds: Some(options.data_plane_grace_seconds),
            // Ctrl-C stops everything `paved up` started.
            keep_data_plane: false,
        };

        let (provisioner, components, authority, stream) = match &options.self_hosted {
            None => {
                let stream = paved_stream::open(&sqlite_url(&dir.join("stream.db")), paved_stream::DEFAULT_MAX_LEN)
                    .await
                    .context("open the embedded event stream")?;
                let db = database::<paved_provisioner::migration::Migrator>(&sqlite_url(&dir.join("provisioner.db")), &shutdown).await?;
                let (provisioner, component) =
                    Provisioner::start(db, stream.clone(), provisioner_options, &health, shutdown.clone()).await?;
                let mut components = vec![component];
                let analyzer = paved_canary_analyzer::Options { prometheus_url: options.prometheus_url.clone() };
                let cost = (
                    paved_cost_scheduler::Options {
                        provisioner_url: Some(format!("http://{addr}")),
                        token_file: None,
                        price_sheet: options.cost.price_sheet.clone(),
                        sample_seconds: options.cost.sample_seconds,
                        schedule_defaults: options.cost.schedule_defaults.clone(),
                        prometheus_url: options.prometheus_url.clone(),
                        ..Default::default()
                    },
                    cost_credentials.clone(),
                );
                components.extend(embedded_services(dir, &stream, analyzer, broker_options.clone(), cost, &health, &shutdown).await?);
                let authority = broker_options.authority.get().cloned().context("the broker was not built")?;
                (provisioner, components, authority, stream)
            }
            Some(hosted) => {
                let stream = paved_stream::open(&hosted.redis_url, paved_stream::DEFAULT_MAX_LEN)
                    .await
                    .with_context(|| format!("connect to Redis at {}", hosted.redis_url))?;
                let db = database::<paved_provisioner::migration::Migrator>(&hosted.database_url("provisioner"), &shutdown).await?;
                let (provisioner, component) =
                    Provisioner::start(db, stream.clone(), provisioner_options, &health, shutdown.clone()).await?;
                let mut components = vec![component];
                components.extend(selfhost::forwarders(&provisioner, &health, &shutdown));
                // `paved up` holds the root key, so it mints its tokens on
                // the broker's database itself: the broker is not running yet.
                let root = paved_secrets_broker::seal::RootKey::load_or_create(&dir.join("root.key"), true)?;
                let authority =
                    paved_secrets_broker::offline_authority(&hosted.database_url("secrets-broker"), stream.clone(), root).await?;
                (provisioner, components, authority, stream)
            }
        };

        let root_token = authority.issue("paved up", &paved_secrets_broker::root_grant()).await.context("mint the root token")?.0;
        // The services that call others present tokens minted here,
        // renewed well before they expire, for as long as the platform runs.
        for (grant, bearer) in [(provisioner_grant(), credentials.clone()), (cost_scheduler_grant(), cost_credentials.clone())] {
            let service = authority.issue("paved up", &grant).await.with_context(|| format!("mint the token of {}", grant.subject))?;
            bearer.set(&service.0)?;
            tokio::spawn(renew(authority.clone(), grant, bearer, service, shutdown.clone()));
        }
        let auth = paved_grpc::Authenticator::new();
        if let Some(denials) = auth.denials() {
            tokio::spawn(paved_service::publish_denials(stream, denials, shutdown.clone()));
        }
        let server =
            tokio::spawn(paved_grpc::serve(listener, components, health.clone(), auth.clone(), ServerOptions::default(), shutdown.clone()));
        // Every service of this server verifies with the same key set.
        let loaded = health.reporter(paved_provisioner::GRPC_NAME, "keys");
        tokio::spawn(paved_grpc::auth::follow(auth.clone(), format!("http://{addr}"), None, loaded, shutdown.clone()));
        // The databases exist now: closed to other users, with whatever an
        // earlier start left readable.
        super::private::close_contents(dir);
        guard.disarm();
        if options.self_hosted.is_none() {
            // The broker is in this process: its key set comes at once, and
            // a caller may use the root token as soon as this returns.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while auth.version() == 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let platform = Platform { addr, health, provisioner, root_token, shutdown, server, _owner: owner };
        if let Err(e) = platform.deploy_initial(options).await {
            // Stop what started (the result of stopping matters less than why).
            let _ = platform.stop().await;
            return Err(e);
        }
        Ok(platform)
    }

    /// The platform's own services (self-hosted) and, on first start, the example.
    async fn deploy_initial(&self, options: &UpOptions) -> anyhow::Result<()> {
        if options.self_hosted.is_some() {
            for (name, spec) in PLATFORM_SPECS {
                self.provisioner
                    .apply(paved_provisioner::PLATFORM_ENVIRONMENT, spec, &format!("deploy/platform/{name}.yaml"), "")
                    .await
                    .with_context(|| format!("deploy platform service {name}"))?;
            }
        }
        if options.example && self.provisioner.workload("dev", "hello").await?.is_none() {
            self.provisioner.apply("dev", HELLO_SPEC, "examples/hello/paved.yaml", "").await.context("deploy examples/hello")?;
        }
        Ok(())
    }

    /// Waits until every service is serving and every workload is healthy or
    /// failed, calling `progress` with what is still pending; returns the
    /// failed workloads with why (they stay failed until redeployed, and must
    /// not keep the platform from coming up).
    pub async fn wait_ready(&self, timeout: Duration, mut progress: impl FnMut(&[String])) -> anyhow::Result<Vec<String>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = Vec::new();
        loop {
            let mut pending: Vec<String> =
                SERVICES.iter().filter(|(_, grpc)| !self.health.is_serving(grpc)).map(|(n, _)| n.to_string()).collect();
            let mut failed = Vec::new();
            for view in self.provisioner.workloads("", 1000, 0).await? {
                let name = format!("{} ({})", view.workload.name, view.workload.environment);
                match view.state {
                    // Asleep is ready: a request wakes it.
                    _ if view.sleeping() => {}
                    Some(State::Healthy) => {}
                    Some(State::Failed) => failed.push(format!("{name} failed: {}", self.revision_message(&view).await)),
                    _ => pending.push(name),
                }
            }
            if pending.is_empty() {
                return Ok(failed);
            }
            if pending != last {
                progress(&pending);
                last = pending.clone();
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("not ready after {timeout:?}: waiting for {}", pending.join(", "));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn revision_message(&self, view: &paved_provisioner::WorkloadView) -> String {
        let Some(id) = &view.workload.current_revision else {
            return String::new();
        };
        match paved_provisioner::store::get_revision(self.provisioner.db(), id).await {
            Ok(Some(r)) => r.message,
            _ => String::new(),
        }
    }

    /// Drains requests, stops every workload and waits for the services.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.server.await.context("server task")?
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// What the provisioner needs of the others.
fn provisioner_grant() -> paved_secrets_broker::authority::Grant {
    paved_secrets_broker::authority::Grant {
        parent: None,
        subject: paved_secrets_broker::spiffe_id(paved_provisioner::PLATFORM_ENVIRONMENT, "provisioner"),
        scopes: paved_provisioner::CALL_SCOPES.map(String::from).to_vec(),
        audience: paved_grpc::auth::PLATFORM_AUDIENCE.into(),
        ttl: paved_secrets_broker::authority::DEFAULT_TTL,
        renewable: paved_secrets_broker::authority::MAX_RENEWABLE,
        artifact_digest: String::new(),
    }
}

/// What the cost scheduler needs of the others.
fn cost_scheduler_grant() -> paved_secrets_broker::authority::Grant {
    paved_secrets_broker::authority::Grant {
        subject: paved_secrets_broker::spiffe_id(paved_provisioner::PLATFORM_ENVIRONMENT, "cost-scheduler"),
        scopes: paved_cost_scheduler::CALL_SCOPES.map(String::from).to_vec(),
        ..provisioner_grant()
    }
}

/// Renews a service's token (`service`: the token and its info) a third
/// of the way through its life, or mints a new one past its renewable
/// time, into `bearer`, until `shutdown`.
async fn renew(
    authority: paved_secrets_broker::authority::Authority,
    grant: paved_secrets_broker::authority::Grant,
    bearer: paved_grpc::client::Bearer,
    mut service: (String, paved_secrets_broker::authority::Token),
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(paved_secrets_broker::authority::DEFAULT_TTL / 3) => {}
        }
        let renewed = match authority.renew_info(&service.1).await {
            Ok(renewed) => Ok(renewed),
            // Past its renewable time (or revoked): a new one.
            Err(_) => authority.issue("paved up", &grant).await,
        };
        match renewed {
            Ok(renewed) => {
                let _ = bearer.set(&renewed.0);
                service = renewed;
            }
            Err(e) => tracing::warn!(error = %e, subject = %grant.subject, "cannot renew a service's token; retrying"),
        }
    }
}

/// The four services besides the provisioner, each on its own SQLite file;
/// the cost scheduler with its options and the bearer its calls present.
async fn embedded_services(
    dir: &Path,
    stream: &SharedStream,
    analyzer: paved_canary_analyzer::Options,
    broker: paved_secrets_broker::Options,
    cost: (paved_cost_scheduler::Options, paved_grpc::client::Bearer),
    health: &Health,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<Component>> {
    use paved_secrets_broker::SecretsBroker;
    Ok(vec![
        embedded::<SecretsBroker>(dir, stream, broker, None, health, shutdown).await?,
        embedded::<paved_canary_analyzer::CanaryAnalyzer>(dir, stream, analyzer, None, health, shutdown).await?,
        embedded::<paved_cost_scheduler::CostScheduler>(dir, stream, cost.0, Some(cost.1), health, shutdown).await?,
        embedded::<paved_audit::Audit>(dir, stream, audit_options(dir), None, health, shutdown).await?,
    ])
}

/// The audit log's key is sealed under the root key beside the data, the
/// broker's (the broker, built first, creates it). Its witnesses come from
/// `PAVED_WITNESSES`, as in production.
fn audit_options(dir: &Path) -> paved_audit::Options {
    paved_audit::Options {
        root_key_file: Some(dir.join("root.key")),
        create_root_key: true,
        witnesses: std::env::var("PAVED_WITNESSES").ok(),
        ..Default::default()
    }
}

async fn embedded<S: ConsumerService>(
    dir: &Path,
    stream: &SharedStream,
    options: S::Options,
    calls: Option<paved_grpc::client::Bearer>,
    health: &Health,
    shutdown: &CancellationToken,
) -> anyhow::Result<Component> {
    let db = database::<S::Migrator>(&sqlite_url(&dir.join(format!("{}.db", S::NAME))), shutdown).await?;
    paved_service::consumer_component::<S>(db, stream.clone(), options, health, None, calls, shutdown.clone())
}
