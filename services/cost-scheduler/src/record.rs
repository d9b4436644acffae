//! [`Recorder`], the consumer-group handler: the facts attribution is built
//! from, as they come from the provisioner's stream.
//!
//! - A revision's state changes open and close its running intervals
//!   (`running_intervals`, and the lifetime sum in `revision_usage`):
//!   replica-hours, and cost by requested resources.
//! - A workload's sleeps and wakes open and close its sleep intervals
//!   (`sleep_intervals`): what sleeping saved.
//! - A workload deleted, or a preview closed, closes every interval of its
//!   workloads: their processes are gone, and no state change will say so.
//!
//! Each event is applied once (the inbox, in the same transaction): adding
//! time twice would be wrong.

use crate::schema::{RevisionUsage, RunningIntervals, SleepIntervals};
use async_trait::async_trait;
use paved_proto::events::v1::envelope::Payload;
use paved_proto::provisioner::v1::{RevisionState, RevisionStateChanged, WorkloadPowered};
use paved_stream::{Envelope, consumer::Handler, inbox};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};

pub struct Recorder {
    pub db: DatabaseConnection,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, _stream: &str, event: &Envelope) -> anyhow::Result<()> {
        if !matches!(
            event.payload,
            Some(Payload::RevisionStateChanged(_) | Payload::WorkloadPowered(_) | Payload::WorkloadDeleted(_) | Payload::PreviewClosed(_))
        ) {
            return Ok(());
        }
        let at = event.time.as_ref().map_or_else(|| chrono::Utc::now().timestamp_millis(), paved_proto::millis_from_timestamp);
        let txn = self.db.begin().await?;
        if !inbox::first_delivery(&txn, &event.id).await? {
            return Ok(());
        }
        match &event.payload {
            Some(Payload::RevisionStateChanged(changed)) => running(&txn, changed, at).await?,
            Some(Payload::WorkloadPowered(powered)) => powered_at(&txn, powered, at).await?,
            Some(Payload::WorkloadDeleted(deleted)) => {
                gone(&txn, &deleted.environment, std::slice::from_ref(&deleted.workload), at).await?
            }
            Some(Payload::PreviewClosed(closed)) => gone(&txn, &closed.environment, &closed.workloads, at).await?,
            _ => {}
        }
        txn.commit().await?;
        Ok(())
    }
}

/// Healthy opens an interval (unless one is open); any other state closes it.
async fn running(txn: &DatabaseTransaction, changed: &RevisionStateChanged, at: i64) -> Result<(), DbErr> {
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
    let open = Expr::col(RunningIntervals::RevisionId).eq(changed.revision_id.clone()).and(Expr::col(RunningIntervals::ToMs).is_null());
    if RevisionState::try_from(changed.to) == Ok(RevisionState::Healthy) {
        let update =
            Query::update().table(RevisionUsage::Table).value(since, at).and_where(this).and_where(Expr::col(since).is_null()).to_owned();
        txn.execute(&update).await?;
        if !any(txn, RunningIntervals::Table, open).await? {
            let insert = Query::insert()
                .into_table(RunningIntervals::Table)
                .columns([RunningIntervals::RevisionId, RunningIntervals::FromMs])
                .values_panic([changed.revision_id.clone().into(), at.into()])
                .to_owned();
            txn.execute(&insert).await?;
        }
    } else {
        close_running(txn, this, at).await?;
    }
    Ok(())
}

/// Closes the open running intervals of the revisions `which` selects (a
/// condition on `revision_usage`), adding their time to the revisions' sums.
async fn close_running(txn: &DatabaseTransaction, which: Expr, at: i64) -> Result<(), DbErr> {
    let since = RevisionUsage::RunningSinceMs;
    let update = Query::update()
        .table(RevisionUsage::Table)
        .value(RevisionUsage::RunningMs, Expr::col(RevisionUsage::RunningMs).add(Expr::val(at).sub(Expr::col(since))))
        .value(since, Option::<i64>::None)
        .and_where(which.clone())
        .and_where(Expr::col(since).is_not_null())
        .to_owned();
    txn.execute(&update).await?;
    let revisions = Query::select().column(RevisionUsage::RevisionId).from(RevisionUsage::Table).and_where(which).to_owned();
    let open = Expr::col(RunningIntervals::RevisionId).in_subquery(revisions).and(Expr::col(RunningIntervals::ToMs).is_null());
    txn.execute(&Query::update().table(RunningIntervals::Table).value(RunningIntervals::ToMs, at).and_where(open).to_owned()).await?;
    Ok(())
}

/// `workloads` of `environment` are gone (deleted, or their preview closed):
/// every running and sleep interval of theirs ends at `at`.
async fn gone(txn: &DatabaseTransaction, environment: &str, workloads: &[String], at: i64) -> Result<(), DbErr> {
    for workload in workloads {
        let which = Expr::col(RevisionUsage::Environment).eq(environment).and(Expr::col(RevisionUsage::Workload).eq(workload.as_str()));
        close_running(txn, which, at).await?;
        let asleep = Expr::col(SleepIntervals::Environment)
            .eq(environment)
            .and(Expr::col(SleepIntervals::Workload).eq(workload.as_str()))
            .and(Expr::col(SleepIntervals::ToMs).is_null());
        txn.execute(&Query::update().table(SleepIntervals::Table).value(SleepIntervals::ToMs, at).and_where(asleep).to_owned()).await?;
    }
    Ok(())
}

/// Asleep opens a sleep interval (unless one is open); awake closes it.
async fn powered_at(txn: &DatabaseTransaction, powered: &WorkloadPowered, at: i64) -> Result<(), DbErr> {
    let open = Expr::col(SleepIntervals::Environment)
        .eq(powered.environment.clone())
        .and(Expr::col(SleepIntervals::Workload).eq(powered.workload.clone()))
        .and(Expr::col(SleepIntervals::ToMs).is_null());
    if powered.awake {
        txn.execute(&Query::update().table(SleepIntervals::Table).value(SleepIntervals::ToMs, at).and_where(open).to_owned()).await?;
    } else if !any(txn, SleepIntervals::Table, open).await? {
        let insert = Query::insert()
            .into_table(SleepIntervals::Table)
            .columns([SleepIntervals::Environment, SleepIntervals::Workload, SleepIntervals::RevisionId, SleepIntervals::FromMs])
            .values_panic([
                powered.environment.clone().into(),
                powered.workload.clone().into(),
                powered.revision_id.clone().into(),
                at.into(),
            ])
            .to_owned();
        txn.execute(&insert).await?;
    }
    Ok(())
}

/// Whether a row of `table` matches `condition`.
async fn any(txn: &DatabaseTransaction, table: impl sea_orm::sea_query::Iden + 'static, condition: Expr) -> Result<bool, DbErr> {
    let query = Query::select().expr(Expr::val(1)).from(table).and_where(condition).limit(1).to_owned();
    Ok(txn.query_one(&query).await?.is_some())
}
