//! The `bootstrap_tokens` table: a bootstrap token by the SHA-256 of its
//! value (never the value), what it is bound to, and when it was spent,
//! replayed and exchanged for which identity token.

use crate::binding::Binding;
use crate::schema::BootstrapTokens;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbErr,
    sea_query::{Expr, ExprTrait, Query},
};

/// A bootstrap token as the exchange reads it.
pub struct Stored {
    pub environment: String,
    pub workload: String,
    pub revision_id: String,
    /// What the exchange must present (empty: bound to no digest).
    pub artifact_digest: String,
    scopes: String,
    pub used_time_ms: Option<i64>,
}

impl Stored {
    /// The scopes its identity gets.
    pub fn scopes(&self) -> Result<Vec<String>, DbErr> {
        serde_json::from_str(&self.scopes).map_err(|e| DbErr::Custom(format!("bootstrap scopes: {e}")))
    }
}

/// Records bootstrap token `id` for `binding`, issued at `now`, valid until `expire`.
pub async fn insert(txn: &DatabaseTransaction, id: &str, binding: &Binding, now: i64, expire: i64) -> Result<(), DbErr> {
    let insert = Query::insert()
        .into_table(BootstrapTokens::Table)
        .columns([
            BootstrapTokens::Id,
            BootstrapTokens::Environment,
            BootstrapTokens::Workload,
            BootstrapTokens::RevisionId,
            BootstrapTokens::ArtifactDigest,
            BootstrapTokens::Scopes,
            BootstrapTokens::IssueTimeMs,
            BootstrapTokens::ExpireTimeMs,
        ])
        .values_panic([
            id.into(),
            binding.environment.clone().into(),
            binding.workload.clone().into(),
            binding.revision_id.clone().into(),
            binding.artifact_digest.clone().into(),
            serde_json::to_string(&binding.scopes()).unwrap_or_default().into(),
            now.into(),
            expire.into(),
        ])
        .to_owned();
    txn.execute(&insert).await.map(drop)
}

/// Spends `id` at `now` if it is unspent and unexpired; true when this call
/// spent it. Used and checked in one statement: two racing exchanges cannot
/// both win.
pub async fn spend(conn: &impl ConnectionTrait, id: &str, now: i64) -> Result<bool, DbErr> {
    let claim = Query::update()
        .table(BootstrapTokens::Table)
        .value(BootstrapTokens::UsedTimeMs, now)
        .and_where(Expr::col(BootstrapTokens::Id).eq(id))
        .and_where(Expr::col(BootstrapTokens::UsedTimeMs).is_null())
        .and_where(Expr::col(BootstrapTokens::ExpireTimeMs).gt(now))
        .to_owned();
    Ok(conn.execute(&claim).await?.rows_affected() == 1)
}

pub async fn find(conn: &impl ConnectionTrait, id: &str) -> Result<Option<Stored>, DbErr> {
    let query = Query::select()
        .columns([
            BootstrapTokens::Environment,
            BootstrapTokens::Workload,
            BootstrapTokens::RevisionId,
            BootstrapTokens::ArtifactDigest,
            BootstrapTokens::Scopes,
            BootstrapTokens::UsedTimeMs,
        ])
        .from(BootstrapTokens::Table)
        .and_where(Expr::col(BootstrapTokens::Id).eq(id))
        .to_owned();
    let Some(row) = conn.query_one(&query).await? else {
        return Ok(None);
    };
    Ok(Some(Stored {
        environment: row.try_get("", "environment")?,
        workload: row.try_get("", "workload")?,
        revision_id: row.try_get("", "revision_id")?,
        artifact_digest: row.try_get("", "artifact_digest")?,
        scopes: row.try_get("", "scopes")?,
        used_time_ms: row.try_get("", "used_time_ms")?,
    }))
}

/// Marks `id` replayed at `now`.
pub async fn replayed(conn: &impl ConnectionTrait, id: &str, now: i64) -> Result<(), DbErr> {
    let mark = Query::update()
        .table(BootstrapTokens::Table)
        .value(BootstrapTokens::ReplayTimeMs, now)
        .and_where(Expr::col(BootstrapTokens::Id).eq(id))
        .to_owned();
    conn.execute(&mark).await.map(drop)
}

/// Makes `id` unspent again, unless it was replayed.
pub async fn unspend(conn: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    let unclaim = Query::update()
        .table(BootstrapTokens::Table)
        .value(BootstrapTokens::UsedTimeMs, Option::<i64>::None)
        .and_where(Expr::col(BootstrapTokens::Id).eq(id))
        .and_where(Expr::col(BootstrapTokens::ReplayTimeMs).is_null())
        .to_owned();
    conn.execute(&unclaim).await.map(drop)
}

/// Records `identity` (a token id) as what `id` was exchanged for, unless
/// it was replayed; false when it was.
pub async fn bind(conn: &impl ConnectionTrait, id: &str, identity: &str) -> Result<bool, DbErr> {
    let bind = Query::update()
        .table(BootstrapTokens::Table)
        .value(BootstrapTokens::IdentityJti, identity)
        .and_where(Expr::col(BootstrapTokens::Id).eq(id))
        .and_where(Expr::col(BootstrapTokens::ReplayTimeMs).is_null())
        .to_owned();
    Ok(conn.execute(&bind).await?.rows_affected() > 0)
}
