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
//!   routes proxies to the serving revision, and reconciles after a restart.
//! - [`api`] — `paved.provisioner.v1.ProvisionerService`.

pub mod api;
pub mod migration;
pub mod model;
pub mod proxy;
pub mod runtime;
pub mod store;

use model::{Revision, State, Workload};
use paved_grpc::{Component, Health};
use paved_stream::{SharedStream, consumer::Backoff, outbox::Relay};
use runtime::{Launch, LocalRuntime, Report};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use serde::Deserialize;
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_util::sync::CancellationToken;

pub const SERVICE: &str = "provisioner";
pub const GRPC_NAME: &str = "paved.provisioner.v1.ProvisionerService";

/// The environment of the platform's own services (self-hosted mode).
pub const PLATFORM_ENVIRONMENT: &str = "platform";

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
    let token = shutdown.clone();
    paved_service::serve_standalone(&config.common, listener, shutdown, move |stream, health| async move {
        Ok(Provisioner::start(db, stream, config.options, &health, token).await?.1)
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
}

/// The result of an apply.
#[derive(Debug, Clone)]
pub struct Applied {
    pub workload: WorkloadView,
    pub revision: Revision,
    pub changed: bool,
}

/// A workload with its current revision's state and its endpoint.
#[derive(Debug, Clone)]
pub struct WorkloadView {
    pub workload: Workload,
    pub state: Option<State>,
    pub endpoint: String,
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
    /// workload id → the revision its proxy routes to
    serving: Mutex<HashMap<String, String>>,
    /// Applies are serialised: revision numbers are allocated max+1.
    apply_lock: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
    health: Health,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
        let runtime = Arc::new(LocalRuntime::new(options.bin_dirs.clone(), log_dir, tx));
        let relay = Relay::new(db.clone(), stream);
        let provisioner = Self {
            inner: Arc::new(Inner {
                db,
                relay: relay.clone(),
                runtime: runtime.clone(),
                options,
                proxies: Mutex::new(HashMap::new()),
                serving: Mutex::new(HashMap::new()),
                apply_lock: tokio::sync::Mutex::new(()),
                shutdown: shutdown.clone(),
                health: health.clone(),
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
        let api = api::server(provisioner.clone());
        let component = Component { name: GRPC_NAME, mount: Box::new(move |r| r.add_service(api)), tasks };
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
        let db = &self.inner.db;
        let _guard = self.inner.apply_lock.lock().await;

        if !request_id.is_empty()
            && let Some(revision) = store::revision_by_request(db, request_id).await?
        {
            let (env, name) = revision.workload();
            let workload = store::get_workload(db, env, name).await?.ok_or_else(|| DbErr::RecordNotFound(revision.workload_id.clone()))?;
            return Ok(Applied { workload: self.view(workload).await?, revision, changed: false });
        }

        let existing = store::get_workload(db, environment, &spec.name).await?;
        // A new workload's proxy port is taken before the workload is recorded
        // with it, so the recorded endpoint is one we hold.
        let listener = match existing {
            Some(_) => None,
            None => Some(TcpListener::bind(SocketAddr::new(self.inner.options.proxy_host, 0)).await.map_err(ApplyError::Proxy)?),
        };
        let txn = db.begin().await?;
        let workload = match existing {
            Some(w) => w,
            None => {
                let port = listener.as_ref().and_then(|l| l.local_addr().ok()).map_or(0, |a| a.port());
                store::insert_workload(&txn, environment, &spec.name, port).await?
            }
        };
        if let Some(current) = &workload.current_revision
            && let Some(revision) = store::get_revision(&txn, current).await?
            && revision.spec_digest == digest
            // Relative commands resolve against the spec's directory.
            && revision.spec_path == spec_path
            && !matches!(revision.state, State::Failed | State::Stopped)
        {
            txn.commit().await?;
            return Ok(Applied { workload: self.view(workload).await?, revision, changed: false });
        }
        let revision =
            store::insert_revision(&txn, &workload, store::NewRevision { spec_yaml, spec_digest: &digest, spec_path, request_id }).await?;
        txn.commit().await?;
        self.inner.relay.wake();

        // The revision is committed: start it in a task of its own, so a
        // client that disconnects now cannot leave it recorded but never run.
        let launch = self.launch(&revision, spec);
        let this = self.clone();
        let started = tokio::spawn({
            let workload = workload.clone();
            async move {
                let proxy = match listener {
                    Some(listener) => this.open_proxy(&workload, listener),
                    None => this.ensure_proxy(&workload).await,
                };
                match proxy {
                    Ok(()) => this.inner.runtime.start(launch),
                    Err(e) => {
                        let message = format!("cannot open the workload's proxy: {e}");
                        if let Err(e) = this.record_state(&launch.revision_id, State::Failed, &message).await {
                            tracing::error!(revision = %launch.revision_id, error = %e, "cannot record a failed start");
                        }
                    }
                }
            }
        });
        if let Err(e) = started.await {
            tracing::error!(error = %e, "starting a revision panicked");
        }
        let workload = store::get_workload(db, environment, &workload.name).await?.unwrap_or(workload);
        Ok(Applied { workload: self.view(workload).await?, revision, changed: true })
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
        let endpoint = lock(&self.inner.proxies)
            .get(&workload.id())
            .map_or_else(|| SocketAddr::new(self.inner.options.proxy_host, workload.proxy_port).to_string(), |p| p.addr.to_string());
        Ok(WorkloadView { workload, state, endpoint })
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
        Launch {
            revision_id: revision.id.clone(),
            workload: workload.to_string(),
            environment: environment.to_string(),
            spec,
            workdir,
            extra_env,
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

    /// After a restart: revisions that were running but are no longer
    /// current are recorded as stopped; every workload gets its proxy back
    /// and its current revision started again, unless it had failed.
    async fn reconcile(&self) -> anyhow::Result<()> {
        let db = &self.inner.db;
        let workloads = store::all_workloads(db).await?;
        let current: std::collections::HashSet<String> = workloads.iter().filter_map(|w| w.current_revision.clone()).collect();
        for revision in store::active_revisions(db).await? {
            if !current.contains(&revision.id) {
                self.record_state(&revision.id, State::Stopped, "superseded while the platform was down").await?;
            }
        }
        for workload in workloads {
            let Some(id) = &workload.current_revision else { continue };
            let Some(revision) = store::get_revision(db, id).await? else { continue };
            if revision.state == State::Failed {
                continue;
            }
            // One workload that cannot come back must not keep the others down.
            let restart = async {
                self.ensure_proxy(&workload).await.map_err(|e| format!("cannot open the workload's proxy: {e}"))?;
                paved_spec::parse(&revision.spec_yaml, &revision.spec_path).map_err(|e| format!("stored spec no longer valid: {e}"))
            };
            match restart.await {
                Ok(spec) => {
                    tracing::info!(workload = %workload.id(), revision = revision.number, "restarting workload");
                    // After a crash the record may still say healthy: it is
                    // not, until the new process passes its health check.
                    self.record_state(&revision.id, State::Starting, "platform restarted").await?;
                    self.inner.runtime.start(self.launch(&revision, spec));
                }
                Err(message) => {
                    tracing::error!(workload = %workload.id(), revision = revision.number, %message, "cannot restart workload");
                    self.record_state(&revision.id, State::Failed, &message).await?;
                }
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

    /// Persists a runtime report (retrying while the database is down: a
    /// state change must not be lost) and routes the proxy.
    async fn record(&self, report: Report) {
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
        let Some(revision) = revision else { return };
        tracing::info!(workload = %revision.workload_id, revision = revision.number, state = report.state.as_str(), message = %report.message, "revision state");
        let (environment, name) = revision.workload();
        let Ok(Some(workload)) = store::get_workload(&self.inner.db, environment, name).await else {
            return;
        };
        let wid = workload.id();
        let is_current = workload.current_revision.as_deref() == Some(revision.id.as_str());
        let is_serving = lock(&self.inner.serving).get(&wid) == Some(&revision.id);
        if report.state == State::Healthy && is_current && !is_serving {
            // The new revision takes the traffic; the others are stopped.
            lock(&self.inner.serving).insert(wid.clone(), revision.id.clone());
            self.route(&wid, &revision.id, report.backends);
            if let Ok(active) = store::active_revisions(&self.inner.db).await {
                for old in active.into_iter().filter(|r| r.workload_id == wid && r.id != revision.id) {
                    let runtime = self.inner.runtime.clone();
                    tokio::spawn(async move { runtime.stop(&old.id).await });
                }
            }
        } else if is_serving || (is_current && lock(&self.inner.serving).get(&wid).is_none()) {
            self.route(&wid, &revision.id, report.backends);
        }
    }

    /// All of a workload's traffic to one revision's healthy instances.
    fn route(&self, workload_id: &str, revision_id: &str, backends: Vec<SocketAddr>) {
        if let Some(proxy) = lock(&self.inner.proxies).get(workload_id) {
            proxy.set_routes(vec![proxy::Route { revision: revision_id.to_string(), weight: 100, addrs: backends }]);
        }
    }
}
