//! The CA's tables: `certificate_authorities` (each CA's certificate, its
//! key sealed under the root key, when it signs from, retired and expires)
//! and `certificates` (each certificate issued to a token, by SHA-256 of
//! its DER, with its enrolment and what replaced it).

use super::certificate::{CertificateAuthority, Enrolment, Issued};
use super::x509::Signed;
use crate::seal::{Keyring, SealError, rewrap_named};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    sea_query::{Alias, Expr, ExprTrait, Order, Query, SelectStatement},
};

const TABLE: &str = "certificate_authorities";
/// Issued certificates that renew themselves.
const CERTIFICATES: &str = "certificates";

/// What CA `id`'s key is sealed for.
pub fn purpose(id: &str) -> String {
    format!("ca-key:{id}")
}

/// A CA as stored, its key still sealed.
pub struct Sealed {
    pub id: String,
    pub certificate_der: Vec<u8>,
    pub sealed_key: Vec<u8>,
    pub root_key_id: String,
    /// When it signs from.
    pub create_time_ms: i64,
}

/// The newest CA signing at `now` (activated), or the newest still to come.
fn newest(now: i64, activated: bool) -> SelectStatement {
    let column = Expr::col(Alias::new("create_time_ms"));
    Query::select()
        .columns(["id", "certificate_der", "sealed_key", "root_key_id", "create_time_ms"].map(Alias::new))
        .from(Alias::new(TABLE))
        .and_where(if activated { column.lte(now) } else { column.gt(now) })
        .order_by(Alias::new("create_time_ms"), Order::Desc)
        .limit(1)
        .to_owned()
}

/// The CA signing at `now`, if any.
pub async fn current(db: &impl ConnectionTrait, now: i64) -> Result<Option<Sealed>, DbErr> {
    let Some(row) = db.query_one(&newest(now, true)).await? else {
        return Ok(None);
    };
    Ok(Some(Sealed {
        id: row.try_get("", "id")?,
        create_time_ms: row.try_get("", "create_time_ms")?,
        sealed_key: row.try_get("", "sealed_key")?,
        root_key_id: row.try_get("", "root_key_id")?,
        certificate_der: row.try_get("", "certificate_der")?,
    }))
}

/// Whether a CA is in the bundle that signs only after `now`.
pub async fn pending(db: &impl ConnectionTrait, now: i64) -> Result<bool, DbErr> {
    Ok(db.query_one(&newest(now, false)).await?.is_some())
}

/// Retires every CA still signing when `ca` starts to, and records `ca`,
/// valid until `expire`.
pub async fn replace(txn: &DatabaseTransaction, ca: &Sealed, expire: i64) -> Result<(), DbErr> {
    let retire = Query::update()
        .table(Alias::new(TABLE))
        .value(Alias::new("retire_time_ms"), ca.create_time_ms)
        .and_where(Expr::col(Alias::new("retire_time_ms")).is_null())
        .to_owned();
    txn.execute(&retire).await?;
    let insert = Query::insert()
        .into_table(Alias::new(TABLE))
        .columns(["id", "certificate_der", "sealed_key", "root_key_id", "create_time_ms", "expire_time_ms"].map(Alias::new))
        .values_panic([
            ca.id.clone().into(),
            ca.certificate_der.clone().into(),
            ca.sealed_key.clone().into(),
            ca.root_key_id.clone().into(),
            ca.create_time_ms.into(),
            expire.into(),
        ])
        .to_owned();
    txn.execute(&insert).await.map(drop)
}

/// The CAs in the bundle at `now` — not expired, and not retired before
/// `retired_after` — current first, each with its certificate (DER).
pub async fn bundle(db: &impl ConnectionTrait, now: i64, retired_after: i64) -> Result<Vec<(Vec<u8>, CertificateAuthority)>, DbErr> {
    let query = Query::select()
        .columns(["id", "certificate_der", "create_time_ms", "expire_time_ms", "retire_time_ms"].map(Alias::new))
        .from(Alias::new(TABLE))
        .and_where(Expr::col(Alias::new("expire_time_ms")).gt(now))
        .and_where(Expr::col(Alias::new("retire_time_ms")).is_null().or(Expr::col(Alias::new("retire_time_ms")).gt(retired_after)))
        .order_by(Alias::new("create_time_ms"), Order::Desc)
        .to_owned();
    db.query_all(&query)
        .await?
        .iter()
        .map(|row| {
            let der: Vec<u8> = row.try_get("", "certificate_der")?;
            let authority = CertificateAuthority {
                id: row.try_get("", "id")?,
                create_time_ms: row.try_get("", "create_time_ms")?,
                expire_time_ms: row.try_get("", "expire_time_ms")?,
                retire_time_ms: row.try_get("", "retire_time_ms")?,
            };
            Ok((der, authority))
        })
        .collect()
}

/// Re-seals CA keys sealed under an older root key: how many, or the first
/// that does not open.
pub async fn rewrap(db: &DatabaseConnection, keys: &Keyring) -> Result<Result<usize, (String, SealError)>, DbErr> {
    rewrap_named(db, keys, (TABLE, "sealed_key"), "id", purpose).await
}

/// Records `signed` as renewable from `enrolment`; rows of certificates
/// expired at `now` go.
pub async fn record(txn: &DatabaseTransaction, signed: &Signed, enrolment: &Enrolment, now: i64) -> Result<(), DbErr> {
    let expired =
        Query::delete().from_table(Alias::new(CERTIFICATES)).and_where(Expr::col(Alias::new("expire_time_ms")).lt(now)).to_owned();
    txn.execute(&expired).await?;
    let insert = Query::insert()
        .into_table(Alias::new(CERTIFICATES))
        .columns(
            ["fingerprint", "spiffe_id", "enrolled_by", "renew_until_ms", "expire_time_ms", "key_hash", "certificate_pem", "authority_id"]
                .map(Alias::new),
        )
        .values_panic([
            signed.fingerprint.clone().into(),
            signed.issued.spiffe_id.clone().into(),
            enrolment.token.clone().into(),
            enrolment.renew_until_ms.into(),
            signed.issued.expire_time_ms.into(),
            signed.key_hash.clone().into(),
            signed.issued.certificate_pem.clone().into(),
            signed.issued.authority_id.clone().into(),
        ])
        .to_owned();
    txn.execute(&insert).await.map(drop)
}

/// A recorded certificate's line: its SPIFFE id, enrolment, and the
/// fingerprint of the certificate that replaced it, if one did.
pub struct Line {
    pub spiffe_id: String,
    pub enrolment: Enrolment,
    pub replaced_by: Option<String>,
}

/// The line of the certificate `fingerprint`, if it was issued to a token.
pub async fn line(db: &impl ConnectionTrait, fingerprint: &str) -> Result<Option<Line>, DbErr> {
    let query = Query::select()
        .columns(["spiffe_id", "enrolled_by", "renew_until_ms", "replaced_by"].map(Alias::new))
        .from(Alias::new(CERTIFICATES))
        .and_where(Expr::col(Alias::new("fingerprint")).eq(fingerprint))
        .to_owned();
    let Some(row) = db.query_one(&query).await? else {
        return Ok(None);
    };
    let enrolment = Enrolment { token: row.try_get("", "enrolled_by")?, renew_until_ms: row.try_get("", "renew_until_ms")? };
    Ok(Some(Line { spiffe_id: row.try_get("", "spiffe_id")?, enrolment, replaced_by: row.try_get("", "replaced_by")? }))
}

/// The certificate `fingerprint`, if it is live at `now`, not replaced,
/// and over the key `key_hash`.
pub async fn live_over(db: &impl ConnectionTrait, fingerprint: &str, key_hash: &str, now: i64) -> Result<Option<Issued>, DbErr> {
    let query = Query::select()
        .columns(["certificate_pem", "spiffe_id", "expire_time_ms", "authority_id"].map(Alias::new))
        .from(Alias::new(CERTIFICATES))
        .and_where(Expr::col(Alias::new("fingerprint")).eq(fingerprint))
        .and_where(Expr::col(Alias::new("key_hash")).eq(key_hash))
        .and_where(Expr::col(Alias::new("replaced_by")).is_null())
        .and_where(Expr::col(Alias::new("expire_time_ms")).gt(now))
        .to_owned();
    let Some(row) = db.query_one(&query).await? else {
        return Ok(None);
    };
    Ok(Some(Issued {
        certificate_pem: row.try_get("", "certificate_pem")?,
        spiffe_id: row.try_get("", "spiffe_id")?,
        expire_time_ms: row.try_get("", "expire_time_ms")?,
        authority_id: row.try_get("", "authority_id")?,
    }))
}

/// Marks `presented` replaced by `by`; false when something replaced it first.
pub async fn replaced(txn: &DatabaseTransaction, presented: &str, by: &str) -> Result<bool, DbErr> {
    let replace = Query::update()
        .table(Alias::new(CERTIFICATES))
        .value(Alias::new("replaced_by"), by)
        .and_where(Expr::col(Alias::new("fingerprint")).eq(presented))
        .and_where(Expr::col(Alias::new("replaced_by")).is_null())
        .to_owned();
    Ok(txn.execute(&replace).await?.rows_affected() > 0)
}
