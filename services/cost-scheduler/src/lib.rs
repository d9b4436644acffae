//! The cost scheduler. It will put environments to sleep, enforce budgets and
//! expire previews; today it attributes running time to workloads: the time
//! each revision spent healthy, from the provisioner's state-change events.
//!
//! # Layout
//! - [`migration`] — the `revision_usage` table (and the inbox that makes the
//!   handler idempotent: adding time twice would be wrong); `schema` names
//!   it and its columns for queries.
//! - [`UsageRecorder`] — the consumer-group handler.
//! - [`api`] — `paved.cost_scheduler.v1.CostSchedulerService`.

pub mod api;
pub mod migration;
mod schema;

use async_trait::async_trait;
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
    type Options = paved_service::NoOptions;

    fn parts(
        db: DatabaseConnection,
        _relay: paved_stream::outbox::Relay,
        _options: paved_service::NoOptions,
        _background: &mut paved_service::Background,
    ) -> anyhow::Result<(paved_service::Mount, Arc<dyn Handler>)> {
        let api = api::server(db.clone());
        Ok((Box::new(move |r| r.add_service(api)), Arc::new(UsageRecorder { db })))
    }
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
