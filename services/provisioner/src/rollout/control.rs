//! What people do to rollouts — pause, resume, abort, promote now — and
//! to a workload's traffic (roll back), beside the driver: each change is
//! made at the version read, and read again when another writer came first.

use super::transitions::Transitions;
use crate::{
    model::{Rollout, RolloutState, Stage, State},
    records::Records,
    routing::Routing,
    runner::Runner,
    store::{self, Change},
};
use sea_orm::{DbErr, TransactionTrait};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// No such rollout.
    #[error("{0}")]
    NotFound(String),
    /// No such workload (a rollback names one).
    #[error("{0}")]
    NoWorkload(String),
    /// The operation does not apply in the rollout's or workload's state.
    #[error("{0}")]
    Precondition(String),
    #[error("database: {0}")]
    Database(#[from] DbErr),
}

pub(crate) struct Rollouts {
    records: Arc<Records>,
    routing: Arc<Routing>,
    runner: Arc<Runner>,
    transitions: Arc<Transitions>,
}

impl Rollouts {
    pub(crate) fn new(records: Arc<Records>, routing: Arc<Routing>, runner: Arc<Runner>, transitions: Arc<Transitions>) -> Self {
        Self { records, routing, runner, transitions }
    }

    pub(crate) async fn rollout(&self, id: &str) -> Result<Rollout, RolloutError> {
        store::get_rollout(self.records.db(), id).await?.ok_or_else(|| RolloutError::NotFound(format!("no rollout {id}")))
    }

    /// The traffic steps of a rollout's revision (for the API's view).
    pub(crate) async fn rollout_steps(&self, rollout: &Rollout) -> Result<Vec<u32>, DbErr> {
        let revision = store::get_revision(self.records.db(), &rollout.revision_id).await?;
        Ok(revision.and_then(|r| r.parse_spec().ok()).map(|s| s.rollout.steps).unwrap_or_default())
    }

    /// Applies the change `decide` returns for the rollout as read (None:
    /// already so), rereading when another writer came first.
    async fn modify(&self, id: &str, decide: impl Fn(&Rollout) -> Result<Option<Change>, RolloutError>) -> Result<Rollout, RolloutError> {
        for _ in 0..20 {
            let r = self.rollout(id).await?;
            let Some(change) = decide(&r)? else { return Ok(r) };
            let txn = self.records.db().begin().await?;
            if let Some(updated) = store::update_rollout(&txn, &r, change).await? {
                txn.commit().await?;
                self.records.committed(&r.workload_id);
                return Ok(updated);
            }
        }
        Err(RolloutError::Precondition(format!("rollout {id} keeps changing; retry")))
    }

    pub(crate) async fn pause(&self, id: &str) -> Result<Rollout, RolloutError> {
        self.modify(id, |r| match r.state {
            RolloutState::Running => Ok(Some(Change { state: RolloutState::Paused, ..Change::from(r, "paused") })),
            RolloutState::Paused => Ok(None),
            _ => Err(ended(r, "paused")),
        })
        .await
    }

    pub(crate) async fn resume(&self, id: &str) -> Result<Rollout, RolloutError> {
        self.modify(id, |r| match r.state {
            RolloutState::Paused => {
                let message = format!("resumed; step {} is held again in full", r.step + 1);
                Ok(Some(Change { state: RolloutState::Running, restart_step: true, ..Change::from(r, message) }))
            }
            RolloutState::Running => Ok(None),
            _ => Err(ended(r, "resumed")),
        })
        .await
    }

    /// Skips the remaining steps. Only once the canary has passed its start
    /// (it is healthy and holds traffic): promoting a revision that never
    /// became healthy would send all traffic nowhere.
    pub(crate) async fn promote_now(&self, id: &str) -> Result<Rollout, RolloutError> {
        self.modify(id, |r| match (r.state.is_active(), r.stage) {
            (false, _) => Err(ended(r, "promoted")),
            (true, Stage::Promote) => Ok(None),
            (true, Stage::Step) => Ok(Some(Change {
                stage: Stage::Promote,
                state: RolloutState::Running,
                ..Change::from(r, "promoted now: the remaining steps are skipped")
            })),
            (true, stage) => Err(RolloutError::Precondition(format!(
                "rollout {} is at stage {}: it can be promoted once its canary is healthy and taking traffic",
                r.id,
                stage.as_str()
            ))),
        })
        .await
    }

    pub(crate) async fn abort(&self, id: &str) -> Result<Rollout, RolloutError> {
        self.end(id, RolloutState::Aborted, "aborted: all traffic back on the stable revision").await
    }

    async fn end(&self, id: &str, state: RolloutState, reason: &str) -> Result<Rollout, RolloutError> {
        for _ in 0..20 {
            let r = self.rollout(id).await?;
            if !r.state.is_active() {
                return Err(ended(&r, "stopped"));
            }
            if let Some(done) = self.transitions.finish(&r, state, reason).await? {
                return Ok(done);
            }
        }
        Err(RolloutError::Precondition(format!("rollout {id} keeps changing; retry")))
    }

    /// All of the workload's traffic back on its last known-good revision:
    /// a rollout under way is rolled back to its stable revision; otherwise
    /// the standby (the stable revision before the current one, kept
    /// running) takes over, and the current stable one becomes the standby.
    /// Returns the revision that now takes the traffic.
    pub(crate) async fn rollback(&self, environment: &str, name: &str) -> Result<String, RolloutError> {
        let db = self.records.db();
        let missing = || RolloutError::NoWorkload(format!("no workload {name} in environment {environment}"));
        let workload = store::get_workload(db, environment, name).await?.ok_or_else(missing)?;
        if let Some(r) = store::active_rollouts(db, Some(&workload.id())).await?.pop() {
            let Some(stable) = r.stable_revision.clone() else {
                return Err(RolloutError::Precondition(format!("{name} has no earlier revision: its first one is still rolling out")));
            };
            self.end(&r.id, RolloutState::RolledBack, "rolled back on command").await?;
            return Ok(stable);
        }
        let _apply = self.records.apply_lock().await;
        let txn = db.begin().await?;
        let workload = store::get_workload(&txn, environment, name).await?.ok_or_else(missing)?;
        let (Some(target), Some(stable)) = (workload.standby_revision.clone(), workload.stable_revision.clone()) else {
            return Err(RolloutError::Precondition(format!("{name} in {environment} has no earlier known-good revision to roll back to")));
        };
        let Some(revision) = store::get_revision(&txn, &target).await? else {
            return Err(RolloutError::Precondition(format!("the standby revision {target} no longer exists")));
        };
        if revision.state == State::Failed {
            return Err(RolloutError::Precondition(format!("the standby revision {} has failed: {}", revision.number, revision.message)));
        }
        store::set_routing(&txn, &workload, Some(&target), Some(&target), Some(&stable), Some((&stable, "rolled back on command"))).await?;
        txn.commit().await?;
        self.records.committed(&workload.id());
        self.routing.route(&workload.id()).await?;
        // Normally running already; after a failure it is started again and
        // takes the traffic once healthy.
        if let Ok(spec) = revision.parse_spec() {
            self.routing.ensure(&workload).await.map_err(|e| DbErr::Custom(format!("cannot open the workload's proxy: {e}")))?;
            self.runner.start(&revision, spec);
        }
        tracing::info!(workload = %workload.id(), to = revision.number, "rolled back on command");
        Ok(target)
    }
}

fn ended(r: &Rollout, verb: &str) -> RolloutError {
    RolloutError::Precondition(format!("rollout {} has ended ({}): it cannot be {verb}", r.id, r.state.as_str()))
}
