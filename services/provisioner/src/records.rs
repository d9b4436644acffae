//! What every writer of the provisioner's records shares: the database, the
//! outbox relay that publishes what a commit enqueued, the change channel of
//! each workload, the apply lock, and the operator's default schedules.

use crate::{model::Revision, model::State, model::Workload, store, sync::lock};
use paved_spec::{Schedule, ScheduleDefaults};
use paved_stream::outbox::Relay;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use std::{collections::HashMap, sync::Mutex};
use tokio::sync::watch;

pub(crate) struct Records {
    db: DatabaseConnection,
    relay: Relay,
    /// Bumped on every recorded change: rollout drivers and watchers wake on it.
    changes: Changes,
    /// Applies are serialised: revision numbers are allocated max+1. The
    /// transitions that change a workload's routing (promote, roll back,
    /// close a preview) hold it too, so they never interleave with an apply.
    apply_lock: tokio::sync::Mutex<()>,
    /// The schedule of a workload whose spec has none, by environment.
    schedules: ScheduleDefaults,
}

impl Records {
    pub(crate) fn new(db: DatabaseConnection, relay: Relay, schedules: ScheduleDefaults) -> Self {
        Self { db, relay, changes: Changes::default(), apply_lock: tokio::sync::Mutex::new(()), schedules }
    }

    /// The schedule the workload runs by: its stable revision's, or its
    /// environment's default (none for a spec that no longer parses).
    pub(crate) async fn schedule_of(&self, workload: &Workload) -> Result<Option<Schedule>, DbErr> {
        let Some(stable) = &workload.stable_revision else { return Ok(None) };
        let Some(spec) = store::get_revision(&self.db, stable).await?.and_then(|r| r.parse_spec().ok()) else { return Ok(None) };
        Ok(self.schedules.of(&spec, &workload.environment).cloned())
    }

    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub(crate) async fn apply_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.apply_lock.lock().await
    }

    /// After a commit that enqueued events: the relay publishes them.
    pub(crate) fn wake(&self) {
        self.relay.wake();
    }

    /// Wakes the workload's rollout drivers and watchers.
    pub(crate) fn changed(&self, workload_id: &str) {
        self.changes.notify(workload_id);
    }

    /// After a commit that changed a workload: both of the above.
    pub(crate) fn committed(&self, workload_id: &str) {
        self.wake();
        self.changed(workload_id);
    }

    /// Wakes on every change recorded for the workload.
    pub(crate) fn subscribe(&self, workload_id: &str) -> watch::Receiver<u64> {
        self.changes.subscribe(workload_id)
    }

    /// Records a state (with its event); returns the revision as recorded.
    pub(crate) async fn record_state(&self, revision_id: &str, state: State, message: &str) -> Result<Option<Revision>, DbErr> {
        let txn = self.db.begin().await?;
        let revision = store::set_state(&txn, revision_id, state, message).await?;
        txn.commit().await?;
        self.wake();
        Ok(revision)
    }
}

/// Change notifications per workload: whoever waits on a workload (its
/// rollout's driver, a watch) wakes when something about it is recorded.
#[derive(Default)]
struct Changes(Mutex<HashMap<String, watch::Sender<u64>>>);

impl Changes {
    fn subscribe(&self, workload_id: &str) -> watch::Receiver<u64> {
        lock(&self.0).entry(workload_id.to_string()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    fn notify(&self, workload_id: &str) {
        let mut channels = lock(&self.0);
        if let Some(tx) = channels.get(workload_id) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
            if tx.receiver_count() == 0 {
                channels.remove(workload_id);
            }
        }
    }
}
