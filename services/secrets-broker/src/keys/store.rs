//! The `signing_keys` table: each key's public half, its seed sealed under
//! the root key, when it signs from (`create_time_ms`), when it retired and
//! when it leaves the key set.

use super::key_set::PublicKey;
use crate::schema::SigningKeys;
use crate::seal::{Keyring, SealError, rewrap_named};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    sea_query::{Expr, ExprTrait, Order, Query, SelectStatement},
};

/// A key as stored, its seed still sealed.
pub struct Sealed {
    pub kid: String,
    pub sealed_seed: Vec<u8>,
    pub root_key_id: String,
    pub create_time_ms: i64,
}

/// What the seed of key `kid` is sealed for.
pub fn purpose(kid: &str) -> String {
    format!("signing-key:{kid}")
}

/// The newest key signing at `now` (activated), or the newest still to
/// come (not activated).
fn newest(now: i64, activated: bool) -> SelectStatement {
    let mut q = Query::select()
        .columns([SigningKeys::Kid, SigningKeys::SealedSeed, SigningKeys::RootKeyId, SigningKeys::CreateTimeMs])
        .from(SigningKeys::Table)
        .order_by(SigningKeys::CreateTimeMs, Order::Desc)
        .limit(1)
        .to_owned();
    let column = Expr::col(SigningKeys::CreateTimeMs);
    q.and_where(if activated { column.lte(now) } else { column.gt(now) });
    q
}

/// Whether a key is published that signs only after `now`.
pub async fn pending(db: &impl ConnectionTrait, now: i64) -> Result<bool, DbErr> {
    Ok(db.query_one(&newest(now, false)).await?.is_some())
}

/// The key signing at `now`, if any.
pub async fn current(db: &impl ConnectionTrait, now: i64) -> Result<Option<Sealed>, DbErr> {
    let Some(row) = db.query_one(&newest(now, true)).await? else {
        return Ok(None);
    };
    Ok(Some(Sealed {
        kid: row.try_get("", "kid")?,
        sealed_seed: row.try_get("", "sealed_seed")?,
        root_key_id: row.try_get("", "root_key_id")?,
        create_time_ms: row.try_get("", "create_time_ms")?,
    }))
}

/// Retires every key still signing at `activate_at` (they leave the key set
/// at `drop_at`) and records `key`, signing from then.
pub async fn replace(txn: &DatabaseTransaction, key: &Sealed, public_key: Vec<u8>, drop_at: i64) -> Result<(), DbErr> {
    let retire = Query::update()
        .table(SigningKeys::Table)
        .value(SigningKeys::RetireTimeMs, key.create_time_ms)
        .value(SigningKeys::DropTimeMs, drop_at)
        .and_where(Expr::col(SigningKeys::RetireTimeMs).is_null())
        .to_owned();
    txn.execute(&retire).await?;
    let insert = Query::insert()
        .into_table(SigningKeys::Table)
        .columns([SigningKeys::Kid, SigningKeys::PublicKey, SigningKeys::SealedSeed, SigningKeys::RootKeyId, SigningKeys::CreateTimeMs])
        .values_panic([
            key.kid.clone().into(),
            public_key.into(),
            key.sealed_seed.clone().into(),
            key.root_key_id.clone().into(),
            key.create_time_ms.into(),
        ])
        .to_owned();
    txn.execute(&insert).await.map(drop)
}

/// The keys in the key set at `now` (not yet dropped), oldest first.
pub async fn published(db: &impl ConnectionTrait, now: i64) -> Result<Vec<PublicKey>, DbErr> {
    let keys = Query::select()
        .columns([SigningKeys::Kid, SigningKeys::PublicKey, SigningKeys::CreateTimeMs, SigningKeys::RetireTimeMs])
        .from(SigningKeys::Table)
        .cond_where(Expr::col(SigningKeys::DropTimeMs).is_null().or(Expr::col(SigningKeys::DropTimeMs).gt(now)))
        .order_by(SigningKeys::CreateTimeMs, Order::Asc)
        .to_owned();
    db.query_all(&keys)
        .await?
        .iter()
        .map(|row| {
            Ok(PublicKey {
                key_id: row.try_get("", "kid")?,
                ed25519: row.try_get("", "public_key")?,
                create_time_ms: row.try_get("", "create_time_ms")?,
                retire_time_ms: row.try_get("", "retire_time_ms")?,
            })
        })
        .collect()
}

/// Re-seals seeds sealed under an older root key: how many, or the first
/// that does not open.
pub async fn rewrap(db: &DatabaseConnection, keys: &Keyring) -> Result<Result<usize, (String, SealError)>, DbErr> {
    rewrap_named(db, keys, (SigningKeys::Table, SigningKeys::SealedSeed, SigningKeys::RootKeyId), SigningKeys::Kid, purpose).await
}
