//! The cost scheduler: it puts workloads to sleep and wakes them by their
//! spec's schedule and idleness (the provisioner acts), and attributes
//! running time to workloads: the time each revision spent healthy, from the
//! provisioner's state-change events. Budgets and right-sizing are to come.
//!
//! # Layout
//! - `decide` — when a workload should sleep or wake (pure).
//! - `schedules` — the loop that asks the provisioner and commands it.
//! - [`migration`] — the `revision_usage` table (and the inbox that makes the
//!   handler idempotent: adding time twice would be wrong); `schema` names
//!   it and its columns for queries.
//! - [`UsageRecorder`] — the consumer-group handler.
//! - [`api`] — `paved.cost_scheduler.v1.CostSchedulerService`.

pub mod api;
pub mod decide;
pub mod migration;
pub mod schedules;
mod schema;

use async_trait::async_trait;
use paved_proto::provisioner::v1::provisioner_service_client::ProvisionerServiceClient;
use paved_proto::{events::v1::envelope::Payload, provisioner::v1::RevisionState};
use paved_stream::{Envelope, consumer::Handler, inbox};
use schema::RevisionUsage;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, TransactionTrait,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};
use std::sync::Arc;

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

    fn parts(
        db: DatabaseConnection,
        _relay: paved_stream::outbox::Relay,
        options: Options,
        background: &mut paved_service::Background,
    ) -> anyhow::Result<(paved_service::Mount, Arc<dyn Handler>)> {
        match &options.provisioner_url {
            Some(url) => {
                let expect = paved_grpc::tls::platform_id("provisioner");
                let channel = paved_grpc::tls::connect(url, background.tls(), Some(&expect), |e| {
                    e.connect_timeout(std::time::Duration::from_secs(2)).timeout(std::time::Duration::from_secs(10))
                })
                .map_err(|e| anyhow::anyhow!("provisioner_url: {e}"))?;
                let bearer = background.calls().cloned().unwrap_or_default();
                if let Some(file) = options.token_file.clone() {
                    let bearer = bearer.clone();
                    background.spawn(move |shutdown| paved_service::reload_token(file, bearer, shutdown));
                }
                let scheduler = schedules::Scheduler::new(ProvisionerServiceClient::new(bearer.on(channel)));
                background.spawn(move |shutdown| scheduler.run(schedules::PASS, shutdown));
            }
            None => tracing::warn!("no provisioner configured (provisioner_url): schedules are not acted on"),
        }
        let api = api::server(db.clone());
        Ok((Box::new(move |r| r.add_service(api)), Arc::new(UsageRecorder { db })))
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
}

/// Opens a running interval when a revision turns healthy and closes it when
/// it leaves that state.
pub struct UsageRecorder {
    pub db: DatabaseConnection,
}

#[async_trait]
impl Handler for UsageRecorder {
    async fn handle(&self, _stream: &str, event: &Envelope) -> anyhow::Result<()> {
        let Some(Payload::RevisionStateChanged(changed)) = &event.payload else {
            return Ok(());
        };
        let at = event.time.as_ref().map_or_else(|| chrono::Utc::now().timestamp_millis(), paved_proto::millis_from_timestamp);
        let txn = self.db.begin().await?;
        if !inbox::first_delivery(&txn, &event.id).await? {
            return Ok(());
        }
        let insert = Query::insert()
            .into_table(RevisionUsage::Table)
            .columns([RevisionUsage::RevisionId, RevisionUsage::Workload, RevisionUsage::Environment, RevisionUsage::RunningMs])
            .values_panic([
                changed.revision_id.clone().into(),
                changed.workload.clone().into(),
                changed.environment.clone().into(),
                0i64.into(),
            ])
            .on_conflict(OnConflict::column(RevisionUsage::RevisionId).do_nothing().to_owned())
            .to_owned();
        txn.execute(&insert).await?;
        let this = Expr::col(RevisionUsage::RevisionId).eq(changed.revision_id.clone());
        let since = RevisionUsage::RunningSinceMs;
        let update = if RevisionState::try_from(changed.to) == Ok(RevisionState::Healthy) {
            Query::update().table(RevisionUsage::Table).value(since, at).and_where(this).and_where(Expr::col(since).is_null()).to_owned()
        } else {
            Query::update()
                .table(RevisionUsage::Table)
                .value(RevisionUsage::RunningMs, Expr::col(RevisionUsage::RunningMs).add(Expr::val(at).sub(Expr::col(since))))
                .value(since, Option::<i64>::None)
                .and_where(this)
                .and_where(Expr::col(since).is_not_null())
                .to_owned()
        };
        txn.execute(&update).await?;
        txn.commit().await?;
        Ok(())
    }
}
