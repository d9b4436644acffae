//! The `leases` table: one row per lease, written before its role exists,
//! with its revocation's attempts and when to try again.

use super::lease::Lease;
use crate::schema::Leases;
use crate::secrets::store::like_prefix;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbErr,
    sea_query::{Expr, ExprTrait, Order, Query, SelectStatement},
};

/// Leases of these tokens are due now: called in the transaction that
/// revokes the tokens, so a revoked identity keeps no credentials.
pub async fn expire_for_tokens<C: ConnectionTrait>(conn: &C, tokens: &[String], now: i64) -> Result<u64, DbErr> {
    let mut expired = 0;
    for chunk in tokens.chunks(paved_store::CHUNK) {
        let update = Query::update()
            .table(Leases::Table)
            .value(Leases::ExpireTimeMs, now)
            .and_where(Expr::col(Leases::TokenJti).is_in(chunk.iter().map(String::as_str)))
            .and_where(Expr::col(Leases::RevokeTimeMs).is_null())
            .and_where(Expr::col(Leases::ExpireTimeMs).gt(now))
            .to_owned();
        expired += conn.execute(&update).await?.rows_affected();
    }
    Ok(expired)
}

/// Records a new lease.
pub async fn insert(txn: &DatabaseTransaction, lease: &Lease) -> Result<(), DbErr> {
    let insert = Query::insert()
        .into_table(Leases::Table)
        .columns([
            Leases::Id,
            Leases::DatabaseName,
            Leases::RoleName,
            Leases::Subject,
            Leases::TokenJti,
            Leases::IssueTimeMs,
            Leases::ExpireTimeMs,
            Leases::MaxExpireTimeMs,
        ])
        .values_panic([
            lease.lease_id.clone().into(),
            lease.database.clone().into(),
            lease.role.clone().into(),
            lease.subject.clone().into(),
            lease.token_id.clone().into(),
            lease.issue_time_ms.into(),
            lease.expire_time_ms.into(),
            lease.max_expire_time_ms.into(),
        ])
        .to_owned();
    txn.execute(&insert).await.map(drop)
}

pub async fn find(conn: &impl ConnectionTrait, id: &str) -> Result<Option<Lease>, DbErr> {
    let query = select().and_where(Expr::col(Leases::Id).eq(id)).to_owned();
    conn.query_one(&query).await?.as_ref().map(lease).transpose()
}

/// Due for the loop to drop its role, even if revoked already (whoever
/// revoked it may have found no role yet).
pub async fn due_now(conn: &impl ConnectionTrait, id: &str, now: i64) -> Result<(), DbErr> {
    let update = Query::update()
        .table(Leases::Table)
        .value(Leases::ExpireTimeMs, now)
        .value(Leases::RevokeTimeMs, Option::<i64>::None)
        .and_where(Expr::col(Leases::Id).eq(id))
        .to_owned();
    conn.execute(&update).await.map(drop)
}

/// Moves live lease `id`'s expiry to `expire`; false when it is revoked or
/// expired at `now`.
pub async fn extend(txn: &DatabaseTransaction, id: &str, expire: i64, now: i64) -> Result<bool, DbErr> {
    let update = Query::update()
        .table(Leases::Table)
        .value(Leases::ExpireTimeMs, expire)
        .and_where(Expr::col(Leases::Id).eq(id))
        .and_where(Expr::col(Leases::RevokeTimeMs).is_null())
        .and_where(Expr::col(Leases::ExpireTimeMs).gt(now))
        .to_owned();
    Ok(txn.execute(&update).await?.rows_affected() > 0)
}

/// The unrevoked leases named `id`, or under it when `prefix`.
pub async fn unrevoked(conn: &impl ConnectionTrait, id: &str, prefix: bool) -> Result<Vec<Lease>, DbErr> {
    let mut query = select().and_where(Expr::col(Leases::RevokeTimeMs).is_null()).to_owned();
    if prefix {
        query.and_where(Expr::col(Leases::Id).like(like_prefix(id)));
    } else {
        query.and_where(Expr::col(Leases::Id).eq(id));
    }
    conn.query_all(&query).await?.iter().map(lease).collect()
}

/// Up to `limit` unrevoked leases past their expiry whose retry time has
/// come at `now`, the longest due first.
pub async fn due(conn: &impl ConnectionTrait, now: i64, limit: u64) -> Result<Vec<Lease>, DbErr> {
    let query = select()
        .and_where(Expr::col(Leases::RevokeTimeMs).is_null())
        .and_where(Expr::col(Leases::ExpireTimeMs).lte(now))
        .and_where(Expr::col(Leases::NextAttemptMs).lte(now))
        .order_by(Leases::ExpireTimeMs, Order::Asc)
        .limit(limit)
        .to_owned();
    conn.query_all(&query).await?.iter().map(lease).collect()
}

/// Leases under `prefix`, newest first.
pub async fn list(conn: &impl ConnectionTrait, prefix: &str, size: u64, offset: u64) -> Result<Vec<Lease>, DbErr> {
    let query = select()
        .and_where(Expr::col(Leases::Id).like(like_prefix(prefix)))
        .order_by(Leases::IssueTimeMs, Order::Desc)
        .order_by(Leases::Id, Order::Asc)
        .limit(size)
        .offset(offset)
        .to_owned();
    conn.query_all(&query).await?.iter().map(lease).collect()
}

/// How a revocation went.
pub enum Outcome<'a> {
    /// The role is verified gone.
    Revoked,
    /// It failed with `error` (attempt `attempts`); the next try is due at
    /// `next_attempt`, and the lease is due no later than `expire`.
    Failed { attempts: i64, next_attempt: i64, error: &'a str, expire: i64 },
}

/// Records how the revocation of `id` at `now` went.
pub async fn revoked(txn: &DatabaseTransaction, id: &str, now: i64, outcome: Outcome<'_>) -> Result<(), DbErr> {
    let mut update = Query::update().table(Leases::Table).and_where(Expr::col(Leases::Id).eq(id)).to_owned();
    match outcome {
        Outcome::Revoked => {
            update.value(Leases::RevokeTimeMs, now).value(Leases::LastError, Option::<String>::None);
        }
        Outcome::Failed { attempts, next_attempt, error, expire } => {
            update
                .value(Leases::RevokeAttempts, attempts)
                .value(Leases::NextAttemptMs, next_attempt)
                .value(Leases::LastError, error)
                // Due, if it was not: retried by the loop.
                .value(Leases::ExpireTimeMs, Ord::min(expire, now));
        }
    }
    txn.execute(&update).await.map(drop)
}

fn select() -> SelectStatement {
    Query::select()
        .columns([
            Leases::Id,
            Leases::DatabaseName,
            Leases::RoleName,
            Leases::Subject,
            Leases::TokenJti,
            Leases::IssueTimeMs,
            Leases::ExpireTimeMs,
            Leases::MaxExpireTimeMs,
            Leases::RevokeTimeMs,
            Leases::RevokeAttempts,
            Leases::LastError,
        ])
        .from(Leases::Table)
        .to_owned()
}

fn lease(row: &sea_orm::QueryResult) -> Result<Lease, DbErr> {
    let attempts: i64 = row.try_get("", "revoke_attempts")?;
    Ok(Lease {
        lease_id: row.try_get("", "id")?,
        database: row.try_get("", "database_name")?,
        role: row.try_get("", "role_name")?,
        subject: row.try_get("", "subject")?,
        token_id: row.try_get("", "token_jti")?,
        issue_time_ms: row.try_get("", "issue_time_ms")?,
        expire_time_ms: row.try_get("", "expire_time_ms")?,
        max_expire_time_ms: row.try_get("", "max_expire_time_ms")?,
        revoke_time_ms: row.try_get("", "revoke_time_ms")?,
        revoke_attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        last_error: row.try_get::<Option<String>>("", "last_error")?.unwrap_or_default(),
    })
}
