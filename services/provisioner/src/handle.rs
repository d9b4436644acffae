//! [`Provisioner`], the handle the API and the CLI hold: each call goes to
//! the part that owns the concern. Built by `Provisioner::start` in
//! `lib.rs`, which wires the parts and mounts the API; kept apart from that
//! wiring so that `api` depends on the handle, not on the crate root.

use crate::{
    apply::{Applied, Applier, ApplyError, Plan, Submitted, WorkloadView},
    artifacts,
    model::Rollout,
    power::{Ask, Power, PowerError},
    preview::{Preview, Previews},
    records::Records,
    removal::Removal,
    rollout::{RolloutError, Rollouts},
    routing::{Routing, TrafficMetrics},
    runner::Runner,
    store,
};
use sea_orm::{DatabaseConnection, DbErr};
use std::{sync::Arc, time::Duration};

/// The provisioner's handle: what the API and the CLI call. Each concern is
/// a part of its own, holding only the shared parts it uses.
#[derive(Clone)]
pub struct Provisioner {
    pub(crate) records: Arc<Records>,
    pub(crate) artifacts: Arc<artifacts::Store>,
    pub(crate) routing: Arc<Routing>,
    pub(crate) applier: Arc<Applier>,
    pub(crate) rollouts: Arc<Rollouts>,
    pub(crate) previews: Arc<Previews>,
    pub(crate) removal: Arc<Removal>,
    pub(crate) power: Arc<Power>,
    pub(crate) runner: Arc<Runner>,
}

/// One replica's use, with the workload it belongs to.
#[derive(Debug, Clone)]
pub struct InstanceUsage {
    pub environment: String,
    pub workload: String,
    pub revision_id: String,
    /// A rollout's baseline: replicas of the stable revision.
    pub baseline: bool,
    pub usage: paved_local::ProcessUsage,
}

impl Provisioner {
    pub fn db(&self) -> &DatabaseConnection {
        self.records.db()
    }

    /// Registers the workload if new and deploys a revision of `spec_yaml`,
    /// unless the current revision already runs the same spec.
    pub async fn apply(&self, environment: &str, spec_yaml: &str, spec_path: &str, request_id: &str) -> Result<Applied, ApplyError> {
        self.apply_submitted(environment, Submitted::parse(spec_yaml, spec_path), request_id).await
    }

    /// [`Provisioner::apply`] of a spec parsed already.
    /// A sleeping workload is woken first: a rollout needs its stable
    /// revision running beside the canary.
    pub async fn apply_submitted(&self, environment: &str, spec: Submitted<'_>, request_id: &str) -> Result<Applied, ApplyError> {
        if let Ok(parsed) = &spec.spec {
            // A person's ask that holds nothing: the schedule decides again.
            let reason = paved_proto::provisioner::v1::PowerReason::Person;
            let ask = Ask { reason, actor: "", note: "a new revision is applied", hold: Some(Duration::ZERO) };
            match self.power.wake(environment, &parsed.name, ask).await {
                Ok(_) | Err(PowerError::NotFound(_) | PowerError::Precondition(_)) => {}
                Err(PowerError::Database(e)) => return Err(e.into()),
            }
        }
        self.applier.apply(environment, spec, request_id).await
    }

    /// Puts a workload to sleep; false when it was asleep already.
    pub async fn sleep(&self, environment: &str, name: &str, ask: Ask<'_>) -> Result<bool, PowerError> {
        self.power.sleep(environment, name, ask).await
    }

    /// Wakes a workload; false when it was awake already.
    pub async fn wake(&self, environment: &str, name: &str, ask: Ask<'_>) -> Result<bool, PowerError> {
        self.power.wake(environment, name, ask).await
    }

    /// What `apply` would change for this spec, and the drift of what runs.
    pub async fn plan(&self, environment: &str, spec_yaml: &str, spec_path: &str) -> Result<Plan, ApplyError> {
        self.applier.plan(environment, Submitted::parse(spec_yaml, spec_path)).await
    }

    pub fn artifacts(&self) -> &artifacts::Store {
        &self.artifacts
    }

    pub async fn workload(&self, environment: &str, name: &str) -> Result<Option<WorkloadView>, DbErr> {
        self.applier.workload(environment, name).await
    }

    pub async fn workloads(&self, environment: &str, limit: u64, offset: u64) -> Result<Vec<WorkloadView>, DbErr> {
        self.applier.workloads(environment, limit, offset).await
    }

    /// Each routed revision's weight, and every revision's traffic, through
    /// the workload's proxy; None when it has no proxy here.
    pub async fn traffic_metrics(&self, workload_id: &str) -> Option<TrafficMetrics> {
        self.routing.traffic_metrics(workload_id).await
    }

    /// What each replica on the local runtime uses now. Replicas of a
    /// revision no longer recorded (a closed preview stopping) are left out.
    pub async fn instance_usage(&self) -> Result<Vec<InstanceUsage>, DbErr> {
        let mut workloads: std::collections::HashMap<String, Option<(String, String)>> = Default::default();
        let mut all = Vec::new();
        for usage in self.runner.usage().await {
            let baseline = crate::model::is_baseline(&usage.key);
            let revision_id = usage.key.strip_suffix(crate::model::BASELINE).unwrap_or(&usage.key).to_string();
            if !workloads.contains_key(&revision_id) {
                let found = store::get_revision(self.db(), &revision_id).await?;
                let names = found.map(|r| (r.workload().0.to_string(), r.workload().1.to_string()));
                workloads.insert(revision_id.clone(), names);
            }
            if let Some(Some((environment, workload))) = workloads.get(&revision_id) {
                let (environment, workload) = (environment.clone(), workload.clone());
                all.push(InstanceUsage { environment, workload, revision_id, baseline, usage });
            }
        }
        Ok(all)
    }

    /// Wakes on every change recorded for the workload (for watchers).
    pub fn subscribe(&self, workload_id: &str) -> tokio::sync::watch::Receiver<u64> {
        self.records.subscribe(workload_id)
    }

    pub async fn rollout(&self, id: &str) -> Result<Rollout, RolloutError> {
        self.rollouts.rollout(id).await
    }

    /// The traffic steps of a rollout's revision (for the API's view).
    pub async fn rollout_steps(&self, rollout: &Rollout) -> Result<Vec<u32>, DbErr> {
        self.rollouts.rollout_steps(rollout).await
    }

    pub async fn pause(&self, id: &str) -> Result<Rollout, RolloutError> {
        self.rollouts.pause(id).await
    }

    pub async fn resume(&self, id: &str) -> Result<Rollout, RolloutError> {
        self.rollouts.resume(id).await
    }

    /// Skips the remaining steps, once the canary is healthy and takes traffic.
    pub async fn promote_now(&self, id: &str) -> Result<Rollout, RolloutError> {
        self.rollouts.promote_now(id).await
    }

    pub async fn abort(&self, id: &str) -> Result<Rollout, RolloutError> {
        self.rollouts.abort(id).await
    }

    /// All of the workload's traffic back on its last known-good revision;
    /// returns the revision that now takes it.
    pub async fn rollback(&self, environment: &str, name: &str) -> Result<String, RolloutError> {
        self.rollouts.rollback(environment, name).await
    }

    /// Deletes a workload (records, processes, proxy): how many revisions
    /// it had; None when there is none.
    pub async fn delete_workload(&self, environment: &str, name: &str, actor: &str) -> Result<Option<u32>, DbErr> {
        self.removal.delete(environment, name, actor).await
    }

    /// Records (or extends) preview `pr` and applies the spec to `pr-<pr>`.
    pub async fn open_preview(
        &self,
        pr: u32,
        ttl: Duration,
        spec: Submitted<'_>,
        request_id: &str,
    ) -> Result<(Preview, Applied), ApplyError> {
        self.previews.open(pr, ttl, spec, request_id).await
    }

    pub async fn preview(&self, pr: u32) -> Result<Option<Preview>, DbErr> {
        self.previews.preview(pr).await
    }

    pub async fn previews(&self) -> Result<Vec<Preview>, DbErr> {
        self.previews.previews().await
    }

    /// Destroys preview `pr`; returns the workloads destroyed, None when
    /// there was no such preview.
    pub async fn close_preview(&self, pr: u32, reason: &str) -> Result<Option<Vec<String>>, DbErr> {
        self.previews.close(pr, reason).await
    }
}
