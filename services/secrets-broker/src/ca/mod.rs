//! The internal CA: short-lived X.509 certificates whose one URI SAN is a
//! SPIFFE id (`spiffe://paved/<env>/<workload>`), for mTLS between
//! services. The caller keeps its private key and sends a CSR; the CA's own
//! key is sealed under the root key, like the signing keys.
//!
//! Rotation mirrors the signing keys': a new CA is in the trust bundle
//! [`PUBLISH_AHEAD`] before it signs, so every peer trusts it first; the
//! one before stays in the bundle until the last certificate it signed has
//! expired ([`MAX_TTL`] after its retirement).

mod certificate;
pub(crate) mod store;
mod x509;

pub use certificate::{CertificateAuthority, Enrolment, Issued, TrustBundle};

use crate::act::Act;
use crate::clock::{ms, now_ms};
use crate::seal::{Keyring, SealError};
use crate::{event, tokens};
use paved_stream::outbox::Relay;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use std::{sync::Arc, time::Duration};
use x509::{BACKDATE, X509Error};

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
/// The scope that enrols a platform identity for good, with its path
/// (`certs:enrol:platform/audit`); held by name, never through a wildcard.
pub const ENROL_SCOPE: &str = "certs:enrol:";

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

impl From<X509Error> for CaError {
    fn from(e: X509Error) -> Self {
        match e {
            X509Error::Csr(why) => Self::Csr(why),
            X509Error::Sign(why) => Self::Sign(why),
        }
    }
}

#[derive(Clone)]
pub struct Ca {
    db: DatabaseConnection,
    keys: Arc<Keyring>,
    relay: Relay,
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
    async fn signer(&self) -> Result<x509::Signer, CaError> {
        let now = now_ms();
        let Some(ca) = store::current(&self.db, now).await? else {
            self.rotate_at("paved", now).await?;
            return Box::pin(self.signer()).await;
        };
        crate::expiry::authority(ca.create_time_ms + ms(LIFETIME));
        if now - ca.create_time_ms >= ms(ROTATE_AFTER) && !store::pending(&self.db, now).await? {
            self.rotate_at("paved", now + ms(PUBLISH_AHEAD)).await?;
        }
        let key =
            self.keys.open(&ca.sealed_key, &store::purpose(&ca.id), &ca.root_key_id).map_err(|e| CaError::Sealed(ca.id.clone(), e))?;
        let corrupt = CaError::Sealed(ca.id.clone(), SealError::Corrupt);
        x509::Signer::new(ca.id, ca.certificate_der, &key).ok_or(corrupt)
    }

    /// Starts a new CA now; it signs from [`PUBLISH_AHEAD`] on.
    pub async fn rotate(&self, actor: &str) -> Result<CertificateAuthority, CaError> {
        self.rotate_at(actor, now_ms() + ms(PUBLISH_AHEAD)).await
    }

    /// A new CA signing from `activate_at`; the ones before retire then.
    async fn rotate_at(&self, actor: &str, activate_at: i64) -> Result<CertificateAuthority, CaError> {
        let expire = activate_at + ms(LIFETIME);
        let made = x509::new_authority(activate_at - ms(BACKDATE), expire)?;
        let root = self.keys.current();
        let ca = store::Sealed {
            sealed_key: root.seal(&made.key_der, &store::purpose(&made.id)),
            root_key_id: root.id.clone(),
            id: made.id,
            certificate_der: made.certificate_der,
            create_time_ms: activate_at,
        };
        let txn = self.db.begin().await?;
        store::replace(&txn, &ca, expire).await?;
        event::record(&txn, Act::new("ca.rotated", actor, &ca.id, &[], "")).await?;
        txn.commit().await?;
        self.relay.wake();
        tracing::info!(authority = ca.id, "new certificate authority");
        Ok(CertificateAuthority { id: ca.id, create_time_ms: activate_at, expire_time_ms: expire, retire_time_ms: None })
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
            store::record(&txn, &signed, enrolment, now_ms()).await?;
        }
        event::record(&txn, Act::new("certificate.issued", actor, spiffe_id, &[], &signed.detail())).await?;
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
        let presented = x509::fingerprint(presented);
        let store::Line { spiffe_id, enrolment, replaced_by } = self.line(&presented).await?;
        if let Some(replacement) = replaced_by {
            let key_hash = x509::Csr::parse(csr_pem)?.key_hash();
            return store::live_over(&self.db, &replacement, &key_hash, now_ms()).await?.ok_or(CaError::Replaced(spiffe_id));
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
        if !tokens::store::revoked_among(&txn, &[enrolment.token.as_str()]).await?.is_empty() {
            return Err(CaError::EnrolmentRevoked(spiffe_id, enrolment.token));
        }
        // Two renewals of one certificate at once: one wins.
        if !store::replaced(&txn, &presented, &signed.fingerprint).await? {
            return Err(CaError::Replaced(spiffe_id));
        }
        store::record(&txn, &signed, &enrolment, now_ms()).await?;
        let why = format!("{}, replacing {}", signed.detail(), &presented[..16]);
        event::record(&txn, Act::new("certificate.renewed", &spiffe_id, &spiffe_id, &[], &why)).await?;
        txn.commit().await?;
        self.relay.wake();
        Ok(signed.issued)
    }

    /// The SPIFFE id and enrolment of `presented` (DER), a certificate this
    /// CA issued to a token and not replaced since.
    pub async fn enrolment(&self, presented: &[u8]) -> Result<(String, Enrolment), CaError> {
        match self.line(&x509::fingerprint(presented)).await? {
            store::Line { spiffe_id, replaced_by: Some(_), .. } => Err(CaError::Replaced(spiffe_id)),
            store::Line { spiffe_id, enrolment, replaced_by: None } => Ok((spiffe_id, enrolment)),
        }
    }

    /// The line of the certificate `fingerprint`, one this CA issued to a token.
    async fn line(&self, fingerprint: &str) -> Result<store::Line, CaError> {
        store::line(&self.db, fingerprint).await?.ok_or(CaError::NotEnrolled)
    }

    /// A certificate for `spiffe_id` over the key of `csr_pem`, signed by
    /// the current CA, for `ttl` (at most [`MAX_TTL`]).
    async fn sign(&self, spiffe_id: &str, csr_pem: &str, ttl: Duration) -> Result<x509::Signed, CaError> {
        let csr = x509::Csr::parse(csr_pem)?;
        let signer = self.signer().await?;
        let now = now_ms();
        let expire = now + ms(ttl.min(MAX_TTL));
        Ok(x509::sign(signer, &csr, spiffe_id, now - ms(BACKDATE), expire)?)
    }

    /// The CAs to trust (current first) and the bundle as PEM: all but those
    /// retired longer ago than a certificate lives.
    pub async fn bundle(&self) -> Result<TrustBundle, CaError> {
        let listed = self.listed().await?;
        if !listed.authorities.is_empty() {
            return Ok(listed);
        }
        // The first CA exists before anyone asks what to trust.
        self.signer().await?;
        self.listed().await
    }

    /// The CAs in the bundle as stored (no key unsealed: anyone may ask).
    async fn listed(&self) -> Result<TrustBundle, CaError> {
        let now = now_ms();
        let (mut pem, mut authorities) = (String::new(), Vec::new());
        for (der, authority) in store::bundle(&self.db, now, now - ms(MAX_TTL) - ms(BACKDATE)).await? {
            pem.push_str(&paved_grpc::tls::pem("CERTIFICATE", &der));
            authorities.push(authority);
        }
        // Newest first; one published ahead does not sign yet.
        if let Some(current) = authorities.iter().find(|a| a.create_time_ms <= now) {
            crate::expiry::authority(current.expire_time_ms);
        }
        Ok(TrustBundle { pem, authorities })
    }

    /// Re-seals CA keys sealed under an older root key; returns how many.
    pub async fn rewrap(&self) -> Result<usize, CaError> {
        store::rewrap(&self.db, &self.keys).await?.map_err(|(id, e)| CaError::Sealed(id, e))
    }
}

/// The broker's own identity (mTLS): its certificate from its own CA,
/// renewed at two thirds of its life, and the bundle, refreshed and written
/// to the bundle file for the processes that start from it.
pub async fn serve_own_identity(ca: Ca, tls: paved_grpc::tls::Tls, shutdown: tokio_util::sync::CancellationToken) {
    let (mut renew_at, mut written) = (0, String::new());
    loop {
        let now = now_ms();
        let step = async {
            let bundle = ca.bundle().await?.pem;
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
