//! The provisioner: owns workloads and their revisions, and runs them through
//! a runtime driver.
//!
//! # Layout
//! - [`migration`], [`model`], [`store`] — the schema, the domain types and the
//!   queries; every state change enqueues its event in the same transaction.
//! - [`runtime`] — the local runtime driver (real processes, health checks,
//!   restarts); it reports state changes on a channel and persists nothing.
//! - [`proxy`] — the per-workload proxy, the stable endpoint in front of a
//!   workload's healthy instances.
//! - [`Provisioner`] (here): applies specs, records the runtime's reports,
//!   routes each proxy from the persisted routing (stable, standby, the
//!   active rollout's canary and weight), and reconciles after a restart.
//! - [`rollout`] — the rollout state machine: its driver and the operations
//!   on it (pause, resume, abort, promote, rollback).
//! - [`preview`] — preview environments `pr-<n>`: open with a time to live,
//!   close (destroying everything they created), expire.
//! - [`artifacts`] — the content-addressed artifact store and its signed
//!   attestations, which the policy gate reads.
//! - [`api`] — `paved.provisioner.v1.ProvisionerService`.

pub mod api;
pub mod artifacts;
pub mod migration;
pub mod model;
pub mod preview;
pub mod proxy;
pub mod rollout;
pub mod runtime;
pub mod store;

use model::{Revision, Rollout, RolloutState, State, Workload};
use paved_grpc::{Component, Health};
use paved_stream::{SharedStream, consumer::Backoff, outbox::Relay};
use runtime::{Launch, LocalRuntime, Report};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use serde::Deserialize;
use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
};
use tokio_util::sync::CancellationToken;

pub const SERVICE: &str = "provisioner";
pub const GRPC_NAME: &str = "paved.provisioner.v1.ProvisionerService";

/// The environment of the platform's own services (self-hosted mode).
pub const PLATFORM_ENVIRONMENT: &str = paved_grpc::tls::PLATFORM_ENVIRONMENT;

/// What the provisioner's own calls need of the others: a bootstrap token
/// for each process it starts (the broker), and looks to the analyzer.
pub const CALL_SCOPES: [&str; 3] = ["write:secrets-broker", "bootstrap:issue:*", "write:canary-analyzer"];

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(flatten)]
    pub common: paved_service::Common,
    #[serde(flatten)]
    pub options: Options,
}

impl paved_service::ServiceConfig for Config {
    fn common(&self) -> &paved_service::Common {
        &self.common
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Options {
    /// Workload logs and working files.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Directories put first on workloads' `PATH`; the directory of the
    /// running executable is always added.
    #[serde(default)]
    pub bin_dirs: Vec<PathBuf>,
    /// Where workload proxies listen.
    #[serde(default = "default_proxy_host")]
    pub proxy_host: IpAddr,
    /// Extra environment for workloads of environment `platform` (the
    /// platform's own services): how they reach PostgreSQL and Redis. Kept
    /// out of the specs, which the API serves back.
    #[serde(default)]
    pub platform_env: std::collections::BTreeMap<String, String>,
    /// A directory of `.rego` files replacing the default policy bundle
    /// (`deploy/policies/`, built in).
    #[serde(default)]
    pub policy_dir: Option<PathBuf>,
    /// Ed25519 public keys (hex) whose attestations count, by signer name.
    #[serde(default)]
    pub trusted_keys: std::collections::BTreeMap<String, String>,
    /// The canary analyzer that judges rollout steps, e.g.
    /// `http://127.0.0.1:7403`. Without one, a step is gated on the
    /// canary's health and the rollout's error-rate and p99 limits alone.
    #[serde(default)]
    pub analyzer_url: Option<String>,
    /// A file holding the token the provisioner presents on its calls (to
    /// the broker for bootstrap tokens, `bootstrap:issue:*`; to the
    /// analyzer, `write:canary-analyzer`), read again every minute so it
    /// can be replaced before it expires. With mTLS it needs none: its
    /// calls present tokens exchanged for its certificate.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The token presented on calls to other services; `paved up` mints
    /// and renews it in-process.
    #[serde(skip)]
    pub credentials: paved_grpc::client::Bearer,
    /// The secrets broker that issues each process its bootstrap token
    /// (standalone: the `broker_url` of the common settings).
    #[serde(skip)]
    pub broker_url: Option<String>,
    /// The provisioner's mTLS identity for its calls to the broker and the
    /// analyzer (standalone, with mTLS).
    #[serde(skip)]
    pub tls: Option<paved_grpc::tls::Tls>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(".paved/provisioner")
}

fn default_proxy_host() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// How often desired and running revisions are compared.
const DRIFT_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Rollout drivers advancing at once; the others wait their turn. A burst of
/// a thousand applies starts a thousand drivers, and unbounded they would
/// queue a thousand transactions ahead of every API request on the
/// database (one connection on SQLite). Waiting — for health, for a step's
/// interval — takes no turn.
const DRIVING: usize = 4;

/// Default port in production mode.
pub const PORT: u16 = 7401;

/// The runtime's name for a rollout's baseline: instances of the stable
/// revision that take the same share of traffic as the canary, so that the
/// two are compared under the same conditions (a stable revision serving
/// the rest of the traffic runs warmer caches and fuller pools). It has no
/// record of its own: it lives and dies with the rollout's step stage.
pub fn baseline_key(stable_revision: &str) -> String {
    format!("{stable_revision}{BASELINE}")
}

const BASELINE: &str = "~baseline";

/// Secret zero for every process the runtime starts: a fresh single-use
/// bootstrap token from the broker at `url`, bound to the revision, handed
/// over as `PAVED_BOOTSTRAP_TOKEN` with `PAVED_BROKER_URL`. The platform's
/// own services (environment `platform`) get none: the broker is one of them.
fn bootstrapper(
    url: &str,
    credentials: &paved_grpc::client::Bearer,
    tls: Option<&paved_grpc::tls::Tls>,
) -> anyhow::Result<runtime::Bootstrap> {
    use paved_proto::secrets_broker::v1::{IssueBootstrapTokenRequest, secrets_broker_service_client::SecretsBrokerServiceClient};
    let channel = paved_grpc::tls::connect(url, tls, Some(&paved_grpc::tls::platform_id("secrets-broker")), |e| {
        e.connect_timeout(std::time::Duration::from_secs(2)).timeout(std::time::Duration::from_secs(10))
    })
    .map_err(|e| anyhow::anyhow!("broker_url: {e}"))?;
    let client = SecretsBrokerServiceClient::new(credentials.on(channel));
    let url = url.to_string();
    Ok(Arc::new(move |launch: Launch| {
        let (mut client, url) = (client.clone(), url.clone());
        Box::pin(async move {
            if launch.environment == PLATFORM_ENVIRONMENT {
                return Ok(Vec::new());
            }
            let request = IssueBootstrapTokenRequest {
                environment: launch.environment,
                workload: launch.workload,
                revision_id: launch.revision_id,
                artifact_digest: launch.artifact_digest,
                secrets: launch.spec.secrets,
                databases: launch.spec.databases,
                certificate: launch.spec.certificate,
                ttl: None,
            };
            let issued = client.issue_bootstrap_token(request).await.map_err(|s| s.message().to_string())?.into_inner();
            Ok(vec![("PAVED_BOOTSTRAP_TOKEN".to_string(), issued.bootstrap_token), ("PAVED_BROKER_URL".to_string(), url)])
        })
    }))
}

/// Runs the provisioner on its own (production mode).
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let db = paved_service::database::<migration::Migrator>(&config.common.database_url, &shutdown).await?;
    // Its calls present the token in `token_file`, or with mTLS one
    // exchanged for its certificate.
    let calls = match config.options.token_file.clone() {
        Some(file) => {
            tokio::spawn(paved_service::reload_token(file, config.options.credentials.clone(), shutdown.clone()));
            None
        }
        None => Some(config.options.credentials.clone()),
    };
    let token = shutdown.clone();
    let mut options = config.options;
    options.broker_url.get_or_insert(config.common.broker_url.clone());
    paved_service::serve_standalone(&config.common, "provisioner", listener, shutdown, calls, move |stream, health, tls| async move {
        options.tls = tls;
        Ok(Provisioner::start(db, stream, options, &health, token).await?.1)
    })
    .await
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Spec(#[from] paved_spec::SpecError),
    #[error("invalid environment: {0}")]
    Environment(String),
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("cannot open the workload's proxy port: {0}")]
    Proxy(std::io::Error),
    #[error("denied by policy (bundle {}): {}", .0.bundle_digest, .0.denials.join("; "))]
    Denied(paved_policy::Decision),
    #[error(transparent)]
    Policy(#[from] paved_policy::PolicyError),
    #[error(transparent)]
    Artifact(#[from] artifacts::ArtifactError),
}

/// Whether `revision` is a live run of the spec with `digest`. A revision is
/// what runs (the spec's digest, which covers an artifact's digest), never
/// where its file was read from: the same spec applied from another
/// checkout changes nothing. (The path stays with the revision as a label
/// for messages, and as the directory a relative command first ran in.)
fn runs_spec(revision: &Revision, digest: &str) -> bool {
    revision.spec_digest == digest && !matches!(revision.state, State::Failed | State::Stopped)
}

/// Why a plan does what it does, in words for people: for an update of an
/// unchanged spec, the state of the revision that makes it one.
fn plan_reason(current: Option<&Revision>, digest: &str) -> String {
    match current {
        None => "no revision of this workload runs".to_string(),
        Some(r) if r.spec_digest != digest => format!("the spec differs from revision {}'s", r.number),
        Some(r) if matches!(r.state, State::Failed | State::Stopped) => {
            let why = if r.message.is_empty() { String::new() } else { format!(": {}", r.message) };
            format!("revision {} runs this spec but is {}{why}", r.number, r.state.as_str())
        }
        Some(r) => format!("revision {} runs this spec", r.number),
    }
}

/// What each handler checks beyond the layer's rule, by method, in words for
/// `docs/scopes.md` (the table a test generates and compares).
pub const HANDLER_SCOPES: &[(&str, &str)] = &[
    ("ApplyWorkload", "`deploy:<env>/<workload>`"),
    ("PauseRollout", "`deploy:<env>/<workload>` of the rollout's workload"),
    ("ResumeRollout", "`deploy:<env>/<workload>` of the rollout's workload"),
    ("AbortRollout", "`deploy:<env>/<workload>` of the rollout's workload"),
    ("PromoteRollout", "`deploy:<env>/<workload>` of the rollout's workload"),
    ("RollbackWorkload", "`deploy:<env>/<workload>`"),
    ("OpenPreview", "`deploy:pr-<n>/<workload>`"),
    ("ClosePreview", "`deploy:pr-<n>/*`"),
];

/// What an apply would do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub action: PlanAction,
    pub current_revision: Option<String>,
    pub changes: Vec<paved_spec::FieldChange>,
    /// Differences between what was applied and what runs.
    pub drift: Vec<String>,
    pub decision: paved_policy::Decision,
    /// Why this action ([`plan_reason`]).
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanAction {
    None,
    Create,
    Update,
}

/// The result of an apply.
#[derive(Debug, Clone)]
pub struct Applied {
    pub workload: WorkloadView,
    pub revision: Revision,
    pub changed: bool,
    /// The rollout the apply started, or the one already under way for the same spec.
    pub rollout: Option<Rollout>,
    /// What the policy gate let pass with a warning.
    pub warnings: Vec<String>,
}

/// A workload with its current revision's state, its endpoint and its newest rollout.
#[derive(Debug, Clone)]
pub struct WorkloadView {
    pub workload: Workload,
    pub state: Option<State>,
    pub endpoint: String,
    pub rollout_id: Option<String>,
}

#[derive(Clone)]
pub struct Provisioner {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    relay: Relay,
    runtime: Arc<LocalRuntime>,
    options: Options,
    /// workload id → its proxy
    proxies: Mutex<HashMap<String, proxy::Proxy>>,
    /// revision id → its healthy instances, as the runtime last reported
    backends: Mutex<HashMap<String, Vec<SocketAddr>>>,
    /// Rollouts with a driver in this process.
    drivers: Mutex<HashSet<String>>,
    /// Per workload: held while its proxy is routed (see `route`).
    routing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Drivers advancing at once (see [`DRIVING`]).
    driving: tokio::sync::Semaphore,
    /// When this process started (ms): a rollout step begun earlier had its
    /// traffic counted by another process.
    started_ms: i64,
    /// Bumped on every recorded change: rollout drivers and watchers wake on it.
    changes: Changes,
    /// Applies are serialised: revision numbers are allocated max+1.
    apply_lock: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
    health: Health,
    policy: paved_policy::Bundle,
    artifacts: artifacts::Store,
    /// See [`Options::analyzer_url`].
    analyzer: Option<Analyzer>,
}

type Analyzer =
    paved_proto::canary_analyzer::v1::canary_analyzer_service_client::CanaryAnalyzerServiceClient<paved_grpc::client::AuthChannel>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Change notifications per workload: whoever waits on a workload (its
/// rollout's driver, a watch) wakes when something about it is recorded.
#[derive(Default)]
struct Changes(Mutex<HashMap<String, watch::Sender<u64>>>);

impl Changes {
    fn subscribe(&self, workload_id: &str) -> watch::Receiver<u64> {
        lock(&self.0).entry(workload_id.to_string()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    fn notify(&self, workload_id: &str) {
        let mut channels = lock(&self.0);
        if let Some(tx) = channels.get(workload_id) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
            if tx.receiver_count() == 0 {
                channels.remove(workload_id);
            }
        }
    }
}

impl Provisioner {
    /// Starts the relay, the runtime and its report loop, brings back what
    /// was running before a restart, and returns the gRPC component.
    pub async fn start(
        db: DatabaseConnection,
        stream: SharedStream,
        mut options: Options,
        health: &Health,
        shutdown: CancellationToken,
    ) -> anyhow::Result<(Self, Component)> {
        if let Some(dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)) {
            options.bin_dirs.push(dir);
        }
        let log_dir = options.data_dir.join("logs");
        std::fs::create_dir_all(&log_dir).map_err(|e| anyhow::anyhow!("create {}: {e}", log_dir.display()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let run_dir = options.data_dir.join("run");
        let mut runtime = LocalRuntime::new(options.bin_dirs.clone(), log_dir, run_dir.clone(), tx)
            .map_err(|e| anyhow::anyhow!("create {}: {e}", run_dir.display()))?;
        if let Some(url) = &options.broker_url {
            runtime = runtime.with_bootstrap(bootstrapper(url, &options.credentials, options.tls.as_ref())?);
        }
        let runtime = Arc::new(runtime);
        let relay = Relay::new(db.clone(), stream);
        let policy = match &options.policy_dir {
            Some(dir) => paved_policy::Bundle::load(dir),
            None => paved_policy::Bundle::default_bundle(),
        }
        .map_err(|e| anyhow::anyhow!("policy bundle: {e}"))?;
        tracing::info!(bundle = policy.digest(), "policy bundle loaded");
        let artifact_dir = options.data_dir.join("artifacts");
        let artifacts = artifacts::Store::new(artifact_dir.clone(), options.trusted_keys.clone())
            .map_err(|e| anyhow::anyhow!("create {}: {e}", artifact_dir.display()))?;
        let analyzer = match &options.analyzer_url {
            Some(url) => {
                let channel =
                    paved_grpc::tls::connect(url, options.tls.as_ref(), Some(&paved_grpc::tls::platform_id("canary-analyzer")), |e| {
                        e.connect_timeout(std::time::Duration::from_secs(2)).timeout(std::time::Duration::from_secs(10)).tcp_nodelay(true)
                    })
                    .map_err(|e| anyhow::anyhow!("analyzer_url: {e}"))?;
                Some(Analyzer::new(options.credentials.on(channel)))
            }
            None => {
                tracing::warn!("no canary analyzer configured (analyzer_url): rollout steps are gated on health and limits alone");
                None
            }
        };
        let provisioner = Self {
            inner: Arc::new(Inner {
                db,
                relay: relay.clone(),
                runtime: runtime.clone(),
                options,
                proxies: Mutex::new(HashMap::new()),
                backends: Mutex::new(HashMap::new()),
                drivers: Mutex::new(HashSet::new()),
                routing: Mutex::new(HashMap::new()),
                driving: tokio::sync::Semaphore::new(DRIVING),
                started_ms: chrono::Utc::now().timestamp_millis(),
                changes: Changes::default(),
                apply_lock: tokio::sync::Mutex::new(()),
                shutdown: shutdown.clone(),
                health: health.clone(),
                policy,
                artifacts,
                analyzer,
            }),
        };
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(relay.run(health.reporter(GRPC_NAME, "outbox"), shutdown.clone()));
        // On shutdown: stop every workload, then let the report loop record
        // the last reports and end.
        let drained = CancellationToken::new();
        tasks.spawn({
            let (shutdown, drained, provisioner) = (shutdown.clone(), drained.clone(), provisioner.clone());
            async move {
                shutdown.cancelled().await;
                provisioner.inner.runtime.stop_all().await;
                drained.cancel();
                let proxies: Vec<proxy::Proxy> = lock(&provisioner.inner.proxies).drain().map(|(_, p)| p).collect();
                for proxy in proxies {
                    proxy.shut().await;
                }
            }
        });
        tasks.spawn(provisioner.clone().report_loop(rx, drained));
        provisioner.reconcile().await?;
        tasks.spawn(provisioner.clone().correct_drift(shutdown.clone()));
        let api = api::server(provisioner.clone());
        let component =
            Component { name: GRPC_NAME, mount: Box::new(move |r| r.add_service(api)), tasks, open_methods: &[], token_only_methods: &[] };
        Ok((provisioner, component))
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// Registers the workload if new and deploys a revision of `spec_yaml`,
    /// unless the current revision already runs the same spec.
    pub async fn apply(&self, environment: &str, spec_yaml: &str, spec_path: &str, request_id: &str) -> Result<Applied, ApplyError> {
        paved_spec::validate_name(environment).map_err(ApplyError::Environment)?;
        let file = if spec_path.is_empty() { "paved.yaml" } else { spec_path };
        let spec = paved_spec::parse(spec_yaml, file)?;
        let digest = spec.digest();
        // The cheapest decisive check first: a denied spec records nothing.
        let decision = self.decide(environment, &spec).await?;
        if !decision.allowed() {
            return Err(ApplyError::Denied(decision));
        }
        let warnings = decision.warnings;
        let db = &self.inner.db;
        let _guard = self.inner.apply_lock.lock().await;

        if !request_id.is_empty()
            && let Some(revision) = store::revision_by_request(db, request_id).await?
        {
            let (env, name) = revision.workload();
            let workload = store::get_workload(db, env, name).await?.ok_or_else(|| DbErr::RecordNotFound(revision.workload_id.clone()))?;
            let rollout = store::list_rollouts(db, &workload.id(), 1, 0).await?.into_iter().find(|r| r.revision_id == revision.id);
            return Ok(Applied { workload: self.view(workload).await?, revision, changed: false, rollout, warnings });
        }

        // A new workload's proxy port is taken before the workload is recorded
        // with it, so the recorded endpoint is one we hold.
        let mut listener = None;
        // A driver may move a rollout of this workload while we write (a
        // step, a pause): then nothing is committed and we read again.
        let mut attempt = 0;
        let (mut workload, revision, rollout, superseded) = loop {
            attempt += 1;
            let txn = db.begin().await?;
            let (workload, new) = match store::get_workload(&txn, environment, &spec.name).await? {
                Some(w) => (w, false),
                None => {
                    if listener.is_none() {
                        let proxy =
                            TcpListener::bind(SocketAddr::new(self.inner.options.proxy_host, 0)).await.map_err(ApplyError::Proxy)?;
                        listener = Some(proxy);
                    }
                    let port = listener.as_ref().and_then(|l| l.local_addr().ok()).map_or(0, |a| a.port());
                    (store::insert_workload(&txn, environment, &spec.name, port).await?, true)
                }
            };
            let active = if new { Vec::new() } else { store::active_rollouts(&txn, Some(&workload.id())).await? };
            if let Some(current) = &workload.current_revision
                && let Some(revision) = store::get_revision(&txn, current).await?
                && runs_spec(&revision, &digest)
            {
                txn.commit().await?;
                let rollout = active.into_iter().find(|r| r.revision_id == revision.id);
                return Ok(Applied { workload: self.view(workload).await?, revision, changed: false, rollout, warnings });
            }
            let revision =
                store::insert_revision(&txn, &workload, store::NewRevision { spec_yaml, spec_digest: &digest, spec_path, request_id })
                    .await?;
            // A rollout under way gives way to the newer revision; its canary stops.
            let mut superseded = Vec::new();
            for old in &active {
                let change = store::Change {
                    stage: model::Stage::Done,
                    state: RolloutState::Superseded,
                    weight: 0,
                    ..store::Change::from(old, format!("superseded by revision {}", revision.number))
                };
                if store::update_rollout(&txn, old, change).await?.is_none() {
                    break;
                }
                superseded.push(old.revision_id.clone());
            }
            if superseded.len() < active.len() {
                if attempt < 20 {
                    continue;
                }
                return Err(ApplyError::Database(DbErr::Custom("a rollout of this workload keeps changing; retry".into())));
            }
            let rollout = store::insert_rollout(&txn, &workload, &revision.id, workload.stable_revision.as_deref()).await?;
            txn.commit().await?;
            break (workload, revision, rollout, superseded);
        };
        self.inner.relay.wake();
        self.changed(&workload.id());

        // Committed: the rest runs in a task of its own, so a client that
        // disconnects now cannot leave the rollout recorded but never driven.
        let this = self.clone();
        let started = tokio::spawn({
            let (workload, rollout_id) = (workload.clone(), rollout.id.clone());
            async move {
                if let Some(listener) = listener
                    && let Err(e) = this.open_proxy(&workload, listener)
                {
                    tracing::warn!(workload = %workload.id(), error = %e, "cannot open the new workload's proxy; the rollout retries");
                }
                // Stopped in the background: a stop may wait out a grace
                // period, and the apply lock is held until this task ends.
                let keep = [&workload.stable_revision, &workload.standby_revision];
                let stop: Vec<String> = superseded.into_iter().filter(|id| !keep.iter().any(|k| k.as_ref() == Some(id))).collect();
                let runtime = this.inner.runtime.clone();
                tokio::spawn(async move {
                    for old in stop {
                        runtime.stop(&old).await;
                    }
                });
                this.drive(rollout_id, &workload.id());
            }
        });
        if let Err(e) = started.await {
            tracing::error!(error = %e, "starting a rollout panicked");
        }
        // As committed: no need to read it back.
        workload.current_revision = Some(revision.id.clone());
        let view = self.view_of(workload, Some(revision.state), Some(rollout.id.clone()));
        Ok(Applied { workload: view, revision, changed: true, rollout: Some(rollout), warnings })
    }

    /// What `apply` would change for this spec, and the drift of what runs.
    pub async fn plan(&self, environment: &str, spec_yaml: &str, spec_path: &str) -> Result<Plan, ApplyError> {
        paved_spec::validate_name(environment).map_err(ApplyError::Environment)?;
        let file = if spec_path.is_empty() { "paved.yaml" } else { spec_path };
        let spec = paved_spec::parse(spec_yaml, file)?;
        let decision = self.decide(environment, &spec).await?;
        let db = &self.inner.db;
        let Some(workload) = store::get_workload(db, environment, &spec.name).await? else {
            let changes = paved_spec::diff(None, &spec);
            let reason = format!("no workload {} in {environment}", spec.name);
            return Ok(Plan { action: PlanAction::Create, current_revision: None, changes, drift: Vec::new(), decision, reason });
        };
        let current = match &workload.current_revision {
            Some(id) => store::get_revision(db, id).await?,
            None => None,
        };
        let before = current.as_ref().and_then(|r| paved_spec::parse(&r.spec_yaml, &r.spec_path).ok());
        let changes = paved_spec::diff(before.as_ref(), &spec);
        let digest = spec.digest();
        let action = match &current {
            Some(r) if runs_spec(r, &digest) => PlanAction::None,
            _ => PlanAction::Update,
        };
        let reason = plan_reason(current.as_ref(), &digest);
        let mut drift = Vec::new();
        let rollouts = store::active_rollouts(db, Some(&workload.id())).await?;
        let desired = workload.stable_revision.iter().chain(&workload.standby_revision).chain(rollouts.iter().map(|r| &r.revision_id));
        for id in desired {
            if let Some(r) = store::get_revision(db, id).await?
                && r.state != State::Healthy
            {
                let why = if r.message.is_empty() { String::new() } else { format!(": {}", r.message) };
                drift.push(format!("revision {} should be healthy but is {}{why}", r.number, r.state.as_str()));
            }
        }
        Ok(Plan { action, current_revision: workload.current_revision, changes, drift, decision, reason })
    }

    /// The policy gate's decision on deploying `spec` to `environment`; an
    /// artifact named by digest must exist, and its attestations are input.
    pub async fn decide(&self, environment: &str, spec: &paved_spec::WorkloadSpec) -> Result<paved_policy::Decision, ApplyError> {
        let artifact = match &spec.run {
            paved_spec::Run::Artifact(digest) if digest.starts_with("sha256:") => {
                self.inner.artifacts.policy_input(&self.inner.db, digest).await?
            }
            _ => serde_json::Value::Null,
        };
        let input = serde_json::json!({ "environment": environment, "workload": spec, "artifact": artifact });
        Ok(self.inner.policy.decide(&input)?)
    }

    pub fn artifacts(&self) -> &artifacts::Store {
        &self.inner.artifacts
    }

    pub async fn workload(&self, environment: &str, name: &str) -> Result<Option<WorkloadView>, DbErr> {
        match store::get_workload(&self.inner.db, environment, name).await? {
            Some(w) => Ok(Some(self.view(w).await?)),
            None => Ok(None),
        }
    }

    pub async fn workloads(&self, environment: &str, limit: u64, offset: u64) -> Result<Vec<WorkloadView>, DbErr> {
        let mut out = Vec::new();
        for w in store::list_workloads(&self.inner.db, environment, limit, offset).await? {
            out.push(self.view(w).await?);
        }
        Ok(out)
    }

    async fn view(&self, workload: Workload) -> Result<WorkloadView, DbErr> {
        let state = match &workload.current_revision {
            Some(id) => store::get_revision(&self.inner.db, id).await?.map(|r| r.state),
            None => None,
        };
        let rollout_id = store::list_rollouts(&self.inner.db, &workload.id(), 1, 0).await?.into_iter().next().map(|r| r.id);
        Ok(self.view_of(workload, state, rollout_id))
    }

    fn view_of(&self, workload: Workload, state: Option<State>, rollout_id: Option<String>) -> WorkloadView {
        let endpoint = lock(&self.inner.proxies)
            .get(&workload.id())
            .map_or_else(|| SocketAddr::new(self.inner.options.proxy_host, workload.proxy_port).to_string(), |p| p.addr.to_string());
        WorkloadView { workload, state, endpoint, rollout_id }
    }

    fn launch(&self, revision: &Revision, spec: paved_spec::WorkloadSpec) -> Launch {
        let (environment, workload) = revision.workload();
        // Relative commands and artifacts resolve against the spec's directory
        // when it exists on this machine.
        let workdir = Path::new(&revision.spec_path)
            .parent()
            .filter(|d| d.is_absolute() && d.is_dir())
            .map_or_else(|| self.inner.options.data_dir.clone(), Path::to_path_buf);
        let extra_env = if environment == PLATFORM_ENVIRONMENT { self.inner.options.platform_env.clone() } else { Default::default() };
        // An artifact named by digest runs from the store.
        let mut spec = spec;
        let artifact_digest = match &spec.run {
            paved_spec::Run::Artifact(d) if d.starts_with("sha256:") => d.clone(),
            _ => String::new(),
        };
        if let paved_spec::Run::Artifact(digest) = &spec.run
            && digest.starts_with("sha256:")
            && let Ok(path) = self.inner.artifacts.path(digest)
        {
            spec.run = paved_spec::Run::Artifact(path.display().to_string());
        }
        Launch {
            revision_id: revision.id.clone(),
            workload: workload.to_string(),
            environment: environment.to_string(),
            spec,
            workdir,
            extra_env,
            artifact_digest,
        }
    }

    fn open_proxy(&self, workload: &Workload, listener: TcpListener) -> std::io::Result<()> {
        let proxy = proxy::Proxy::start(workload.id(), listener, &self.inner.shutdown)?;
        if let Some(old) = lock(&self.inner.proxies).insert(workload.id(), proxy) {
            old.close();
        }
        Ok(())
    }

    /// Opens the workload's proxy on its recorded port, or on a new one (and
    /// records it) when that port is taken.
    async fn ensure_proxy(&self, workload: &Workload) -> std::io::Result<()> {
        if lock(&self.inner.proxies).contains_key(&workload.id()) {
            return Ok(());
        }
        let host = self.inner.options.proxy_host;
        let listener = match TcpListener::bind(SocketAddr::new(host, workload.proxy_port)).await {
            Ok(l) => l,
            Err(e) => {
                let l = TcpListener::bind(SocketAddr::new(host, 0)).await?;
                let port = l.local_addr()?.port();
                tracing::warn!(workload = %workload.id(), old = workload.proxy_port, new = port, error = %e, "proxy port taken; moved");
                store::set_proxy_port(&self.inner.db, workload, port).await.map_err(std::io::Error::other)?;
                l
            }
        };
        self.open_proxy(workload, listener)
    }

    /// After a restart: every workload gets its proxy back; the revisions
    /// it routes to (stable, standby, an active rollout's canary) are started
    /// again unless they had failed, and the others that were running are
    /// recorded as stopped; rollouts under way are driven on from their last
    /// committed transition.
    async fn reconcile(&self) -> anyhow::Result<()> {
        let db = &self.inner.db;
        let workloads = store::all_workloads(db).await?;
        let rollouts = store::active_rollouts(db, None).await?;
        let mut keep: HashSet<String> = rollouts.iter().map(|r| r.revision_id.clone()).collect();
        for w in &workloads {
            keep.extend(w.stable_revision.iter().chain(&w.standby_revision).cloned());
        }
        for revision in store::active_revisions(db, None).await? {
            if !keep.contains(&revision.id) {
                self.record_state(&revision.id, State::Stopped, "superseded while the platform was down").await?;
            }
        }
        let by_id: HashMap<String, &Workload> = workloads.iter().map(|w| (w.id(), w)).collect();
        let mut revisions: Vec<Revision> = Vec::new();
        for id in &keep {
            if let Some(revision) = store::get_revision(db, id).await? {
                revisions.push(revision);
            }
        }
        revisions.sort_by_key(|r| r.create_time_ms);
        for revision in revisions {
            let Some(workload) = by_id.get(&revision.workload_id) else { continue };
            if revision.state == State::Failed {
                continue;
            }
            // One workload that cannot come back must not keep the others down.
            let restart = async {
                self.ensure_proxy(workload).await.map_err(|e| format!("cannot open the workload's proxy: {e}"))?;
                paved_spec::parse(&revision.spec_yaml, &revision.spec_path).map_err(|e| format!("stored spec no longer valid: {e}"))
            };
            match restart.await {
                Ok(spec) => {
                    tracing::info!(workload = %workload.id(), revision = revision.number, "restarting revision");
                    // After a crash the record may still say healthy: it is
                    // not, until the new process passes its health check.
                    self.record_state(&revision.id, State::Starting, "platform restarted").await?;
                    self.inner.runtime.start(self.launch(&revision, spec));
                }
                Err(message) => {
                    tracing::error!(workload = %workload.id(), revision = revision.number, %message, "cannot restart revision");
                    self.record_state(&revision.id, State::Failed, &message).await?;
                }
            }
        }
        for rollout in rollouts {
            tracing::info!(rollout = %rollout.id, workload = %rollout.workload_id, stage = rollout.stage.as_str(), "resuming rollout");
            self.drive(rollout.id, &rollout.workload_id);
        }
        Ok(())
    }

    /// Every few seconds: a revision that should run (a workload's stable or
    /// standby revision, an active rollout's canary) but has no supervisor
    /// is started again. The runtime restarts processes that die or hang;
    /// this catches what falls outside it.
    async fn correct_drift(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(DRIFT_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            if let Err(e) = self.correct_drift_once().await {
                tracing::warn!(error = %e, "drift check failed; retrying at the next tick");
            }
            if let Err(e) = self.expire_previews().await {
                tracing::warn!(error = %e, "closing expired previews failed; retrying at the next tick");
            }
        }
    }

    async fn correct_drift_once(&self) -> Result<(), DbErr> {
        let db = &self.inner.db;
        let mut desired: Vec<String> = store::active_rollouts(db, None).await?.into_iter().map(|r| r.revision_id).collect();
        let workloads = store::all_workloads(db).await?;
        for w in &workloads {
            desired.extend(w.stable_revision.iter().chain(&w.standby_revision).cloned());
        }
        for id in desired {
            if self.inner.runtime.is_running(&id) || self.inner.shutdown.is_cancelled() {
                continue;
            }
            let Some(revision) = store::get_revision(db, &id).await? else { continue };
            if revision.state == State::Failed {
                continue;
            }
            let Ok(spec) = paved_spec::parse(&revision.spec_yaml, &revision.spec_path) else { continue };
            let Some(workload) = workloads.iter().find(|w| w.id() == revision.workload_id) else { continue };
            tracing::warn!(workload = %revision.workload_id, revision = revision.number, "drift: revision should run but does not; starting it");
            if self.ensure_proxy(workload).await.is_ok() {
                self.record_state(&id, State::Starting, "drift corrected: it was not running").await?;
                self.inner.runtime.start(self.launch(&revision, spec));
            }
        }
        Ok(())
    }

    /// Records a state (with its event); returns the revision as recorded.
    async fn record_state(&self, revision_id: &str, state: State, message: &str) -> Result<Option<Revision>, DbErr> {
        let txn = self.inner.db.begin().await?;
        let revision = store::set_state(&txn, revision_id, state, message).await?;
        txn.commit().await?;
        self.inner.relay.wake();
        Ok(revision)
    }

    async fn report_loop(self, mut reports: mpsc::UnboundedReceiver<Report>, drained: CancellationToken) {
        loop {
            tokio::select! {
                report = reports.recv() => match report {
                    Some(report) => self.record(report).await,
                    None => return,
                },
                _ = drained.cancelled() => {
                    while let Ok(report) = reports.try_recv() {
                        self.record(report).await;
                    }
                    return;
                }
            }
        }
    }

    /// Routes the proxy to what the runtime reports, then persists the
    /// report (retrying while the database is down: a state change must not
    /// be lost). In that order: once a state is visible through the API,
    /// the proxy already agrees with it.
    async fn record(&self, report: Report) {
        if matches!(report.state, State::Stopped | State::Failed) {
            lock(&self.inner.backends).remove(&report.revision_id);
        } else {
            lock(&self.inner.backends).insert(report.revision_id.clone(), report.backends.clone());
        }
        let routed = self.route(&report.workload_id).await;
        if report.revision_id.ends_with(BASELINE) {
            if let Err(e) = routed {
                tracing::warn!(workload = %report.workload_id, error = %e, "cannot route the workload's proxy");
            }
            self.changed(&report.workload_id);
            return;
        }
        let mut backoff = Backoff::default();
        let healthy = self.inner.health.reporter(GRPC_NAME, "database");
        let revision = loop {
            match self.record_state(&report.revision_id, report.state, &report.message).await {
                Ok(r) => {
                    healthy(true);
                    break r;
                }
                Err(e) => {
                    healthy(false);
                    tracing::warn!(revision = %report.revision_id, error = %e, "cannot record revision state; retrying");
                    tokio::select! {
                        _ = backoff.wait() => {}
                        // Shutting down with the database away: the next start
                        // reconciles from what was recorded.
                        _ = self.inner.shutdown.cancelled() => {
                            tracing::error!(revision = %report.revision_id, state = report.state.as_str(), "database unreachable at shutdown; state not recorded");
                            return;
                        }
                    }
                }
            }
        };
        let Some(revision) = revision else {
            // Gone from the records (its preview closed): nothing to route to.
            lock(&self.inner.backends).remove(&report.revision_id);
            return;
        };
        tracing::info!(workload = %revision.workload_id, revision = revision.number, state = report.state.as_str(), message = %report.message, "revision state");
        // Routing read the database too: when that failed, try again now.
        if routed.is_err()
            && let Err(e) = self.route(&revision.workload_id).await
        {
            tracing::warn!(workload = %revision.workload_id, error = %e, "cannot route the workload's proxy");
        }
        self.changed(&revision.workload_id);
    }

    /// Wakes the workload's rollout drivers and watchers.
    fn changed(&self, workload_id: &str) {
        self.inner.changes.notify(workload_id);
    }

    /// Routes a workload's proxy from its persisted routing. One routing
    /// of a workload at a time: two that interleaved (one reading before a
    /// promotion commits and setting after the other) would leave the
    /// older reading in place.
    async fn route(&self, workload_id: &str) -> Result<(), DbErr> {
        let _routing = self.routing(workload_id).await;
        let (environment, name) = workload_id.split_once('/').unwrap_or(("", workload_id));
        let Some(workload) = store::get_workload(&self.inner.db, environment, name).await? else { return Ok(()) };
        let active = store::active_rollouts(&self.inner.db, Some(workload_id)).await?.pop();
        self.route_to(workload_id, active.as_ref(), workload.stable_revision.as_deref());
        Ok(())
    }

    /// Routes a workload's proxy after its rollout ended, from the stable
    /// revision its caller has just committed, without reading it back (see
    /// `route` for the lock).
    async fn route_committed(&self, workload_id: &str, stable: Option<&str>) {
        let _routing = self.routing(workload_id).await;
        self.route_to(workload_id, None, stable);
    }

    async fn routing(&self, workload_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let one = lock(&self.inner.routing).entry(workload_id.to_string()).or_default().clone();
        one.lock_owned().await
    }

    /// Routes a workload's proxy: to its stable revision and, while a
    /// rollout is under way, its canary at the rollout's weight (all
    /// traffic, for a workload's first revision).
    fn route_to(&self, workload_id: &str, active: Option<&Rollout>, stable: Option<&str>) {
        let backends = lock(&self.inner.backends);
        let mut shares: Vec<(String, u32)> = Vec::new();
        match (active, stable) {
            (Some(r), Some(stable)) => {
                let canary = r.weight.min(100);
                // The baseline's share comes out of the stable revision's,
                // once it has instances (at more than half, what is left).
                let baseline = baseline_key(stable);
                let ready = backends.get(&baseline).is_some_and(|addrs| !addrs.is_empty());
                let same = if r.stage == model::Stage::Step && ready { canary.min(100 - canary) } else { 0 };
                shares.push((stable.to_string(), 100 - canary - same));
                shares.push((r.revision_id.clone(), canary));
                if same > 0 {
                    shares.push((baseline, same));
                }
            }
            (Some(r), None) => shares.push((r.revision_id.clone(), 100)),
            (None, Some(stable)) => shares.push((stable.to_string(), 100)),
            (None, None) => {}
        }
        let routes: Vec<proxy::Route> = shares
            .into_iter()
            .map(|(revision, weight)| proxy::Route { addrs: backends.get(&revision).cloned().unwrap_or_default(), revision, weight })
            .collect();
        drop(backends);
        if let Some(proxy) = lock(&self.inner.proxies).get(workload_id) {
            proxy.set_routes(routes);
        }
    }
}
