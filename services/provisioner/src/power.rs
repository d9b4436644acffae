//! Sleep and wake. A sleeping workload's processes are stopped and its proxy
//! is kept: the proxy holds the requests that reach it and asks for a wake
//! (reason `request`). The cost scheduler decides when a workload sleeps or
//! wakes (its schedule, its idleness, a person's ask); this part acts,
//! records why and who asked, and enqueues the fact, in one transaction.

use crate::{
    model::{State, Workload},
    records::Records,
    routing::Routing,
    runner::Runner,
    store,
};
use paved_local::WakeFn;
use paved_proto::provisioner::v1::{PowerReason, WorkloadPowered};
use sea_orm::{DbErr, TransactionTrait};
use std::sync::{Arc, Weak};

#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    Database(#[from] DbErr),
}

/// Why a workload sleeps or wakes, as recorded (`sleep_reason`).
pub fn reason_name(reason: PowerReason) -> &'static str {
    match reason {
        PowerReason::Schedule => "schedule",
        PowerReason::Idle => "idle",
        PowerReason::Request => "request",
        PowerReason::Person | PowerReason::Unspecified => "person",
    }
}

/// What a sleep or wake changes: who asked, why, with what note.
pub struct Ask<'a> {
    pub reason: PowerReason,
    /// The caller's token subject; empty for a request.
    pub actor: &'a str,
    pub note: &'a str,
    /// A person's ask holds this long against the schedule (None: until
    /// the schedule next changes).
    pub hold: Option<std::time::Duration>,
}

impl Ask<'_> {
    /// A request reaching the proxy of a sleeping workload.
    pub fn request() -> Ask<'static> {
        Ask { reason: PowerReason::Request, actor: "", note: "", hold: None }
    }
}

pub(crate) struct Power {
    records: Arc<Records>,
    routing: Arc<Routing>,
    runner: Arc<Runner>,
    /// For the proxies' wake hooks, which must not keep the provisioner alive.
    me: Weak<Power>,
}

impl Power {
    pub(crate) fn new(records: Arc<Records>, routing: Arc<Routing>, runner: Arc<Runner>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self { records, routing, runner, me: me.clone() })
    }

    /// Puts the workload to sleep; false when it was asleep already.
    pub(crate) async fn sleep(&self, environment: &str, name: &str, ask: Ask<'_>) -> Result<bool, PowerError> {
        let apply = self.records.apply_lock().await;
        let db = self.records.db();
        let workload = self.find(environment, name).await?;
        if workload.sleep_reason.is_some() {
            return Ok(false);
        }
        if !store::active_rollouts(db, Some(&workload.id())).await?.is_empty() {
            return Err(PowerError::Precondition(format!("a rollout of {name} in {environment} is under way: it can sleep once it ends")));
        }
        let Some(stable) = workload.stable_revision.clone() else {
            return Err(PowerError::Precondition(format!("{name} in {environment} runs no revision yet")));
        };
        let hold = self.hold_until(&workload, &ask).await?;
        let txn = db.begin().await?;
        store::set_sleep(&txn, &workload, Some(reason_name(ask.reason)), hold, event(&workload, false, &ask, &stable, hold)).await?;
        txn.commit().await?;
        self.records.committed(&workload.id());
        self.routing.sleep(&workload.id(), self.wake_hook(&workload), false).await;
        // Stopping waits out each process's grace period: not under the
        // lock every change of every workload takes.
        drop(apply);
        self.stop(&workload).await;
        tracing::info!(workload = %workload.id(), reason = reason_name(ask.reason), "asleep");
        Ok(true)
    }

    /// Wakes the workload; false when it was awake already.
    pub(crate) async fn wake(&self, environment: &str, name: &str, ask: Ask<'_>) -> Result<bool, PowerError> {
        let _apply = self.records.apply_lock().await;
        let db = self.records.db();
        let workload = self.find(environment, name).await?;
        if workload.sleep_reason.is_none() {
            return Ok(false);
        }
        let stable = workload.stable_revision.clone().unwrap_or_default();
        let hold = self.hold_until(&workload, &ask).await?;
        // The processes start first and the record is written while they
        // boot: a request held by the proxy waits on the start, not on the
        // write too. Should either fail, it is asleep again as recorded:
        // what started is stopped, and the proxy asks anew on a request.
        self.routing.waking(&workload.id()).await;
        let woken = async {
            self.start(&workload).await?;
            let txn = db.begin().await?;
            store::set_sleep(&txn, &workload, None, hold, event(&workload, true, &ask, &stable, hold)).await?;
            txn.commit().await?;
            Ok::<(), PowerError>(())
        };
        if let Err(e) = woken.await {
            // Afresh: the next request asks for a wake again.
            self.routing.sleep(&workload.id(), self.wake_hook(&workload), false).await;
            self.stop(&workload).await;
            return Err(e);
        }
        self.records.committed(&workload.id());
        tracing::info!(workload = %workload.id(), reason = reason_name(ask.reason), "awake");
        Ok(true)
    }

    /// After a restart: the proxy of a workload recorded asleep holds
    /// requests and wakes it again.
    pub(crate) async fn keep_asleep(&self, workload: &Workload) {
        // A wake asked for while no provisioner ran stays asked: it comes
        // when routing attaches to the data plane.
        self.routing.sleep(&workload.id(), self.wake_hook(workload), true).await;
    }

    /// Stops the workload's stable and standby revisions, waiting until
    /// their processes are gone.
    async fn stop(&self, workload: &Workload) {
        for key in [&workload.stable_revision, &workload.standby_revision].into_iter().flatten() {
            self.runner.stop(key).await;
        }
    }

    /// Starts the workload's stable and standby revisions (unless failed).
    async fn start(&self, workload: &Workload) -> Result<(), PowerError> {
        self.routing.ensure(workload).await.map_err(|e| DbErr::Custom(format!("cannot open the workload's proxy: {e}")))?;
        for id in [&workload.stable_revision, &workload.standby_revision].into_iter().flatten() {
            let Some(revision) = store::get_revision(self.records.db(), id).await? else { continue };
            if revision.state == State::Failed {
                continue;
            }
            match revision.parse_spec() {
                // Its state is recorded from the runtime's reports (starting,
                // then healthy): a wake waits on no write of its own here.
                Ok(spec) => self.runner.start(&revision, spec),
                Err(e) => tracing::error!(revision = %id, error = %e, "cannot wake a revision: its stored spec no longer parses"),
            }
        }
        Ok(())
    }

    /// Until when a person's ask holds (Unix ms): for its `hold`, or until
    /// the workload's schedule next changes (no hold without a schedule).
    async fn hold_until(&self, workload: &Workload, ask: &Ask<'_>) -> Result<Option<i64>, DbErr> {
        if ask.reason != PowerReason::Person {
            return Ok(None);
        }
        let now = chrono::Utc::now();
        if let Some(hold) = ask.hold {
            return Ok(Some(now.timestamp_millis().saturating_add(i64::try_from(hold.as_millis()).unwrap_or(i64::MAX))));
        }
        let schedule = self.records.schedule_of(workload).await?;
        Ok(schedule.and_then(|s| s.next_change(now)).map(|t| t.timestamp_millis()))
    }

    async fn find(&self, environment: &str, name: &str) -> Result<Workload, PowerError> {
        store::get_workload(self.records.db(), environment, name)
            .await?
            .ok_or_else(|| PowerError::NotFound(format!("no workload {name} in environment {environment}")))
    }

    /// What the workload's proxy calls when a request reaches it asleep.
    fn wake_hook(&self, workload: &Workload) -> WakeFn {
        let me = self.me.clone();
        let (environment, name) = (workload.environment.clone(), workload.name.clone());
        Arc::new(move || {
            let Some(power) = me.upgrade() else { return };
            let (environment, name) = (environment.clone(), name.clone());
            tokio::spawn(async move {
                if let Err(e) = power.wake(&environment, &name, Ask::request()).await {
                    tracing::warn!(workload = %name, %environment, error = %e, "cannot wake on request");
                }
            });
        })
    }
}

// The deprecated milliseconds are set for consumers built before `hold_until`.
#[allow(deprecated)]
fn event(workload: &Workload, awake: bool, ask: &Ask<'_>, revision_id: &str, hold_until_ms: Option<i64>) -> WorkloadPowered {
    WorkloadPowered {
        workload: workload.name.clone(),
        environment: workload.environment.clone(),
        awake,
        reason: ask.reason as i32,
        actor: ask.actor.to_string(),
        revision_id: revision_id.to_string(),
        note: ask.note.to_string(),
        hold_until_ms: hold_until_ms.unwrap_or_default(),
        hold_until: hold_until_ms.map(paved_proto::timestamp_from_millis),
    }
}
