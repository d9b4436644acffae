//! The CA's tables: `certificate_authorities` (each CA's certificate, its
//! key sealed under the root key, when it signs from, retired and expires)
//! and `certificates` (each certificate issued to a token, by SHA-256 of
//! its DER, with its enrolment and what replaced it).

use super::certificate::{CertificateAuthority, Enrolment, Issued};
use super::x509::Signed;
use crate::schema::{CertificateAuthorities, Certificates};
use crate::seal::{Keyring, SealError, rewrap_named};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    sea_query::{Expr, ExprTrait, Order, Query, SelectStatement},
};

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
    let column = Expr::col(CertificateAuthorities::CreateTimeMs);
    Query::select()
        .columns([
            CertificateAuthorities::Id,
            CertificateAuthorities::CertificateDer,
            CertificateAuthorities::SealedKey,
            CertificateAuthorities::RootKeyId,
            CertificateAuthorities::CreateTimeMs,
        ])
        .from(CertificateAuthorities::Table)
        .and_where(if activated { column.lte(now) } else { column.gt(now) })
        .order_by(CertificateAuthorities::CreateTimeMs, Order::Desc)
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
        .table(CertificateAuthorities::Table)
        .value(CertificateAuthorities::RetireTimeMs, ca.create_time_ms)
        .and_where(Expr::col(CertificateAuthorities::RetireTimeMs).is_null())
        .to_owned();
    txn.execute(&retire).await?;
    let insert = Query::insert()
        .into_table(CertificateAuthorities::Table)
        .columns([
            CertificateAuthorities::Id,
            CertificateAuthorities::CertificateDer,
            CertificateAuthorities::SealedKey,
            CertificateAuthorities::RootKeyId,
            CertificateAuthorities::CreateTimeMs,
            CertificateAuthorities::ExpireTimeMs,
        ])
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
        .columns([
            CertificateAuthorities::Id,
            CertificateAuthorities::CertificateDer,
            CertificateAuthorities::CreateTimeMs,
            CertificateAuthorities::ExpireTimeMs,
            CertificateAuthorities::RetireTimeMs,
        ])
        .from(CertificateAuthorities::Table)
        .and_where(Expr::col(CertificateAuthorities::ExpireTimeMs).gt(now))
        .and_where(
            Expr::col(CertificateAuthorities::RetireTimeMs).is_null().or(Expr::col(CertificateAuthorities::RetireTimeMs).gt(retired_after)),
        )
        .order_by(CertificateAuthorities::CreateTimeMs, Order::Desc)
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
    let at = (CertificateAuthorities::Table, CertificateAuthorities::SealedKey, CertificateAuthorities::RootKeyId);
    rewrap_named(db, keys, at, CertificateAuthorities::Id, purpose).await
}

/// Records `signed` as renewable from `enrolment`; rows of certificates
/// expired at `now` go.
pub async fn record(txn: &DatabaseTransaction, signed: &Signed, enrolment: &Enrolment, now: i64) -> Result<(), DbErr> {
    let expired = Query::delete().from_table(Certificates::Table).and_where(Expr::col(Certificates::ExpireTimeMs).lt(now)).to_owned();
    txn.execute(&expired).await?;
    let insert = Query::insert()
        .into_table(Certificates::Table)
        .columns([
            Certificates::Fingerprint,
            Certificates::SpiffeId,
            Certificates::EnrolledBy,
            Certificates::RenewUntilMs,
            Certificates::ExpireTimeMs,
            Certificates::KeyHash,
            Certificates::CertificatePem,
            Certificates::AuthorityId,
        ])
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
        .columns([Certificates::SpiffeId, Certificates::EnrolledBy, Certificates::RenewUntilMs, Certificates::ReplacedBy])
        .from(Certificates::Table)
        .and_where(Expr::col(Certificates::Fingerprint).eq(fingerprint))
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
        .columns([Certificates::CertificatePem, Certificates::SpiffeId, Certificates::ExpireTimeMs, Certificates::AuthorityId])
        .from(Certificates::Table)
        .and_where(Expr::col(Certificates::Fingerprint).eq(fingerprint))
        .and_where(Expr::col(Certificates::KeyHash).eq(key_hash))
        .and_where(Expr::col(Certificates::ReplacedBy).is_null())
        .and_where(Expr::col(Certificates::ExpireTimeMs).gt(now))
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
        .table(Certificates::Table)
        .value(Certificates::ReplacedBy, by)
        .and_where(Expr::col(Certificates::Fingerprint).eq(presented))
        .and_where(Expr::col(Certificates::ReplacedBy).is_null())
        .to_owned();
    Ok(txn.execute(&replace).await?.rows_affected() > 0)
}
