//! The `tokens` table: every token ever issued, by id (`jti`), with the
//! token it was issued from (`parent_jti`, walked through the
//! `tokens_by_parent` index when a revocation takes the children along).

use super::{Grant, Revoked, Target, Token};
use crate::clock::ms;
use crate::schema::Tokens;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbErr,
    sea_query::{Expr, ExprTrait, Order, Query, SelectStatement},
};
use std::collections::HashSet;

/// A token to record as issued.
pub struct Issued<'a> {
    pub jti: &'a str,
    pub grant: &'a Grant,
    pub issue_ms: i64,
    pub expire_ms: i64,
    pub renewable_until_ms: i64,
}

/// Records `issued`, in one statement.
pub async fn insert(txn: &DatabaseTransaction, issued: &[Issued<'_>]) -> Result<(), DbErr> {
    if issued.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert()
        .into_table(Tokens::Table)
        .columns([
            Tokens::Jti,
            Tokens::ParentJti,
            Tokens::Subject,
            Tokens::Audience,
            Tokens::Scopes,
            Tokens::TtlMs,
            Tokens::IssueTimeMs,
            Tokens::ExpireTimeMs,
            Tokens::RenewableUntilMs,
            Tokens::ArtifactDigest,
        ])
        .to_owned();
    for i in issued {
        insert.values_panic([
            i.jti.into(),
            i.grant.parent.clone().into(),
            i.grant.subject.clone().into(),
            i.grant.audience.clone().into(),
            serde_json::to_string(&i.grant.scopes).unwrap_or_default().into(),
            ms(i.grant.ttl).into(),
            i.issue_ms.into(),
            i.expire_ms.into(),
            i.renewable_until_ms.into(),
            Some(i.grant.artifact_digest.clone()).filter(|d| !d.is_empty()).into(),
        ]);
    }
    txn.execute(&insert).await.map(drop)
}

/// The record of token `jti`.
pub async fn find(conn: &impl ConnectionTrait, jti: &str) -> Result<Option<Token>, DbErr> {
    let query = token_query().and_where(Expr::col(Tokens::Jti).eq(jti)).to_owned();
    conn.query_one(&query).await?.as_ref().map(token).transpose()
}

/// Tokens (of `subject`, unless empty) by issue time, newest first.
pub async fn list(conn: &impl ConnectionTrait, subject: &str, size: u64, offset: u64) -> Result<Vec<Token>, DbErr> {
    let mut query = token_query();
    if !subject.is_empty() {
        query.and_where(Expr::col(Tokens::Subject).eq(subject));
    }
    query.order_by(Tokens::IssueTimeMs, Order::Desc).order_by(Tokens::Jti, Order::Asc).limit(size).offset(offset);
    conn.query_all(&query).await?.iter().map(token).collect()
}

/// How long token `jti` was issued for (ms), if it is recorded.
pub async fn issued_ttl_ms(conn: &impl ConnectionTrait, jti: &str) -> Result<Option<i64>, DbErr> {
    let q = Query::select().column(Tokens::TtlMs).from(Tokens::Table).and_where(Expr::col(Tokens::Jti).eq(jti)).to_owned();
    match conn.query_one(&q).await? {
        Some(row) => Ok(Some(row.try_get("", "ttl_ms")?)),
        None => Ok(None),
    }
}

/// Moves the recorded expiry of live token `jti` to `expire_ms`; false
/// when it is revoked (or gone).
pub async fn extend(txn: &DatabaseTransaction, jti: &str, expire_ms: i64) -> Result<bool, DbErr> {
    let update = Query::update()
        .table(Tokens::Table)
        .value(Tokens::ExpireTimeMs, expire_ms)
        .and_where(Expr::col(Tokens::Jti).eq(jti))
        .and_where(Expr::col(Tokens::RevokeTimeMs).is_null())
        .to_owned();
    Ok(txn.execute(&update).await?.rows_affected() > 0)
}

/// The ids of the live tokens `target` names.
pub async fn live_ids(txn: &DatabaseTransaction, target: &Target) -> Result<Vec<String>, DbErr> {
    let live = match target {
        Target::Token(id) => live(Expr::col(Tokens::Jti).eq(id.as_str())),
        Target::Subject(subject) => live(Expr::col(Tokens::Subject).eq(subject.as_str())),
        Target::IssuedFrom(parent) => children(std::slice::from_ref(parent)),
    };
    txn.query_all(&live).await?.iter().map(|r| r.try_get("", "jti")).collect()
}

/// Revokes those of `ids` still live (at most [`paved_store::CHUNK`]);
/// returns the ids it revoked.
pub async fn revoke_live(txn: &DatabaseTransaction, ids: &[String], now: i64, reason: &str) -> Result<Vec<String>, DbErr> {
    let update = Query::update()
        .table(Tokens::Table)
        .value(Tokens::RevokeTimeMs, now)
        .value(Tokens::RevokeReason, reason)
        .and_where(Expr::col(Tokens::Jti).is_in(ids.iter().map(String::as_str)))
        .and_where(Expr::col(Tokens::RevokeTimeMs).is_null())
        .returning_col(Tokens::Jti)
        .to_owned();
    txn.query_all(&update).await?.iter().map(|row| row.try_get::<String>("", "jti")).collect()
}

/// The ids of the live tokens issued with any of `parents` (at most
/// [`paved_store::CHUNK`]).
pub async fn live_children(txn: &DatabaseTransaction, parents: &[String]) -> Result<Vec<String>, DbErr> {
    txn.query_all(&children(parents)).await?.iter().map(|row| row.try_get::<String>("", "jti")).collect()
}

/// Which of `tokens` are revoked. Their rows are held (FOR SHARE on
/// PostgreSQL; SQLite runs one transaction at a time) until `txn` ends, so
/// what `txn` then writes for a token that is not revoked (a child token, a
/// lease) is committed before a revocation of it reads what to take along.
/// Rows are locked in id order, whatever the plan, so that two such
/// transactions never wait on each other crosswise.
pub async fn revoked_among(txn: &DatabaseTransaction, tokens: &[&str]) -> Result<HashSet<String>, DbErr> {
    let mut tokens = tokens.to_vec();
    tokens.sort_unstable();
    tokens.dedup();
    let mut revoked = HashSet::new();
    for chunk in tokens.chunks(paved_store::CHUNK) {
        let mut query = Query::select()
            .columns([Tokens::Jti, Tokens::RevokeTimeMs])
            .from(Tokens::Table)
            .and_where(Expr::col(Tokens::Jti).is_in(chunk.iter().copied()))
            .order_by(Tokens::Jti, Order::Asc)
            .to_owned();
        if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
            query.lock_shared();
        }
        for row in txn.query_all(&query).await? {
            if row.try_get::<Option<i64>>("", "revoke_time_ms")?.is_some() {
                revoked.insert(row.try_get::<String>("", "jti")?);
            }
        }
    }
    Ok(revoked)
}

/// The revoked tokens that may still be presented at `now`: not expired
/// (with the leeway verifiers allow), by id.
pub async fn revoked_unexpired(conn: &impl ConnectionTrait, now: i64) -> Result<Vec<Revoked>, DbErr> {
    let revoked = Query::select()
        .columns([Tokens::Jti, Tokens::ExpireTimeMs])
        .from(Tokens::Table)
        .and_where(Expr::col(Tokens::RevokeTimeMs).is_not_null())
        .and_where(Expr::col(Tokens::ExpireTimeMs).gt(now - paved_token::LEEWAY_SECS * 1000))
        .order_by(Tokens::Jti, Order::Asc)
        .to_owned();
    conn.query_all(&revoked)
        .await?
        .iter()
        .map(|row| Ok(Revoked { token_id: row.try_get("", "jti")?, expire_time_ms: row.try_get("", "expire_time_ms")? }))
        .collect()
}

/// The ids of live tokens where `condition` holds.
fn live(condition: Expr) -> SelectStatement {
    Query::select()
        .column(Tokens::Jti)
        .from(Tokens::Table)
        .and_where(condition)
        .and_where(Expr::col(Tokens::RevokeTimeMs).is_null())
        .to_owned()
}

/// The live tokens issued with any of `parents` (served by `tokens_by_parent`).
pub fn children(parents: &[String]) -> SelectStatement {
    live(Expr::col(Tokens::ParentJti).is_in(parents.iter().map(String::as_str)))
}

fn token_query() -> SelectStatement {
    Query::select()
        .columns([
            Tokens::Jti,
            Tokens::Subject,
            Tokens::Audience,
            Tokens::Scopes,
            Tokens::IssueTimeMs,
            Tokens::ExpireTimeMs,
            Tokens::RenewableUntilMs,
            Tokens::RevokeTimeMs,
            Tokens::ArtifactDigest,
        ])
        .from(Tokens::Table)
        .to_owned()
}

fn token(row: &sea_orm::QueryResult) -> Result<Token, DbErr> {
    let scopes: String = row.try_get("", "scopes")?;
    Ok(Token {
        token_id: row.try_get("", "jti")?,
        subject: row.try_get("", "subject")?,
        scopes: serde_json::from_str(&scopes).map_err(|e| DbErr::Custom(format!("scopes of a token: {e}")))?,
        audience: row.try_get("", "audience")?,
        issue_time_ms: row.try_get("", "issue_time_ms")?,
        expire_time_ms: row.try_get("", "expire_time_ms")?,
        renewable_until_ms: row.try_get("", "renewable_until_ms")?,
        revoke_time_ms: row.try_get("", "revoke_time_ms")?,
        artifact_digest: row.try_get::<Option<String>>("", "artifact_digest")?.unwrap_or_default(),
    })
}
