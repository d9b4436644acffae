//! The token authority: issues tokens signed by the current signing key
//! and records them (in batches, `issuing`), renews them, revokes them
//! with every token issued from them (`revoke`), and tells whether a
//! token presented is still good. Every change is committed with its event
//! in one transaction. Also the grants the platform mints for itself.

mod issuing;
mod revoke;

pub use crate::tokens::{DEFAULT_RENEWABLE, DEFAULT_TTL, Grant, MAX_RENEWABLE, MAX_TTL, Target, Token, store::children};

use crate::act::Act;
use crate::clock::{ms, now_ms};
use crate::keys::{KeyError, KeySet, SigningKeys};
use crate::seal::{Keyring, SealError};
use crate::{ca, event, identities, tokens};
use issuing::{Issued, NotRecorded};
use paved_stream::outbox::Relay;
use paved_token::Claims;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use std::{sync::Arc, time::Duration};

#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("signing key {0}: {1}")]
    Sealed(String, SealError),
    #[error("token {0} not found")]
    NotFound(String),
    #[error("token {0} is revoked")]
    Revoked(String),
    #[error("token {0} can no longer be renewed")]
    NotRenewable(String),
}

impl From<KeyError> for AuthorityError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Database(e) => Self::Database(e),
            KeyError::Sealed(kid, e) => Self::Sealed(kid, e),
        }
    }
}

#[derive(Clone)]
pub struct Authority {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    keys: Arc<Keyring>,
    relay: Relay,
    signing: SigningKeys,
    /// Token records on their way to the database.
    issued: tokio::sync::mpsc::Sender<Issued>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authority")
    }
}

impl Authority {
    /// Must be called within a Tokio runtime: it starts the task that
    /// records issued tokens (it ends when the last clone is dropped).
    pub fn new(db: DatabaseConnection, keys: Arc<Keyring>, relay: Relay) -> Self {
        let issued = issuing::start(db.clone(), relay.clone());
        let signing = SigningKeys::new(db.clone(), keys.clone(), relay.clone());
        Self { inner: Arc::new(Inner { db, keys, relay, signing, issued }) }
    }

    /// The root keys everything here is sealed under.
    pub fn keys(&self) -> &Arc<Keyring> {
        &self.inner.keys
    }

    /// Issued tokens waiting for the writer, not yet in a batch.
    pub fn issues_waiting(&self) -> usize {
        self.inner.issued.max_capacity() - self.inner.issued.capacity()
    }

    pub fn relay(&self) -> &Relay {
        &self.inner.relay
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// Re-seals signing keys sealed under an older root key; returns how many.
    pub async fn rewrap(&self) -> Result<usize, AuthorityError> {
        Ok(self.inner.signing.rewrap().await?)
    }

    /// Publishes a new signing key now; it signs once every verifier can
    /// know it. Returns its id.
    pub async fn rotate(&self, actor: &str) -> Result<String, AuthorityError> {
        Ok(self.inner.signing.rotate(actor).await?)
    }

    /// The key set verifiers trust (see [`SigningKeys::key_set`]).
    pub async fn key_set(&self) -> Result<Arc<KeySet>, AuthorityError> {
        Ok(self.inner.signing.key_set().await?)
    }

    /// Why a token verified earlier is no longer valid (expired, revoked),
    /// or None.
    pub async fn no_longer_valid(&self, claims: &Claims) -> Option<&'static str> {
        if chrono::Utc::now().timestamp() > claims.exp + paved_token::LEEWAY_SECS {
            return Some("expired");
        }
        match self.inner.signing.trust().await {
            Ok(trust) if trust.1.contains(&claims.jti) => Some("was revoked"),
            Ok(_) => None,
            // The database is away: the token was valid; keep serving.
            Err(_) => None,
        }
    }

    /// The claims of `token` if the key set as published verifies it now
    /// (any audience), else why not.
    pub async fn introspect(&self, token: &str) -> Result<Result<Claims, paved_token::TokenError>, AuthorityError> {
        let trust = self.inner.signing.trust().await?;
        let (keys, revoked) = &*trust;
        let now = chrono::Utc::now().timestamp();
        // Verifiers allow other clocks `LEEWAY_SECS` of skew; the issuer's
        // clock is the one that set `exp`, so introspection tells the truth:
        // active means not expired, to the second.
        Ok(keys
            .verify(token, &paved_grpc::auth::AUDIENCES, now, |jti| revoked.contains(jti))
            .and_then(|claims| if now >= claims.exp { Err(paved_token::TokenError::Expired(now - claims.exp)) } else { Ok(claims) }))
    }

    /// Issues a token for `grant` on behalf of `actor`; returns the token
    /// (the only time its value exists outside the holder) and its record.
    pub async fn issue(&self, actor: &str, grant: &Grant) -> Result<(String, Token), AuthorityError> {
        let issuer = self.inner.signing.issuer().await?;
        let now = now_ms();
        let jti = uuid::Uuid::now_v7().to_string();
        let expire = now + ms(grant.ttl);
        let renewable_until = Ord::max(now + ms(grant.renewable), expire);
        let (done, committed) = tokio::sync::oneshot::channel();
        let record = Issued { jti: jti.clone(), actor: actor.to_string(), grant: grant.clone(), now, expire, renewable_until, done };
        let closed = || AuthorityError::Database(DbErr::Custom("the token writer stopped".into()));
        self.inner.issued.send(record).await.map_err(|_| closed())?;
        // The token exists only once its record and event are committed.
        committed.await.map_err(|_| closed())?.map_err(|e| match e {
            NotRecorded::ParentRevoked(parent) => AuthorityError::Revoked(parent),
            NotRecorded::Database(e) => AuthorityError::Database(DbErr::Custom(e)),
        })?;
        let claims = Claims {
            sub: grant.subject.clone(),
            aud: grant.audience.clone(),
            scp: grant.scopes.clone(),
            iat: now / 1000,
            exp: expire / 1000,
            ren: renewable_until / 1000,
            jti: jti.clone(),
            kid: String::new(),
            dig: grant.artifact_digest.clone(),
        };
        let token = Token {
            token_id: jti,
            subject: grant.subject.clone(),
            scopes: grant.scopes.clone(),
            audience: grant.audience.clone(),
            issue_time_ms: now,
            expire_time_ms: expire,
            renewable_until_ms: renewable_until,
            revoke_time_ms: None,
            artifact_digest: grant.artifact_digest.clone(),
        };
        Ok((issuer.sign(claims), token))
    }

    /// A later-expiring token for the caller's own (`claims`, verified):
    /// same id, scopes and audience; never past its `renewable_until`.
    pub async fn renew(&self, claims: &Claims, ttl: Option<Duration>) -> Result<(String, Token), AuthorityError> {
        let issuer = self.inner.signing.issuer().await?;
        let mut token = self.token(&claims.jti).await?.ok_or_else(|| AuthorityError::NotFound(claims.jti.clone()))?;
        if token.revoke_time_ms.is_some() {
            return Err(AuthorityError::Revoked(claims.jti.clone()));
        }
        let until = token.renewable_until_ms;
        let now = now_ms();
        if now >= until {
            return Err(AuthorityError::NotRenewable(claims.jti.clone()));
        }
        // Never longer than the token was issued for.
        let issued_ttl = tokens::store::issued_ttl_ms(&self.inner.db, &claims.jti).await?.unwrap_or(ms(DEFAULT_TTL));
        let ttl_ms = ttl.map_or(issued_ttl, |t| Ord::min(ms(t), issued_ttl));
        let expire = Ord::min(now + ttl_ms, until);
        // The record keeps the latest expiry of any copy: a revocation is
        // published until then, so a shorter renewal cannot end it early.
        let stored = Ord::max(expire, token.expire_time_ms);
        let txn = self.inner.db.begin().await?;
        if !tokens::store::extend(&txn, &claims.jti, stored).await? {
            return Err(AuthorityError::Revoked(claims.jti.clone()));
        }
        event::record(&txn, Act::new("token.renewed", &claims.sub, &claims.jti, &[], "")).await?;
        txn.commit().await?;
        self.inner.relay.wake();
        token.expire_time_ms = expire;
        let renewed = Claims { iat: now / 1000, exp: expire / 1000, ren: until / 1000, kid: String::new(), ..claims.clone() };
        Ok((issuer.sign(renewed), token))
    }

    /// [`Authority::renew`] for a token known by its record (the process
    /// that minted it renews it).
    pub async fn renew_info(&self, token: &Token) -> Result<(String, Token), AuthorityError> {
        let claims = Claims {
            sub: token.subject.clone(),
            aud: token.audience.clone(),
            scp: token.scopes.clone(),
            iat: 0,
            exp: 0,
            ren: 0,
            jti: token.token_id.clone(),
            kid: String::new(),
            dig: token.artifact_digest.clone(),
        };
        self.renew(&claims, None).await
    }

    /// Revokes the target's live tokens, and every live token issued with
    /// them, at any depth; returns how many. Verifiers learn of it from the
    /// key set within a poll.
    pub async fn revoke(&self, actor: &str, target: &Target, reason: &str) -> Result<u32, AuthorityError> {
        let revoked = paved_store::retry_conflicts(|| revoke::once(&self.inner.db, actor, target, reason)).await?;
        if let Target::Token(id) = target
            && revoked.is_none()
        {
            return Err(AuthorityError::NotFound(id.clone()));
        }
        self.inner.signing.changed();
        Ok(u32::try_from(revoked.unwrap_or_default()).unwrap_or(u32::MAX))
    }

    pub async fn token(&self, jti: &str) -> Result<Option<Token>, AuthorityError> {
        Ok(tokens::store::find(&self.inner.db, jti).await?)
    }

    /// Tokens by issue time, newest first.
    pub async fn tokens(&self, subject: &str, size: u64, offset: u64) -> Result<Vec<Token>, AuthorityError> {
        Ok(tokens::store::list(&self.inner.db, subject, size, offset).await?)
    }
}

/// The root token's grant: every scope, for a day, renewable for 30, like a
/// development server's.
pub fn root_grant() -> Grant {
    Grant {
        parent: None,
        subject: "root".into(),
        scopes: vec!["*".into()],
        audience: paved_grpc::auth::PLATFORM_AUDIENCE.into(),
        ttl: MAX_TTL,
        renewable: MAX_RENEWABLE,
        artifact_digest: String::new(),
    }
}

/// A platform service's enrolling token (`paved token enrol`): its own
/// identity, naming `certs:enrol:platform/<service>` itself, which enrols
/// its certificate for good, and `calls`, what its own calls need once it
/// exchanges that certificate for tokens. Not renewable: the service enrols
/// once within `ttl`, then renews with its certificate.
pub fn enrolment_grant(service: &str, calls: &[&str], ttl: Duration) -> Grant {
    let environment = paved_grpc::tls::PLATFORM_ENVIRONMENT;
    let mut scopes = vec![format!("{}{environment}/{service}", ca::ENROL_SCOPE)];
    scopes.extend(calls.iter().map(|s| s.to_string()));
    Grant {
        parent: None,
        subject: identities::spiffe_id(environment, service),
        scopes,
        audience: paved_grpc::auth::PLATFORM_AUDIENCE.into(),
        ttl,
        renewable: Duration::ZERO,
        artifact_digest: String::new(),
    }
}
