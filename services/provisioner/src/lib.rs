//! The provisioner: owns workloads and their revisions, and runs them through
//! a runtime driver (the local one, `paved-local`: real processes behind a
//! proxy per workload).
//!
//! # Layout
//! - [`migration`], `schema`, [`model`], [`store`] — the schema (its
//!   migrations, and its tables and columns as identifiers for queries), the
//!   domain types and the queries; every state change enqueues its event in
//!   the same transaction.
//! - `records` — what every writer shares: the database, the outbox relay,
//!   each workload's change channel, the apply lock.
//! - `apply` — applying and planning a spec ([`Submitted`], parsed once at the
//!   edge), behind the policy gate (`policy`); the workload views.
//! - `runner` — revisions started and stopped on the local runtime (a
//!   revision's record and parsed spec as a launch); `reports` records what
//!   the runtime reports, the only writer of revision states.
//! - `routing` — each workload's proxy, routed from the persisted routing
//!   (stable, the active rollout's canary and weight, its baseline); the
//!   proxies live in the data plane's host, which `dataplane` starts and
//!   commands, so that they outlive a provisioner that restarts.
//! - [`rollout`] — the rollout state machine: its driver, the two ends of a
//!   rollout, and the operations on it (pause, resume, abort, promote,
//!   rollback).
//! - `reconcile` — what runs brought back in line with the records: after a
//!   restart, and every few seconds for drift.
//! - [`preview`] — preview environments `pr-<n>`: open with a time to live,
//!   close (destroying everything they created), expire.
//! - [`artifacts`] — the content-addressed artifact store and its signed
//!   attestations, which the policy gate reads.
//! - `exporter` — each replica's usage as Prometheus metrics.
//! - `bootstrap` — secret zero: a bootstrap token from the broker for every
//!   process the runtime starts, bound to the executable's digest and
//!   exchanged at once; `delivery` — the spec's secrets read with that
//!   identity (env, files) and their rotations watched.
//! - `handle` — [`Provisioner`], the handle the API and the CLI hold;
//!   [`api`] — `paved.provisioner.v1.ProvisionerService`, on the handle.
//! - `lib.rs` — the configuration, [`run`], and `Provisioner::start`: the
//!   wiring of the parts above, which mounts [`api`].
//!
//! Each part is a type holding only the shared parts it uses, and the
//! modules form no cycle: `records`, `routing`, `runner` and `policy` at the
//! bottom, then [`rollout`], then `apply`, `reconcile`, `reports` and
//! [`preview`]; only `handle`, the wiring in this file and the API above
//! them see them all.

pub mod api;
mod apply;
pub mod artifacts;
mod bootstrap;
mod dataplane;
mod delivery;
mod exporter;
mod handle;
pub mod migration;
pub mod model;
mod policy;
pub mod power;
pub mod preview;
mod reconcile;
mod records;
mod removal;
mod reports;
pub mod rollout;
mod routing;
mod runner;
mod schema;
mod spec_message;
pub mod store;
mod sync;

pub use apply::{Applied, ApplyError, Plan, PlanAction, Submitted, WorkloadView};
pub use handle::{InstanceUsage, Provisioner};
pub use model::baseline_key;
pub use policy::Cost;
pub use routing::TrafficMetrics;

use apply::Applier;
use paved_grpc::{Component, Health};
use paved_local::LocalRuntime;
use paved_stream::{SharedStream, outbox::Relay};
use policy::Gate;
use preview::Previews;
use reconcile::Reconciler;
use records::Records;
use removal::Removal;
use reports::Reports;
use rollout::{Driver, Rollouts, Transitions};
use routing::Routing;
use runner::Runner;
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_util::sync::CancellationToken;

pub const SERVICE: &str = "provisioner";
pub const GRPC_NAME: &str = "paved.provisioner.v1.ProvisionerService";

/// The environment of the platform's own services (self-hosted mode).
pub const PLATFORM_ENVIRONMENT: &str = paved_grpc::tls::PLATFORM_ENVIRONMENT;

/// What the provisioner's own calls need of the others: a bootstrap token
/// for each process it starts (the broker), looks to the analyzer, and
/// cost forecasts (the cost scheduler).
pub const CALL_SCOPES: [&str; 4] = ["write:secrets-broker", "bootstrap:issue:*", "write:canary-analyzer", "read:cost-scheduler"];

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
    /// The cost scheduler asked what a spec costs a month and what its
    /// team's budget says (`PAVED_COST_SCHEDULER_URL`), for `paved plan`
    /// and the policy gate's `input.cost`. Without one, budgets are not
    /// checked.
    #[serde(default)]
    pub cost_scheduler_url: Option<String>,
    /// A file holding the token the provisioner presents on its calls (to
    /// the broker for bootstrap tokens, `bootstrap:issue:*`; to the
    /// analyzer, `write:canary-analyzer`), read again every minute so it
    /// can be replaced before it expires. With mTLS it needs none: its
    /// calls present tokens exchanged for its certificate.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The operator's default schedules by environment
    /// (`PAVED_SCHEDULE_DEFAULTS`, YAML; see `docs/cost.md`): what a
    /// workload whose spec has no `schedule` runs by. The cost scheduler
    /// reads the same file.
    #[serde(default)]
    pub schedule_defaults: Option<PathBuf>,
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
    /// How long the data plane (the workloads and their proxies) keeps
    /// serving when no provisioner is attached to it, in seconds: a
    /// provisioner started again within it adopts everything; after it, the
    /// data plane stops the workloads and itself. Unset, it serves until it
    /// is stopped itself (production); `paved up` sets 10 s.
    #[serde(default)]
    pub data_plane_grace_seconds: Option<u64>,
    /// Whether the workloads and their proxies serve on when this
    /// provisioner stops (SIGTERM: a restart, an upgrade), for the next one
    /// to adopt (production); otherwise its stop stops them (`paved up`).
    #[serde(default = "keep")]
    pub keep_data_plane: bool,
}

fn keep() -> bool {
    true
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(".paved/provisioner")
}

fn default_proxy_host() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// Default port in production mode.
pub const PORT: u16 = 7401;

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

/// What each handler checks beyond the layer's rule, by method, in words for
/// `docs/scopes.md` (the table a test generates and compares).
pub const HANDLER_SCOPES: &[(&str, &str)] = &[
    ("ApplyWorkload", "`deploy:<env>/<workload>`"),
    ("PauseRollout", "`deploy:<env>/<workload>` of the rollout's workload"),
    ("ResumeRollout", "`deploy:<env>/<workload>` of the rollout's workload"),
    ("AbortRollout", "`deploy:<env>/<workload>` of the rollout's workload"),
    ("PromoteRollout", "`deploy:<env>/<workload>` of the rollout's workload"),
    ("RollbackWorkload", "`deploy:<env>/<workload>`"),
    ("DeleteWorkload", "`deploy:<env>/<workload>`"),
    ("SleepWorkload", "`deploy:<env>/<workload>`"),
    ("WakeWorkload", "`deploy:<env>/<workload>`"),
    ("OpenPreview", "`deploy:pr-<n>/<workload>`"),
    ("ClosePreview", "`deploy:pr-<n>/*`"),
];

// The handle itself is in `handle`, which `api` imports; its wiring is here,
// beside `run`, because it builds every part and mounts `api::server`.
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
            runtime = runtime.with_bootstrap(bootstrap::bootstrapper(url, &options.credentials, options.tls.as_ref())?);
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
                    paved_grpc::tls::connect_service(url, options.tls.as_ref(), "canary-analyzer", std::time::Duration::from_secs(10))
                        .map_err(|e| anyhow::anyhow!("analyzer_url: {e}"))?;
                Some(rollout::Analyzer::new(options.credentials.on(channel)))
            }
            None => {
                tracing::warn!("no canary analyzer configured (analyzer_url): rollout steps are gated on health and limits alone");
                None
            }
        };
        let costs = match &options.cost_scheduler_url {
            Some(url) => {
                let channel =
                    paved_grpc::tls::connect_service(url, options.tls.as_ref(), "cost-scheduler", std::time::Duration::from_secs(5))
                        .map_err(|e| anyhow::anyhow!("cost_scheduler_url: {e}"))?;
                Some(policy::Costs::new(options.credentials.on(channel)))
            }
            None => {
                tracing::warn!("no cost scheduler configured (cost_scheduler_url): plans show no cost, budgets are not checked");
                None
            }
        };
        let artifacts = Arc::new(artifacts);
        let schedules = paved_spec::ScheduleDefaults::load(options.schedule_defaults.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
        let records = Arc::new(Records::new(db.clone(), relay.clone(), schedules));
        let grace = options.data_plane_grace_seconds.map(std::time::Duration::from_secs);
        let keep_data_plane = options.keep_data_plane;
        let (plane, adopted) = dataplane::Dataplane::connect(&options.bin_dirs, &options.data_dir, grace).await?;
        let routing = Arc::new(Routing::new(db.clone(), options.proxy_host, plane, adopted));
        // The proxies' request counts are the host's: served on this `/metrics`.
        let metrics_source = paved_telemetry::register_source({
            let routing = Arc::downgrade(&routing);
            Arc::new(move || {
                let routing = routing.clone();
                Box::pin(async move { routing.upgrade()?.metrics().await })
            })
        });
        let runner = Arc::new(Runner::new(runtime, options.data_dir, options.platform_env, artifacts.clone()));
        let gate = Arc::new(Gate::new(policy, artifacts.clone(), db, costs));
        let transitions = Arc::new(Transitions::new(records.clone(), routing.clone(), runner.clone()));
        let driver = Arc::new(Driver::new(
            records.clone(),
            routing.clone(),
            runner.clone(),
            gate.clone(),
            transitions.clone(),
            analyzer,
            shutdown.clone(),
        ));
        let applier = Arc::new(Applier::new(records.clone(), routing.clone(), runner.clone(), gate.clone(), driver.clone()));
        let rollouts = Arc::new(Rollouts::new(records.clone(), routing.clone(), runner.clone(), transitions));
        let removal = Arc::new(Removal::new(records.clone(), routing.clone(), runner.clone(), driver.clone()));
        let previews = Arc::new(Previews::new(records.clone(), applier.clone(), gate.clone(), removal.clone()));
        let power = power::Power::new(records.clone(), routing.clone(), runner.clone());
        let reconciler =
            Arc::new(Reconciler::new(records.clone(), routing.clone(), runner.clone(), driver, power.clone(), shutdown.clone()));
        let reports = Reports::new(records.clone(), routing.clone(), health.reporter(GRPC_NAME, "database"), shutdown.clone());
        let provisioner = Self {
            records,
            artifacts,
            routing: routing.clone(),
            applier,
            rollouts,
            previews: previews.clone(),
            removal,
            power,
            runner: runner.clone(),
        };
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(relay.run(health.reporter(GRPC_NAME, "outbox"), shutdown.clone()));
        // Started once reconciled: the wakes it delivers find the sleeping
        // workloads' wake hooks in place.
        let watch = routing.clone().watch(shutdown.clone());
        // On shutdown: stop every workload, then let the report loop record
        // the last reports and end. With a data plane that serves on without
        // a provisioner (production), nothing is stopped: the workloads and
        // their proxies run on for the next provisioner (a restart, an
        // upgrade) to adopt.
        let drained = CancellationToken::new();
        tasks.spawn({
            let (shutdown, drained) = (shutdown.clone(), drained.clone());
            async move {
                shutdown.cancelled().await;
                if !keep_data_plane {
                    runner.stop_all().await;
                    drained.cancel();
                    routing.shut_down().await;
                } else {
                    runner.detach_all().await;
                    drained.cancel();
                    tracing::info!("stopped; the workloads and their proxies serve on for the next provisioner");
                }
                drop(metrics_source);
            }
        });
        tasks.spawn(reports.run(rx, drained));
        reconciler.reconcile().await?;
        tasks.spawn(watch);
        tasks.spawn(housekeeping(reconciler, previews, shutdown.clone()));
        tasks.spawn(exporter::run(provisioner.clone(), exporter::EVERY, shutdown.clone()));
        let api = api::server(provisioner.clone());
        let component =
            Component { name: GRPC_NAME, mount: Box::new(move |r| r.add_service(api)), tasks, open_methods: &[], token_only_methods: &[] };
        Ok((provisioner, component))
    }
}

/// Every few seconds: a revision that should run (a workload's stable or
/// standby revision, an active rollout's canary) but has no supervisor is
/// started again — the runtime restarts processes that die or hang; this
/// catches what falls outside it — and expired previews are closed.
async fn housekeeping(reconciler: Arc<Reconciler>, previews: Arc<Previews>, shutdown: CancellationToken) {
    let mut ticks = paved_service::Ticks::new(reconcile::DRIFT_CHECK, shutdown);
    while ticks.next().await {
        if let Err(e) = reconciler.correct_drift_once().await {
            tracing::warn!(error = %e, "drift check failed; retrying at the next tick");
        }
        if let Err(e) = previews.expire().await {
            tracing::warn!(error = %e, "closing expired previews failed; retrying at the next tick");
        }
    }
}
