//! Bringing what runs back in line with the records: after a restart (every
//! workload's proxy back, the revisions it routes to started again, rollouts
//! under way driven on) and every few seconds after (a revision that should
//! run but has no supervisor is started again).

use crate::{
    model::{Revision, State, Workload},
    power::Power,
    records::Records,
    rollout::Driver,
    routing::Routing,
    runner::Runner,
    store,
};
use paved_spec::WorkloadSpec;
use sea_orm::DbErr;
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};
use tokio_util::sync::CancellationToken;

/// How often desired and running revisions are compared.
pub(crate) const DRIFT_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) struct Reconciler {
    records: Arc<Records>,
    routing: Arc<Routing>,
    runner: Arc<Runner>,
    driver: Arc<Driver>,
    power: Arc<Power>,
    shutdown: CancellationToken,
    /// When the replicas left running that nothing adopted are stopped: a
    /// drift check's interval after the start, so that the rollouts driven
    /// on have started their baselines (adopting theirs) by then.
    settle_at: std::time::Instant,
    settled: std::sync::atomic::AtomicBool,
}

impl Reconciler {
    pub(crate) fn new(
        records: Arc<Records>,
        routing: Arc<Routing>,
        runner: Arc<Runner>,
        driver: Arc<Driver>,
        power: Arc<Power>,
        shutdown: CancellationToken,
    ) -> Self {
        let settle_at = std::time::Instant::now() + DRIFT_CHECK;
        Self { records, routing, runner, driver, power, shutdown, settle_at, settled: Default::default() }
    }

    /// After a restart: every workload gets its proxy back; the revisions
    /// it routes to (stable, standby, an active rollout's canary) are started
    /// again unless they had failed, and the others that were running are
    /// recorded as stopped; rollouts under way are driven on from their last
    /// committed transition. A sleeping workload gets its proxy back,
    /// asleep, and nothing started.
    pub(crate) async fn reconcile(&self) -> anyhow::Result<()> {
        let db = self.records.db();
        let workloads = store::all_workloads(db).await?;
        let rollouts = store::active_rollouts(db, None).await?;
        let mut keep: HashSet<String> = rollouts.iter().map(|r| r.revision_id.clone()).collect();
        for w in &workloads {
            keep.extend(w.stable_revision.iter().chain(&w.standby_revision).cloned());
        }
        for revision in store::active_revisions(db, None).await? {
            if !keep.contains(&revision.id) {
                self.records.record_state(&revision.id, State::Stopped, "superseded while the platform was down").await?;
            }
        }
        let by_id: HashMap<String, &Workload> = workloads.iter().map(|w| (w.id(), w)).collect();
        let recorded: Vec<String> = by_id.keys().cloned().collect();
        self.routing.close_strays(&recorded).await;
        for w in workloads.iter().filter(|w| w.sleep_reason.is_some()) {
            match self.routing.ensure(w).await {
                Ok(()) => {
                    self.power.keep_asleep(w).await;
                    // Routed to nothing: a proxy adopted while its workload
                    // was being put to sleep may still route to replicas
                    // that are gone.
                    w.stable_revision.iter().chain(&w.standby_revision).for_each(|key| self.routing.forget(key));
                    self.routing.route(&w.id()).await?;
                }
                Err(e) => tracing::error!(workload = %w.id(), error = %e, "cannot open a sleeping workload's proxy"),
            }
        }
        let mut revisions: Vec<Revision> = Vec::new();
        for id in &keep {
            if let Some(revision) = store::get_revision(db, id).await? {
                revisions.push(revision);
            }
        }
        revisions.sort_by_key(|r| r.create_time_ms);
        // Each revision's spec as parsed here, for its rollout's driver.
        let mut specs: HashMap<String, WorkloadSpec> = HashMap::new();
        for revision in revisions {
            let Some(workload) = by_id.get(&revision.workload_id) else { continue };
            if revision.state == State::Failed {
                continue;
            }
            if workload.sleep_reason.is_some() {
                if revision.state != State::Stopped {
                    self.records.record_state(&revision.id, State::Stopped, "asleep").await?;
                }
                continue;
            }
            // One workload that cannot come back must not keep the others
            // down. A proxy that cannot open now (the data plane's host is
            // being started again, say) is tried again by the drift check.
            if let Err(e) = self.routing.ensure(workload).await {
                tracing::error!(workload = %workload.id(), error = %e, "cannot open the workload's proxy; the drift check tries again");
                continue;
            }
            match revision.parse_spec().map_err(|e| format!("stored spec no longer valid: {e}")) {
                Ok(spec) => {
                    tracing::info!(workload = %workload.id(), revision = revision.number, "restarting revision");
                    // After a crash the record may still say healthy: it is
                    // not, until its processes (adopted from the platform
                    // before, or new) pass their health checks.
                    self.records.record_state(&revision.id, State::Starting, "platform restarted").await?;
                    self.runner.start(&revision, spec.clone());
                    specs.insert(revision.id.clone(), spec);
                }
                Err(message) => {
                    tracing::error!(workload = %workload.id(), revision = revision.number, %message, "cannot restart revision");
                    self.records.record_state(&revision.id, State::Failed, &message).await?;
                }
            }
        }
        for rollout in rollouts {
            tracing::info!(rollout = %rollout.id, workload = %rollout.workload_id, stage = rollout.stage.as_str(), "resuming rollout");
            let spec = specs.remove(&rollout.revision_id);
            self.driver.drive(rollout.id, &rollout.workload_id, spec);
        }
        Ok(())
    }

    /// A revision that should run (a workload's stable or standby revision,
    /// an active rollout's canary) but has no supervisor is started again.
    /// The runtime restarts processes that die or hang; this catches what
    /// falls outside it. Replicas the platform before this one left running
    /// that nothing has adopted by the first tick (what `reconcile` and the
    /// resumed rollouts started, baselines included, adopted theirs) run
    /// revisions nobody wants: they are stopped.
    pub(crate) async fn correct_drift_once(&self) -> Result<(), DbErr> {
        if std::time::Instant::now() >= self.settle_at && !self.settled.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.runner.reap_unadopted();
            let runner = &self.runner;
            self.routing.forget_stale(|key| runner.is_running(key)).await;
        }
        let db = self.records.db();
        let mut desired: Vec<String> = store::active_rollouts(db, None).await?.into_iter().map(|r| r.revision_id).collect();
        let workloads = store::all_workloads(db).await?;
        for w in workloads.iter().filter(|w| w.sleep_reason.is_none()) {
            desired.extend(w.stable_revision.iter().chain(&w.standby_revision).cloned());
        }
        for id in desired {
            if self.runner.is_running(&id) || self.shutdown.is_cancelled() {
                continue;
            }
            let Some(revision) = store::get_revision(db, &id).await? else { continue };
            if revision.state == State::Failed {
                continue;
            }
            let Ok(spec) = revision.parse_spec() else { continue };
            let Some(workload) = workloads.iter().find(|w| w.id() == revision.workload_id) else { continue };
            tracing::warn!(workload = %revision.workload_id, revision = revision.number, "drift: revision should run but does not; starting it");
            if self.routing.ensure(workload).await.is_ok() {
                self.records.record_state(&id, State::Starting, "drift corrected: it was not running").await?;
                self.runner.start(&revision, spec);
            }
        }
        Ok(())
    }
}
