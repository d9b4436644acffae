//! The two ends of a rollout: promoted (the canary becomes the stable
//! revision and takes all traffic) or finished without promotion (all
//! traffic back on the stable revision). Each commits the routing with the
//! rollout's end under the apply lock, routes the proxy from what it just
//! committed, and stops what no longer takes traffic. The driver ends
//! rollouts, and so do people's commands.

use super::step::Next;
use crate::{
    model::{self, Rollout, RolloutState, Stage},
    records::Records,
    routing::Routing,
    runner::Runner,
    store::{self, Change},
};
use sea_orm::{DbErr, TransactionTrait};
use std::sync::Arc;

pub(crate) struct Transitions {
    records: Arc<Records>,
    routing: Arc<Routing>,
    runner: Arc<Runner>,
}

impl Transitions {
    pub(crate) fn new(records: Arc<Records>, routing: Arc<Routing>, runner: Arc<Runner>) -> Self {
        Self { records, routing, runner }
    }

    /// The new revision becomes the stable one and takes all traffic; the
    /// stable one before it stays running as the standby for a rollback; any
    /// other revision of the workload stops.
    /// `via`: the transition to the promote stage, committed with it.
    pub(super) async fn promote(&self, r: &Rollout, via: Option<Change>) -> Result<Next, DbErr> {
        let _apply = self.records.apply_lock().await;
        let txn = self.records.db().begin().await?;
        let (environment, name) = r.workload();
        let Some(workload) = store::get_workload(&txn, environment, name).await? else { return Ok(Next::Done) };
        let mut at = r.clone();
        if let Some(via) = via
            && !store::advance_rollout(&txn, &mut at, via).await?
        {
            return Ok(Next::Again);
        }
        let change =
            Change { stage: Stage::Done, state: RolloutState::Promoted, weight: 100, ..Change::from(&at, "promoted: all traffic") };
        if store::update_rollout(&txn, &at, change).await?.is_none() {
            return Ok(Next::Again);
        }
        let standby = r.stable_revision.clone().or(workload.standby_revision.clone());
        store::set_routing(&txn, &workload, Some(&r.revision_id), Some(&r.revision_id), standby.as_deref(), None).await?;
        txn.commit().await?;
        self.records.committed(&r.workload_id);
        // As just committed: under the apply lock nothing else can have
        // changed the routing since.
        self.routing.route_committed(&r.workload_id, Some(&r.revision_id)).await;
        let keep = [Some(r.revision_id.clone()), standby];
        self.stop_baseline(r);
        self.stop_revisions_except(&r.workload_id, &keep).await?;
        Ok(Next::Done)
    }

    /// Ends a rollout without promotion: all traffic back on its stable
    /// revision, the canary stopped. None when another writer came first.
    pub(crate) async fn finish(&self, r: &Rollout, state: RolloutState, reason: &str) -> Result<Option<Rollout>, DbErr> {
        let _apply = self.records.apply_lock().await;
        let txn = self.records.db().begin().await?;
        let (environment, name) = r.workload();
        let change = Change { stage: Stage::Done, state, weight: 0, ..Change::from(r, reason) };
        let Some(done) = store::update_rollout(&txn, r, change).await? else { return Ok(None) };
        let workload = store::get_workload(&txn, environment, name).await?;
        if let (Some(workload), Some(stable)) = (workload.as_ref(), r.stable_revision.as_deref()) {
            let standby = workload.standby_revision.as_deref();
            store::set_routing(&txn, workload, Some(stable), Some(stable), standby, Some((&r.revision_id, reason))).await?;
        }
        txn.commit().await?;
        self.records.committed(&r.workload_id);
        tracing::warn!(rollout = %r.id, workload = %r.workload_id, state = state.as_str(), %reason, "rollout ended without promotion");
        let stable = r.stable_revision.as_deref().or(workload.as_ref().and_then(|w| w.stable_revision.as_deref()));
        self.routing.route_committed(&r.workload_id, stable).await;
        let keep = [r.stable_revision.clone(), workload.and_then(|w| w.standby_revision)];
        self.stop_baseline(r);
        self.stop_revisions_except(&r.workload_id, &keep).await?;
        Ok(Some(done))
    }

    /// Stops, in the background, the rollout's baseline (it ended).
    fn stop_baseline(&self, r: &Rollout) {
        if let Some(stable) = &r.stable_revision {
            self.runner.stop_later(&self.routing, &r.workload_id, vec![model::baseline_key(stable)]);
        }
    }

    /// Stops, in the background, the workload's running revisions not in `keep`.
    async fn stop_revisions_except(&self, workload_id: &str, keep: &[Option<String>]) -> Result<(), DbErr> {
        for old in store::active_revisions(self.records.db(), Some(workload_id)).await? {
            if !keep.iter().flatten().any(|k| *k == old.id) {
                self.runner.stop_later(&self.routing, workload_id, vec![old.id]);
            }
        }
        Ok(())
    }
}
