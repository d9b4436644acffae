//! Issued tokens on their way to the database: as many as are waiting (up
//! to [`BATCH`]) are recorded with their events in one transaction. A
//! commit per token would bound issuing at the commit rate (one connection
//! on SQLite); each caller still waits for its own record's commit.

use crate::act::Act;
use crate::event;
use crate::tokens::{Grant, store};
use paved_stream::outbox::Relay;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use std::collections::HashSet;
use tokio::sync::{mpsc, oneshot};

/// Tokens recorded in one transaction at most.
const BATCH: usize = 256;

/// A token to record; `done` hears when it is committed.
pub(super) struct Issued {
    pub jti: String,
    pub actor: String,
    pub grant: Grant,
    pub now: i64,
    pub expire: i64,
    pub renewable_until: i64,
    pub done: oneshot::Sender<Result<(), NotRecorded>>,
}

/// Why a token was not recorded.
pub(super) enum NotRecorded {
    /// The token that asked for it was revoked before it committed.
    ParentRevoked(String),
    Database(String),
}

/// The queue of tokens to record; its writer runs until the last sender is
/// dropped. Must be called within a Tokio runtime.
pub(super) fn start(db: DatabaseConnection, relay: Relay) -> mpsc::Sender<Issued> {
    let (issued, queue) = mpsc::channel(4 * BATCH);
    tokio::spawn(write(db, relay, queue));
    issued
}

async fn write(db: DatabaseConnection, relay: Relay, mut queue: mpsc::Receiver<Issued>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        let result = paved_store::retry_conflicts(|| record(&db, &batch)).await;
        if let Err(e) = &result {
            tracing::warn!(error = %e, tokens = batch.len(), "cannot record issued tokens");
        }
        relay.wake();
        for issued in batch.drain(..) {
            let outcome = match &result {
                Err(e) => Err(NotRecorded::Database(e.to_string())),
                Ok(revoked) => match revoked_parent(&issued, revoked) {
                    Some(parent) => Err(NotRecorded::ParentRevoked(parent.to_string())),
                    None => Ok(()),
                },
            };
            let _ = issued.done.send(outcome);
        }
    }
}

/// The parent of `issued` if it is among `revoked`: such a token is refused.
fn revoked_parent<'a>(issued: &'a Issued, revoked: &HashSet<String>) -> Option<&'a str> {
    issued.grant.parent.as_deref().filter(|p| revoked.contains(*p))
}

/// Records the tokens of `batch` whose parent is not revoked; returns the
/// revoked parents. The parents' rows are held until the commit (see
/// `tokens::store::revoked_among`), so a revocation of one waits for it and
/// then finds its new children.
async fn record(db: &DatabaseConnection, batch: &[Issued]) -> Result<HashSet<String>, DbErr> {
    let txn = db.begin().await?;
    let parents: Vec<&str> = batch.iter().filter_map(|i| i.grant.parent.as_deref()).collect();
    let revoked = store::revoked_among(&txn, &parents).await?;
    let (recorded, refused): (Vec<&Issued>, Vec<&Issued>) = batch.iter().partition(|i| revoked_parent(i, &revoked).is_none());
    let rows: Vec<_> = recorded
        .iter()
        .map(|i| store::Issued {
            jti: &i.jti,
            grant: &i.grant,
            issue_ms: i.now,
            expire_ms: i.expire,
            renewable_until_ms: i.renewable_until,
        })
        .collect();
    store::insert(&txn, &rows).await?;
    let issued = recorded.iter().map(|i| Act::new("token.issued", &i.actor, &i.jti, &i.grant.scopes, "").for_subject(&i.grant.subject));
    let denied = refused.iter().filter_map(|i| {
        let parent = revoked_parent(i, &revoked)?;
        Some(Act::new("token.denied", &i.actor, parent, &i.grant.scopes, "the token that asked is revoked").for_subject(&i.grant.subject))
    });
    event::record_all(&txn, &issued.chain(denied).collect::<Vec<_>>()).await?;
    txn.commit().await?;
    Ok(revoked)
}
