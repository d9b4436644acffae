//! How a revision's run ends: stopped at once, or after a drain (taken out
//! of its proxy's routes, it answers what it was given first). A start of
//! the revision waits until a run being stopped has ended, so two runs of
//! one key never overlap (their records, secret files and reports share it).

use super::LocalRuntime;
use std::{collections::HashMap, sync::atomic::Ordering, time::Duration};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type Runs = HashMap<String, (CancellationToken, JoinHandle<()>)>;

/// A run taken out of `running`, to be stopped.
pub(super) struct Ending {
    id: String,
    cancel: CancellationToken,
    task: JoinHandle<()>,
    /// Cancelled once it has ended (`LocalRuntime::previous_run`).
    done: CancellationToken,
}

impl Ending {
    /// Stops its processes and waits until they are gone.
    pub(super) async fn finish(self, runtime: &LocalRuntime) {
        self.cancel.cancel();
        let _ = self.task.await;
        self.done.cancel();
        let mut stopping = runtime.stopping();
        // Unless a later run of the key is being stopped too.
        if stopping.get(&self.id).is_some_and(CancellationToken::is_cancelled) {
            stopping.remove(&self.id);
        }
    }
}

impl LocalRuntime {
    fn draining(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.draining.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stopping(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.stopping.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a revision's run out of `running` (whose lock the caller
    /// holds); from now on a start of it waits until this run has ended.
    pub(super) fn end_run(&self, running: &mut Runs, id: &str) -> Option<Ending> {
        let (cancel, task) = running.remove(id)?;
        let done = CancellationToken::new();
        self.stopping().insert(id.to_string(), done.clone());
        Some(Ending { id: id.to_string(), cancel, task, done })
    }

    /// What a start of `id` waits for: the end of a run being stopped.
    pub(super) fn previous_run(&self, id: &str) -> Option<CancellationToken> {
        self.stopping().get(id).cloned()
    }

    /// A start of `id` (with `running` locked): wanted again while it
    /// drains, it runs on.
    pub(super) fn keep(&self, id: &str) {
        self.draining().remove(id);
    }

    /// Whether a drained stop of the revision is pending: it runs, but is
    /// on its way out unless started again.
    pub fn is_draining(&self, revision_id: &str) -> bool {
        self.draining().contains_key(revision_id)
    }

    /// Stops a revision that was taken out of its proxy's routes once
    /// `drain` has passed, so that requests forwarded to it before finish
    /// there, whether or not it finishes them on SIGTERM. A start of the
    /// revision meanwhile keeps it running instead. `unroute` runs once the
    /// stop is certain, before any process is signalled: a route to it set
    /// since (a new rollout's baseline) is taken away first.
    pub async fn stop_drained(&self, revision_id: &str, drain: Duration, unroute: impl Future<Output = ()>) {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        self.draining().insert(revision_id.to_string(), ticket);
        tokio::time::sleep(drain).await;
        // `running`'s lock first, as `start` takes them: a start cannot
        // slip in between the check and the removal.
        let ending = {
            let mut running = self.running();
            let mut draining = self.draining();
            if draining.get(revision_id) != Some(&ticket) {
                return;
            }
            draining.remove(revision_id);
            drop(draining);
            self.end_run(&mut running, revision_id)
        };
        // At shutdown the data plane is going away with the routes.
        if !self.closed.load(Ordering::SeqCst) {
            unroute.await;
        }
        if let Some(ending) = ending {
            ending.finish(self).await;
        }
    }
}
