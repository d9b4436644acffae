//! The internal CA: short-lived X.509 certificates whose one URI SAN is a
//! SPIFFE id (`spiffe://paved/<env>/<workload>`), for mTLS between
//! services. The caller keeps its private key and sends a CSR; the CA's own
//! key is sealed under the root key, like the signing keys.
//!
//! Rotation mirrors the signing keys': a new CA is in the trust bundle
//! [`PUBLISH_AHEAD`] before it signs, so every peer trusts it first; the
//! one before stays in the bundle until the last certificate it signed has
//! expired ([`MAX_TTL`] after its retirement).

use crate::authority::event;
use crate::seal::{Keyring, SealError, rewrap_named};
use crate::{ms, now_ms};
use paved_proto::{secrets_broker::v1::CertificateAuthority, timestamp_from_millis};
use paved_stream::outbox::Relay;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, Order, Query},
};
use std::{sync::Arc, time::Duration};

pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// A CA signs for this long before a new one replaces it.
pub const ROTATE_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);
/// A CA's own validity: long past its rotation, so that a broker that was
/// down for a while still has a valid CA to rotate from.
const LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long a new CA is in the bundle before it signs: long enough for every
/// peer to refresh ([`paved_grpc::tls::BUNDLE_REFRESH`]) and to absorb clock
/// skew between replicas.
pub const PUBLISH_AHEAD: Duration = Duration::from_secs(30);
/// Certificates start this much in the past: clocks differ.
const BACKDATE: Duration = Duration::from_secs(60);
const TABLE: &str = "certificate_authorities";
/// Issued certificates that renew themselves (see [`Enrolment`]).
const CERTIFICATES: &str = "certificates";

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("CA key {0}: {1}")]
    Sealed(String, SealError),
    #[error("invalid CSR: {0}")]
    Csr(String),
    #[error("cannot sign: {0}")]
    Sign(String),
    #[error("this certificate was not enrolled here with a token (or has expired): enrol with one")]
    NotEnrolled,
    #[error("this certificate of {0} was renewed already and renews nothing more: a copy of its key may be in use")]
    Replaced(String),
    #[error("the token {1} that enrolled {0} is revoked: enrol again with a new one")]
    EnrolmentRevoked(String, String),
    #[error("{0} renews no further (its enrolling token's renewable_until, or a day, has passed): enrol again with a new one")]
    EnrolmentOver(String),
}

/// What a certificate renews from: the token that enrolled its line and,
/// unless enrolled for good, until when renewals may go. Carried from each
/// certificate to the one renewing it.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The enrolling token's id: once it is revoked (also through an
    /// ancestor), renewals stop.
    pub token: String,
    /// None: renewable while the enrolment stands.
    pub renew_until_ms: Option<i64>,
}

/// A certificate issued: the leaf (PEM), its SPIFFE id, expiry and CA.
#[derive(Debug, Clone)]
pub struct Issued {
    pub certificate_pem: String,
    pub spiffe_id: String,
    pub expire_time_ms: i64,
    pub authority_id: String,
}

/// The CA currently signing.
struct Signer {
    id: String,
    certificate_der: Vec<u8>,
    key: KeyPair,
}

#[derive(Clone)]
pub struct Ca {
    db: DatabaseConnection,
    keys: Arc<Keyring>,
    relay: Relay,
}

fn time(ms: i64) -> Result<time::OffsetDateTime, CaError> {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).map_err(|e| CaError::Sign(e.to_string()))
}

/// A certificate just signed, not yet recorded.
struct Signed {
    fingerprint: String,
    /// SHA-256 of its public key, hex: a renewal asked for again names it.
    key_hash: String,
    issued: Issued,
}

impl Signed {
    /// What its event says of it (never the certificate itself).
    fn detail(&self) -> String {
        format!("certificate {} by CA {}", &self.fingerprint[..16], self.issued.authority_id)
    }
}

/// Records `signed` as renewable from `enrolment`; rows of expired
/// certificates go.
async fn record(txn: &sea_orm::DatabaseTransaction, signed: &Signed, enrolment: &Enrolment) -> Result<(), DbErr> {
    let expired =
        Query::delete().from_table(Alias::new(CERTIFICATES)).and_where(Expr::col(Alias::new("expire_time_ms")).lt(now_ms())).to_owned();
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
    txn.execute(&insert).await?;
    Ok(())
}

/// SHA-256 of the public key of `csr_pem`, hex, as [`Signed::key_hash`].
fn key_hash(csr_pem: &str) -> Result<String, CaError> {
    let csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| CaError::Csr(e.to_string()))?;
    Ok(hash_key(&csr.public_key))
}

/// Hashed as a certificate's fingerprint is, over the public key's DER.
fn hash_key(key: &impl PublicKeyData) -> String {
    fingerprint(key.der_bytes())
}

/// A certificate's key in [`CERTIFICATES`]: SHA-256 of its DER, hex.
fn fingerprint(der: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(der))
}

/// Whether `id` is a SPIFFE id of this trust domain with a path of
/// lowercase names: `spiffe://paved/<segment>(/<segment>)*`.
pub fn valid_spiffe_id(id: &str) -> bool {
    id.strip_prefix(paved_grpc::tls::TRUST_DOMAIN).and_then(|rest| rest.strip_prefix('/')).is_some_and(|path| {
        path.len() <= 200
            && path.split('/').all(|s| {
                !s.is_empty()
                    && s != "."
                    && s != ".."
                    && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
            })
    })
}

impl Ca {
    pub fn new(db: DatabaseConnection, keys: Arc<Keyring>, relay: Relay) -> Self {
        Self { db, keys, relay }
    }

    /// The newest CA whose time has come; the first one is made here. A CA
    /// older than [`ROTATE_AFTER`] is replaced (the new one signs from
    /// [`PUBLISH_AHEAD`] on).
    async fn signer(&self) -> Result<Signer, CaError> {
        let now = now_ms();
        let newest = |activated: bool| {
            let column = Expr::col(Alias::new("create_time_ms"));
            Query::select()
                .columns(["id", "certificate_der", "sealed_key", "root_key_id", "create_time_ms"].map(Alias::new))
                .from(Alias::new(TABLE))
                .and_where(if activated { column.lte(now) } else { column.gt(now) })
                .order_by(Alias::new("create_time_ms"), Order::Desc)
                .limit(1)
                .to_owned()
        };
        let Some(row) = self.db.query_one(&newest(true)).await? else {
            self.rotate_at("paved", now).await?;
            return Box::pin(self.signer()).await;
        };
        let id: String = row.try_get("", "id")?;
        let created: i64 = row.try_get("", "create_time_ms")?;
        if now - created >= ms(ROTATE_AFTER) && self.db.query_one(&newest(false)).await?.is_none() {
            self.rotate_at("paved", now + ms(PUBLISH_AHEAD)).await?;
        }
        let (sealed, root_key_id): (Vec<u8>, String) = (row.try_get("", "sealed_key")?, row.try_get("", "root_key_id")?);
        let der = self.keys.open(&sealed, &format!("ca-key:{id}"), &root_key_id).map_err(|e| CaError::Sealed(id.clone(), e))?;
        let key = KeyPair::try_from(der.as_slice()).map_err(|_| CaError::Sealed(id.clone(), SealError::Corrupt))?;
        Ok(Signer { id, certificate_der: row.try_get("", "certificate_der")?, key })
    }

    /// Starts a new CA now; it signs from [`PUBLISH_AHEAD`] on.
    pub async fn rotate(&self, actor: &str) -> Result<CertificateAuthority, CaError> {
        self.rotate_at(actor, now_ms() + ms(PUBLISH_AHEAD)).await
    }

    /// A new CA signing from `activate_at`; the ones before retire then.
    async fn rotate_at(&self, actor: &str, activate_at: i64) -> Result<CertificateAuthority, CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| CaError::Sign(e.to_string()))?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "Paved");
        name.push(DnType::CommonName, format!("Paved internal CA {}", uuid::Uuid::now_v7()));
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.subject_alt_names = vec![uri(paved_grpc::tls::TRUST_DOMAIN)?];
        params.not_before = time(activate_at - ms(BACKDATE))?;
        let expire = activate_at + ms(LIFETIME);
        params.not_after = time(expire)?;
        params.serial_number = Some(serial());
        let certificate = params.self_signed(&key).map_err(|e| CaError::Sign(e.to_string()))?;
        let id = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(certificate.der())[..8]);
        let txn = self.db.begin().await?;
        let retire = Query::update()
            .table(Alias::new(TABLE))
            .value(Alias::new("retire_time_ms"), activate_at)
            .and_where(Expr::col(Alias::new("retire_time_ms")).is_null())
            .to_owned();
        txn.execute(&retire).await?;
        let insert = Query::insert()
            .into_table(Alias::new(TABLE))
            .columns(["id", "certificate_der", "sealed_key", "root_key_id", "create_time_ms", "expire_time_ms"].map(Alias::new))
            .values_panic([
                id.clone().into(),
                certificate.der().to_vec().into(),
                self.keys.current().seal(&key.serialize_der(), &format!("ca-key:{id}")).into(),
                self.keys.current().id.clone().into(),
                activate_at.into(),
                expire.into(),
            ])
            .to_owned();
        txn.execute(&insert).await?;
        event(&txn, "ca.rotated", actor, &id, &[], "").await?;
        txn.commit().await?;
        self.relay.wake();
        tracing::info!(authority = id, "new certificate authority");
        Ok(CertificateAuthority {
            id,
            create_time: Some(timestamp_from_millis(activate_at)),
            expire_time: Some(timestamp_from_millis(expire)),
            retire_time: None,
        })
    }

    /// Signs a certificate for `spiffe_id` over the key of `csr_pem`. With
    /// an enrolment, it can renew itself from it ([`Self::renew`]).
    pub async fn issue(
        &self,
        actor: &str,
        spiffe_id: &str,
        csr_pem: &str,
        ttl: Duration,
        enrolment: Option<&Enrolment>,
    ) -> Result<Issued, CaError> {
        let signed = self.sign(spiffe_id, csr_pem, ttl).await?;
        let txn = self.db.begin().await?;
        if let Some(enrolment) = enrolment {
            record(&txn, &signed, enrolment).await?;
        }
        event(&txn, "certificate.issued", actor, spiffe_id, &[], &signed.detail()).await?;
        txn.commit().await?;
        self.relay.wake();
        Ok(signed.issued)
    }

    /// A certificate for the holder of `presented` (verified in the TLS
    /// handshake): same SPIFFE id, the key of `csr_pem`, under the same
    /// enrolment, at most `ttl`. `presented` is replaced: presented again,
    /// it renews nothing (its key may have been copied).
    /// The same request again (its answer lost on the way) gets the same
    /// certificate back.
    pub async fn renew(&self, presented: &[u8], csr_pem: &str, ttl: Duration) -> Result<Issued, CaError> {
        let presented = fingerprint(presented);
        let (spiffe_id, enrolment, replaced_by) = self.line(&presented).await?;
        if let Some(replacement) = replaced_by {
            return self.replacement(&replacement, &key_hash(csr_pem)?).await?.ok_or(CaError::Replaced(spiffe_id));
        }
        let left = enrolment.renew_until_ms.map_or(ttl, |until| Duration::from_millis(u64::try_from(until - now_ms()).unwrap_or(0)));
        if left.is_zero() {
            return Err(CaError::EnrolmentOver(spiffe_id));
        }
        // Signed first: the CA's key is read through the pool, which on
        // SQLite is the one connection a transaction would hold.
        let signed = self.sign(&spiffe_id, csr_pem, ttl.min(left)).await?;
        let txn = self.db.begin().await?;
        // Held against a revocation until this commits, as leases are.
        if !crate::authority::revoked_among(&txn, &[enrolment.token.as_str()]).await?.is_empty() {
            return Err(CaError::EnrolmentRevoked(spiffe_id, enrolment.token));
        }
        let replace = Query::update()
            .table(Alias::new(CERTIFICATES))
            .value(Alias::new("replaced_by"), signed.fingerprint.as_str())
            .and_where(Expr::col(Alias::new("fingerprint")).eq(presented.as_str()))
            .and_where(Expr::col(Alias::new("replaced_by")).is_null())
            .to_owned();
        // Two renewals of one certificate at once: one wins.
        if txn.execute(&replace).await?.rows_affected() == 0 {
            return Err(CaError::Replaced(spiffe_id));
        }
        record(&txn, &signed, &enrolment).await?;
        event(&txn, "certificate.renewed", &spiffe_id, &spiffe_id, &[], &format!("{}, replacing {}", signed.detail(), &presented[..16]))
            .await?;
        txn.commit().await?;
        self.relay.wake();
        Ok(signed.issued)
    }

    /// The SPIFFE id and enrolment of `presented` (DER), a certificate this
    /// CA issued to a token and not replaced since.
    pub async fn enrolment(&self, presented: &[u8]) -> Result<(String, Enrolment), CaError> {
        match self.line(&fingerprint(presented)).await? {
            (spiffe_id, _, Some(_)) => Err(CaError::Replaced(spiffe_id)),
            (spiffe_id, enrolment, None) => Ok((spiffe_id, enrolment)),
        }
    }

    /// The SPIFFE id, enrolment and replacement (its fingerprint) of the
    /// certificate `fingerprint`, one this CA issued to a token.
    async fn line(&self, fingerprint: &str) -> Result<(String, Enrolment, Option<String>), CaError> {
        let query = Query::select()
            .columns(["spiffe_id", "enrolled_by", "renew_until_ms", "replaced_by"].map(Alias::new))
            .from(Alias::new(CERTIFICATES))
            .and_where(Expr::col(Alias::new("fingerprint")).eq(fingerprint))
            .to_owned();
        let Some(row) = self.db.query_one(&query).await? else {
            return Err(CaError::NotEnrolled);
        };
        let enrolment = Enrolment { token: row.try_get("", "enrolled_by")?, renew_until_ms: row.try_get("", "renew_until_ms")? };
        Ok((row.try_get("", "spiffe_id")?, enrolment, row.try_get("", "replaced_by")?))
    }

    /// The certificate `fingerprint`, if it is live, not replaced, and
    /// over the key `key_hash`: a renewal asked for again.
    async fn replacement(&self, fingerprint: &str, key_hash: &str) -> Result<Option<Issued>, CaError> {
        let query = Query::select()
            .columns(["certificate_pem", "spiffe_id", "expire_time_ms", "authority_id"].map(Alias::new))
            .from(Alias::new(CERTIFICATES))
            .and_where(Expr::col(Alias::new("fingerprint")).eq(fingerprint))
            .and_where(Expr::col(Alias::new("key_hash")).eq(key_hash))
            .and_where(Expr::col(Alias::new("replaced_by")).is_null())
            .and_where(Expr::col(Alias::new("expire_time_ms")).gt(now_ms()))
            .to_owned();
        let Some(row) = self.db.query_one(&query).await? else {
            return Ok(None);
        };
        Ok(Some(Issued {
            certificate_pem: row.try_get("", "certificate_pem")?,
            spiffe_id: row.try_get("", "spiffe_id")?,
            expire_time_ms: row.try_get("", "expire_time_ms")?,
            authority_id: row.try_get("", "authority_id")?,
        }))
    }

    /// A certificate for `spiffe_id` over the key of `csr_pem`, signed by
    /// the current CA, for `ttl` (at most [`MAX_TTL`]).
    async fn sign(&self, spiffe_id: &str, csr_pem: &str, ttl: Duration) -> Result<Signed, CaError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| CaError::Csr(e.to_string()))?;
        let signer = self.signer().await?;
        let issuer = Issuer::from_ca_cert_der(&signer.certificate_der.as_slice().into(), &signer.key)
            .map_err(|e| CaError::Sign(format!("the CA's certificate: {e}")))?;
        let now = now_ms();
        let expire = now + ms(ttl.min(MAX_TTL));
        let mut params = CertificateParams::default();
        // SPIFFE X.509-SVID: the SPIFFE id is the one URI SAN; no other name.
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![uri(spiffe_id)?];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment, KeyUsagePurpose::KeyAgreement];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = time(now - ms(BACKDATE))?;
        params.not_after = time(expire)?;
        params.serial_number = Some(serial());
        let certificate = params.signed_by(&csr.public_key, &issuer).map_err(|e| CaError::Sign(e.to_string()))?;
        Ok(Signed {
            fingerprint: fingerprint(certificate.der()),
            key_hash: hash_key(&csr.public_key),
            issued: Issued {
                certificate_pem: certificate.pem(),
                spiffe_id: spiffe_id.to_string(),
                expire_time_ms: expire,
                authority_id: signer.id,
            },
        })
    }

    /// The CAs to trust (current first) and the bundle as PEM: all but those
    /// retired longer ago than a certificate lives.
    pub async fn bundle(&self) -> Result<(String, Vec<CertificateAuthority>), CaError> {
        let listed = self.listed().await?;
        if !listed.1.is_empty() {
            return Ok(listed);
        }
        // The first CA exists before anyone asks what to trust.
        self.signer().await?;
        self.listed().await
    }

    /// The CAs in the bundle as stored (no key unsealed: anyone may ask).
    async fn listed(&self) -> Result<(String, Vec<CertificateAuthority>), CaError> {
        let now = now_ms();
        let query = Query::select()
            .columns(["id", "certificate_der", "create_time_ms", "expire_time_ms", "retire_time_ms"].map(Alias::new))
            .from(Alias::new(TABLE))
            .and_where(Expr::col(Alias::new("expire_time_ms")).gt(now))
            .and_where(
                Expr::col(Alias::new("retire_time_ms"))
                    .is_null()
                    .or(Expr::col(Alias::new("retire_time_ms")).gt(now - ms(MAX_TTL) - ms(BACKDATE))),
            )
            .order_by(Alias::new("create_time_ms"), Order::Desc)
            .to_owned();
        let (mut pem, mut authorities) = (String::new(), Vec::new());
        for row in self.db.query_all(&query).await? {
            let der: Vec<u8> = row.try_get("", "certificate_der")?;
            pem.push_str(&paved_grpc::tls::pem("CERTIFICATE", &der));
            let retired: Option<i64> = row.try_get("", "retire_time_ms")?;
            authorities.push(CertificateAuthority {
                id: row.try_get("", "id")?,
                create_time: Some(timestamp_from_millis(row.try_get("", "create_time_ms")?)),
                expire_time: Some(timestamp_from_millis(row.try_get("", "expire_time_ms")?)),
                retire_time: retired.map(timestamp_from_millis),
            });
        }
        Ok((pem, authorities))
    }

    /// Re-seals CA keys sealed under an older root key; returns how many.
    pub async fn rewrap(&self) -> Result<usize, CaError> {
        let done = rewrap_named(&self.db, &self.keys, (TABLE, "sealed_key"), "id", |id| format!("ca-key:{id}")).await?;
        done.map_err(|(id, e)| CaError::Sealed(id, e))
    }
}

fn uri(id: &str) -> Result<SanType, CaError> {
    Ok(SanType::URI(id.try_into().map_err(|e: rcgen::Error| CaError::Sign(e.to_string()))?))
}

/// 16 random bytes, positive (RFC 5280: at most 20 octets, non-negative).
fn serial() -> SerialNumber {
    let mut bytes = rand::random::<[u8; 16]>();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

/// The broker's own identity (mTLS): its certificate from its own CA,
/// renewed at two thirds of its life, and the bundle, refreshed and written
/// to the bundle file for the processes that start from it.
pub async fn serve_own_identity(ca: Ca, tls: paved_grpc::tls::Tls, shutdown: tokio_util::sync::CancellationToken) {
    let (mut renew_at, mut written) = (0, String::new());
    loop {
        let now = now_ms();
        let step = async {
            let (bundle, _) = ca.bundle().await?;
            tls.set_bundle(&bundle)?;
            if let Some(file) = tls.bundle_file().filter(|_| written != bundle) {
                // Replaced whole (a reader never sees half a bundle), under
                // a name of this process's own (replicas share the file).
                let partial = file.with_extension(format!("{}.{}.partial", std::process::id(), rand::random::<u32>()));
                std::fs::write(&partial, &bundle)?;
                std::fs::rename(&partial, file)?;
                written.clone_from(&bundle);
            }
            if now >= renew_at {
                let (key, csr) = paved_grpc::tls::new_key(tls.spiffe_id())?;
                let issued = ca.issue("paved", tls.spiffe_id(), &csr, DEFAULT_TTL, None).await?;
                tls.set_certificate(&issued.certificate_pem, key, issued.expire_time_ms)?;
                renew_at = tls.renew_at(now);
                tracing::info!(spiffe_id = tls.spiffe_id(), authority = issued.authority_id, "certificate renewed");
            }
            anyhow::Ok(())
        };
        if let Err(e) = step.await {
            tracing::warn!(error = %e, "cannot renew the broker's own certificate or bundle; retrying");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(paved_grpc::tls::BUNDLE_REFRESH) => {}
        }
    }
}
