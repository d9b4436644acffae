//! Destroying workloads — records, rollouts' drivers, processes, proxies —
//! for DeleteWorkload and for a preview's close. The records go in the
//! caller's transaction, with its event; what runs is stopped once that has
//! committed, so a failed transaction stops nothing.

use crate::{
    model::{self, Workload},
    records::Records,
    rollout::Driver,
    routing::Routing,
    runner::Runner,
    schema::{Revisions, Rollouts, Workloads},
    store,
};
use paved_proto::{events::v1::envelope::Payload, provisioner::v1 as pb};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbErr, TransactionTrait,
    sea_query::{Expr, ExprTrait, Query},
};
use std::{sync::Arc, time::Duration};

/// What ran of workloads whose records are gone: to stop once committed.
pub(crate) struct Doomed {
    ids: Vec<String>,
    rollouts: Vec<String>,
    revisions: Vec<String>,
}

/// Deletes the records of `workloads` (their rollouts, revisions and
/// themselves) in `txn`; what of them runs.
pub(crate) async fn delete_records(txn: &DatabaseTransaction, workloads: &[Workload]) -> Result<Doomed, DbErr> {
    let ids: Vec<String> = workloads.iter().map(Workload::id).collect();
    let mut rollouts = Vec::new();
    for id in &ids {
        rollouts.extend(store::list_rollouts(txn, id, 10_000, 0).await?.into_iter().map(|r| r.id));
    }
    let revisions = store::active_revisions(txn, None).await?.into_iter().filter(|r| ids.contains(&r.workload_id)).map(|r| r.id).collect();
    txn.execute(&Query::delete().from_table(Rollouts::Table).and_where(Expr::col(Rollouts::WorkloadId).is_in(ids.clone())).to_owned())
        .await?;
    txn.execute(&Query::delete().from_table(Revisions::Table).and_where(Expr::col(Revisions::WorkloadId).is_in(ids.clone())).to_owned())
        .await?;
    txn.execute(&Query::delete().from_table(Workloads::Table).and_where(Expr::col(Workloads::Id).is_in(ids.clone())).to_owned()).await?;
    Ok(Doomed { ids, rollouts, revisions })
}

/// The parts that stop what runs.
pub(crate) struct Removal {
    records: Arc<Records>,
    routing: Arc<Routing>,
    runner: Arc<Runner>,
    driver: Arc<Driver>,
}

impl Removal {
    pub(crate) fn new(records: Arc<Records>, routing: Arc<Routing>, runner: Arc<Runner>, driver: Arc<Driver>) -> Self {
        Self { records, routing, runner, driver }
    }

    /// Under the apply lock, once the deletion has committed: the proxies
    /// close (they are known by workload id, which a workload of the same
    /// name deployed next would take: it must not lose its proxy to this),
    /// and the rollouts' drivers are woken.
    pub(crate) async fn close(&self, doomed: &Doomed) {
        self.records.wake();
        for id in &doomed.ids {
            self.records.changed(id);
        }
        self.routing.close(&doomed.ids).await;
    }

    /// After [`Removal::close`], with the apply lock released (a driver
    /// that waits for it must get it to see its rollout is gone): the
    /// drivers end, the processes stop.
    pub(crate) async fn stop(&self, doomed: Doomed) {
        // A driver may be between reading its rollout and starting a
        // process: wait (bounded) until each has seen its rollout is gone.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while doomed.rollouts.iter().any(|r| self.driver.is_driving(r)) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // With each revision, the baseline a rollout may run of it.
        for revision in doomed.revisions.iter().flat_map(|r| [r.clone(), model::baseline_key(r)]) {
            self.runner.stop(&revision).await;
            self.routing.forget(&revision);
        }
    }

    /// Deletes workload `name` of `environment`, with a `workload.deleted`
    /// event naming `actor`: how many revisions it had; None when there is
    /// none.
    pub(crate) async fn delete(&self, environment: &str, name: &str, actor: &str) -> Result<Option<u32>, DbErr> {
        let apply = self.records.apply_lock().await;
        let txn = self.records.db().begin().await?;
        let Some(workload) = store::get_workload(&txn, environment, name).await? else {
            return Ok(None);
        };
        let revisions = store::list_revisions(&txn, environment, name, 10_000, 0).await?.len();
        let revisions = u32::try_from(revisions).unwrap_or(u32::MAX);
        let doomed = delete_records(&txn, std::slice::from_ref(&workload)).await?;
        let deleted = pb::WorkloadDeleted { workload: name.into(), environment: environment.into(), revisions, actor: actor.into() };
        let payload = Payload::WorkloadDeleted(deleted);
        store::emit(&txn, "paved.provisioner.v1.workload.deleted", environment, name, payload).await?;
        txn.commit().await?;
        self.close(&doomed).await;
        drop(apply);
        self.stop(doomed).await;
        tracing::info!(%environment, workload = %name, revisions, "workload deleted");
        Ok(Some(revisions))
    }
}
