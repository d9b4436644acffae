//! Revocation: a token and every token issued with it, at any depth, in
//! one transaction, with the leases they hold made due. Level by level,
//! each revoked before its children are read: a token being issued with
//! one of them holds its row until it commits (see `issuing`), so it is
//! either among the children read here or is refused. Only live tokens are
//! revoked and walked, so each is taken once, whatever a concurrent
//! revocation took.

use crate::act::Act;
use crate::clock::now_ms;
use crate::tokens::{Target, store};
use crate::{event, leases};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};

/// One transaction of a revocation: how many it revoked, None when the
/// target token does not exist. Its order of locks (a level, then its
/// children) may deadlock with another revocation's or with a batch of
/// issued tokens holding parents; PostgreSQL then aborts one, and the
/// caller runs it again.
pub(super) async fn once(db: &DatabaseConnection, actor: &str, target: &Target, reason: &str) -> Result<Option<usize>, DbErr> {
    let now = now_ms();
    let txn = db.begin().await?;
    let mut frontier = store::live_ids(&txn, target).await?;
    if let Target::Token(id) = target
        && frontier.is_empty()
        && store::find(&txn, id).await?.is_none()
    {
        return Ok(None);
    }
    let mut revoked = Vec::new();
    while !frontier.is_empty() {
        let mut level = Vec::new();
        for chunk in frontier.chunks(paved_store::CHUNK) {
            level.extend(store::revoke_live(&txn, chunk, now, reason).await?);
        }
        let mut next = Vec::new();
        for chunk in level.chunks(paved_store::CHUNK) {
            let acts: Vec<_> = chunk.iter().map(|id| Act::new("token.revoked", actor, id, &[], reason)).collect();
            event::record_all(&txn, &acts).await?;
            next.extend(store::live_children(&txn, chunk).await?);
        }
        revoked.extend(level);
        frontier = next;
    }
    // What the tokens leased goes with them (revoked within a look).
    leases::store::expire_for_tokens(&txn, &revoked, now).await?;
    txn.commit().await?;
    Ok(Some(revoked.len()))
}
