//! The cost scheduler: it puts workloads to sleep and wakes them by their
//! spec's schedule and idleness (the provisioner acts), and attributes cost
//! to teams, environments and workloads: running time from the
//! provisioner's events, usage sampled from its runtime, prices from a
//! price sheet; forecasts a spec's month for plans and the policy gate,
//! watches teams' budgets, and recommends requests from measured use.
//!
//! # Layout
//! - `decide` — when a workload should sleep or wake (pure).
//! - `schedules` — the loop that asks the provisioner and commands it.
//! - `sample` — the loop that reads what each replica uses, as samples.
//! - [`record`] — the consumer-group handler: running and sleep intervals.
//! - [`prices`] — the price sheet.
//! - [`forecast`] — a spec's month; [`budgets`]; [`rightsize`] —
//!   requests recommended from use (pure); [`promusage`] — that use read
//!   from Prometheus instead of the samples.
//! - `attribute` — cost by team, environment or workload (pure);
//!   `report` reads what it needs from the database.
//! - [`migration`] — the tables (and the inbox that makes the handler
//!   idempotent); `schema` names them and their columns for queries.
//! - [`api`] — `paved.cost_scheduler.v1.CostSchedulerService`.

pub mod api;
pub mod attribute;
pub mod budgets;
pub mod decide;
pub mod forecast;
mod metrics;
pub mod migration;
pub mod prices;
pub mod promusage;
pub mod record;
pub mod report;
pub mod rightsize;
pub mod sample;
pub mod schedules;
mod schema;

use paved_proto::provisioner::v1::provisioner_service_client::ProvisionerServiceClient;
use paved_stream::consumer::Handler;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

pub use budgets::SOURCE;

/// The service, as the shell in `paved-service` runs it.
pub struct CostScheduler;

impl paved_service::ConsumerService for CostScheduler {
    const NAME: &'static str = "cost-scheduler";
    const GRPC_NAME: &'static str = "paved.cost_scheduler.v1.CostSchedulerService";
    const PORT: u16 = 7404;
    /// Revision state changes come from the provisioner.
    const READS: &'static [&'static str] = &["provisioner"];
    type Migrator = migration::Migrator;
    type Options = Options;
    /// Sleeps and wakes are commands to the provisioner.
    const CALLS: bool = true;
    /// Budgets crossed.
    const PUBLISHES: bool = true;

    fn parts(
        db: DatabaseConnection,
        relay: paved_stream::outbox::Relay,
        options: Options,
        background: &mut paved_service::Background,
    ) -> anyhow::Result<(paved_service::Mount, Arc<dyn Handler>)> {
        let sheet = match &options.price_sheet {
            Some(path) => prices::PriceSheet::load(path)?,
            None => prices::PriceSheet::default(),
        };
        let defaults = paved_spec::ScheduleDefaults::load(options.schedule_defaults.as_deref()).map_err(|e| anyhow::anyhow!(e))?;
        let every = options.sample_seconds.map_or(sample::EVERY, |s| std::time::Duration::from_secs(s.max(1)));
        let running = forecast::Running::default();
        match &options.provisioner_url {
            Some(url) => {
                let channel = paved_grpc::tls::connect_service(url, background.tls(), "provisioner", std::time::Duration::from_secs(10))
                    .map_err(|e| anyhow::anyhow!("provisioner_url: {e}"))?;
                let bearer = background.calls().cloned().unwrap_or_default();
                if let Some(file) = options.token_file.clone() {
                    let bearer = bearer.clone();
                    background.spawn(move |shutdown| paved_service::reload_token(file, bearer, shutdown));
                }
                let client = ProvisionerServiceClient::new(bearer.on(channel));
                let scheduler = schedules::Scheduler::new(client.clone(), running.clone(), sheet.clone(), defaults.clone());
                background.spawn(move |shutdown| scheduler.run(schedules::PASS, shutdown));
                let sampler = sample::Sampler::new(client, db.clone());
                background.spawn(move |shutdown| sampler.run(every, shutdown));
            }
            None => tracing::warn!("no provisioner configured (provisioner_url): schedules are not acted on, usage is not sampled"),
        }
        let watch = metrics::Watch { db: db.clone(), sheet: sheet.clone(), running: running.clone(), relay: relay.clone() };
        background.spawn(move |shutdown| metrics::run(watch, every, shutdown));
        let prometheus = options
            .prometheus_url
            .as_deref()
            .map(|url| promusage::PromUsage::new(url, options.usage_cpu_query.clone(), options.usage_memory_query.clone(), every));
        let api = api::server(api::Parts { db: db.clone(), sheet, schedules: defaults, running, prometheus });
        Ok((Box::new(move |r| r.add_service(api)), Arc::new(record::Recorder { db })))
    }
}

/// What a cost scheduler calls on the provisioner: read workloads and
/// their revisions, and sleep or wake any of them.
pub const CALL_SCOPES: [&str; 3] = ["read:provisioner", "write:provisioner", "deploy:*"];

/// The cost scheduler's own settings.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Options {
    /// The provisioner it commands (`PAVED_PROVISIONER_URL`); without one,
    /// schedules are not acted on.
    #[serde(default)]
    pub provisioner_url: Option<String>,
    /// A file holding the token its calls present, reread when it changes
    /// (`PAVED_TOKEN_FILE`); with mTLS, its identity's token is used instead.
    #[serde(default)]
    pub token_file: Option<std::path::PathBuf>,
    /// The price sheet (`PAVED_PRICE_SHEET`, YAML; see [`prices`]); without
    /// one, OpenCost's default prices.
    #[serde(default)]
    pub price_sheet: Option<std::path::PathBuf>,
    /// How often each replica's usage is read (`PAVED_SAMPLE_SECONDS`,
    /// default 15).
    #[serde(default)]
    pub sample_seconds: Option<u64>,
    /// The operator's default schedules by environment
    /// (`PAVED_SCHEDULE_DEFAULTS`, YAML; see `docs/cost.md`), the file the
    /// provisioner reads too.
    #[serde(default)]
    pub schedule_defaults: Option<std::path::PathBuf>,
    /// Prometheus, for right-sizing from its series (`PAVED_PROMETHEUS_URL`,
    /// e.g. `http://127.0.0.1:9090`); without one, from the samples.
    #[serde(default)]
    pub prometheus_url: Option<String>,
    /// The PromQL of each replica's cores (`PAVED_USAGE_CPU_QUERY`; default
    /// [`promusage::DEFAULT_CPU_QUERY`]) and of its resident bytes
    /// (`PAVED_USAGE_MEMORY_QUERY`), with `$ENVIRONMENT`, `$WORKLOAD` and
    /// `$RANGE` substituted.
    #[serde(default)]
    pub usage_cpu_query: Option<String>,
    #[serde(default)]
    pub usage_memory_query: Option<String>,
}
