//! Events of what changed nothing — reads, denials — recorded without the
//! caller waiting for a commit: each is queued and a writer commits as many
//! as wait in one transaction, retrying until written (they are the audit
//! trail of reads). A commit per read would bound reads at the commit
//! rate. A stopping broker flushes the queue.

use crate::{act::Act, event};
use paved_stream::outbox::Relay;
use sea_orm::{DatabaseConnection, TransactionTrait};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Events written in one transaction at most.
const BATCH: usize = 256;
/// How long [`Recorder::record`] waits for a place in the queue.
const RECORD_WAIT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

struct Inner {
    queue: tokio::sync::mpsc::Sender<Act>,
    /// How many events were queued, and how many of them are committed.
    queued: AtomicU64,
    committed: tokio::sync::watch::Receiver<u64>,
}

impl Recorder {
    /// Must be called within a Tokio runtime: it starts the writer (it ends
    /// when the last clone is dropped).
    pub fn new(db: DatabaseConnection, relay: Relay) -> Self {
        let (queue, events) = tokio::sync::mpsc::channel(4 * BATCH);
        let (committed_tx, committed) = tokio::sync::watch::channel(0);
        tokio::spawn(write(db, relay, events, committed_tx));
        Self { inner: Arc::new(Inner { queue, queued: Default::default(), committed }) }
    }

    /// Records what changed nothing (a read, a denial): the caller does not
    /// wait for the commit, only for a place in the queue, and for no longer
    /// than `RECORD_WAIT`. False when the event could not be queued (the
    /// database has been away long enough to fill the queue): a caller that
    /// must not act unrecorded, such as a read, refuses.
    pub async fn record(&self, action: &str, actor: &str, target: &str, reason: &str) -> bool {
        self.record_act(Act::new(action, actor, target, &[], reason)).await
    }

    /// [`Recorder::record`] of an act made by the caller (one with a
    /// `for_subject`).
    pub async fn record_act(&self, act: Act) -> bool {
        let (action, target) = (act.action.clone(), act.target.clone());
        match self.inner.queue.send_timeout(act, RECORD_WAIT).await {
            Ok(()) => {
                self.inner.queued.fetch_add(1, Ordering::SeqCst);
                true
            }
            Err(_) => {
                tracing::error!(action = %action, target = %target, "the event queue is full or stopped: event not recorded");
                false
            }
        }
    }

    /// Waits (up to `limit`) until every event queued so far is committed:
    /// at shutdown, so that the last reads are not lost with the process.
    pub async fn flush(&self, limit: Duration) -> bool {
        let queued = self.inner.queued.load(Ordering::SeqCst);
        let mut committed = self.inner.committed.clone();
        tokio::time::timeout(limit, committed.wait_for(|n| *n >= queued)).await.is_ok_and(|r| r.is_ok())
    }
}

/// Writes queued events, as many as wait, in one transaction each time;
/// counts them in `committed`.
async fn write(
    db: DatabaseConnection,
    relay: Relay,
    mut queue: tokio::sync::mpsc::Receiver<Act>,
    committed: tokio::sync::watch::Sender<u64>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let mut backoff = paved_stream::consumer::Backoff::default();
        // Retried until written: these events are the audit trail of reads.
        loop {
            let written = async {
                let txn = db.begin().await?;
                event::record_all(&txn, &batch).await?;
                txn.commit().await
            };
            match written.await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, events = batch.len(), "cannot record events; retrying");
                    backoff.wait().await;
                }
            }
        }
        committed.send_modify(|n| *n += batch.len() as u64);
        batch.clear();
        relay.wake();
    }
}
