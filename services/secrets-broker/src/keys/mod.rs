//! Signing keys: Ed25519 keys sealed under the root key, rotated with
//! overlap (a new key is published before it signs; a retired one stays
//! published until its last token has expired), and the key set verifiers
//! trust, rebuilt at most every `KEY_SET_FRESH` so that another replica's
//! rotation or revocation shows within it.

mod key_set;
pub(crate) mod store;

pub use key_set::{KeySet, PublicKey};

use crate::act::Act;
use crate::clock::{ms, now_ms};
use crate::seal::{Keyring, SealError};
use crate::{event, tokens};
use paved_stream::outbox::Relay;
use paved_token::Issuer;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A signing key is replaced after this long.
pub const ROTATE_AFTER: Duration = Duration::from_secs(24 * 3600);
/// A new signing key is published this long before it signs: longer than
/// a verifier's poll plus the key set's freshness.
pub const PUBLISH_AHEAD: Duration = Duration::from_secs(3);
/// A published key set is rebuilt at most this often (another replica's
/// revocation shows within it).
const KEY_SET_FRESH: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("signing key {0}: {1}")]
    Sealed(String, SealError),
}

/// The key set as verifiers hold it: the keys, and the revoked token ids.
pub type Trust = Arc<(paved_token::KeySet, HashSet<String>)>;

#[derive(Clone)]
pub struct SigningKeys {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    keys: Arc<Keyring>,
    relay: Relay,
    /// The key in use, as last read.
    active: tokio::sync::Mutex<Option<Active>>,
    published: Mutex<Option<Published>>,
}

struct Active {
    issuer: Arc<Issuer>,
    read_at: Instant,
}

/// A key set as published, and as the broker verifies with it.
#[derive(Clone)]
struct Published {
    at: Instant,
    set: Arc<KeySet>,
    trust: Trust,
}

impl SigningKeys {
    pub fn new(db: DatabaseConnection, keys: Arc<Keyring>, relay: Relay) -> Self {
        Self { inner: Arc::new(Inner { db, keys, relay, active: Default::default(), published: Default::default() }) }
    }

    /// The key to sign with: the newest one whose time has come (a new key
    /// is published [`PUBLISH_AHEAD`] before it signs, so every verifier
    /// knows it first). Read again from the database every
    /// `KEY_SET_FRESH`, so a rotation by another replica is followed; a
    /// key older than [`ROTATE_AFTER`] is replaced.
    pub async fn issuer(&self) -> Result<Arc<Issuer>, KeyError> {
        let mut active = self.inner.active.lock().await;
        if let Some(a) = active.as_ref().filter(|a| a.read_at.elapsed() < KEY_SET_FRESH) {
            return Ok(a.issuer.clone());
        }
        let now = now_ms();
        let pending = store::pending(&self.inner.db, now).await?;
        let current = match store::current(&self.inner.db, now).await? {
            Some(key) => {
                let sealed = |e| KeyError::Sealed(key.kid.clone(), e);
                let seed = self.inner.keys.open(&key.sealed_seed, &store::purpose(&key.kid), &key.root_key_id).map_err(sealed)?;
                let seed: [u8; 32] = seed.try_into().map_err(|_| sealed(SealError::Corrupt))?;
                Some((Arc::new(Issuer::from_seed(&seed)), key.create_time_ms))
            }
            None => None,
        };
        let issuer = match current {
            Some((issuer, created)) => {
                crate::expiry::signing_key(created, now);
                if now - created >= ms(ROTATE_AFTER) && !pending {
                    self.rotate_at("paved", now + ms(PUBLISH_AHEAD)).await?;
                }
                issuer
            }
            // The first key: no verifier holds anything yet.
            None => self.rotate_at("paved", now).await?,
        };
        *active = Some(Active { issuer: issuer.clone(), read_at: Instant::now() });
        Ok(issuer)
    }

    /// Publishes a new signing key now; it signs from [`PUBLISH_AHEAD`] on,
    /// when the current one retires. Returns its id.
    pub async fn rotate(&self, actor: &str) -> Result<String, KeyError> {
        let issuer = self.rotate_at(actor, now_ms() + ms(PUBLISH_AHEAD)).await?;
        Ok(issuer.kid.clone())
    }

    /// A new key signing from `activate_at`; the keys before it retire then
    /// and stay published until their last token has expired.
    async fn rotate_at(&self, actor: &str, activate_at: i64) -> Result<Arc<Issuer>, KeyError> {
        let issuer = Issuer::generate();
        let root = self.inner.keys.current();
        let key = store::Sealed {
            kid: issuer.kid.clone(),
            sealed_seed: root.seal(&issuer.seed(), &store::purpose(&issuer.kid)),
            root_key_id: root.id.clone(),
            create_time_ms: activate_at,
        };
        let drop_at = activate_at + ms(tokens::MAX_TTL) + paved_token::LEEWAY_SECS * 1000;
        let txn = self.inner.db.begin().await?;
        store::replace(&txn, &key, issuer.public().to_bytes().to_vec(), drop_at).await?;
        event::record(&txn, Act::new("signing_key.rotated", actor, &issuer.kid, &[], "")).await?;
        txn.commit().await?;
        self.changed();
        tracing::info!(kid = issuer.kid, "new signing key");
        Ok(Arc::new(issuer))
    }

    /// The key set changed (a key, a revocation): rebuilt on the next ask.
    pub fn changed(&self) {
        *self.inner.published.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.inner.relay.wake();
    }

    /// The keys verifiers trust (the one in use and retired ones whose
    /// tokens may live) and the revoked tokens not yet expired.
    pub async fn key_set(&self) -> Result<Arc<KeySet>, KeyError> {
        Ok(self.published().await?.set)
    }

    /// The key set as the broker verifies with it.
    pub async fn trust(&self) -> Result<Trust, KeyError> {
        Ok(self.published().await?.trust)
    }

    async fn published(&self) -> Result<Published, KeyError> {
        if let Some(published) = self.inner.published.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && published.at.elapsed() < KEY_SET_FRESH
        {
            return Ok(published.clone());
        }
        // A first caller must find a key to trust.
        self.issuer().await?;
        let now = now_ms();
        let keys = store::published(&self.inner.db, now).await?;
        let set = KeySet::new(keys, tokens::store::revoked_unexpired(&self.inner.db, now).await?);
        let trust = set.trust().map_err(|e| KeyError::Database(DbErr::Custom(format!("stored public key: {e}"))))?;
        let published = Published { at: Instant::now(), set: Arc::new(set), trust: Arc::new(trust) };
        *self.inner.published.lock().unwrap_or_else(|e| e.into_inner()) = Some(published.clone());
        Ok(published)
    }

    /// Re-seals signing keys sealed under an older root key; returns how many.
    pub async fn rewrap(&self) -> Result<usize, KeyError> {
        store::rewrap(&self.inner.db, &self.inner.keys).await?.map_err(|(kid, e)| KeyError::Sealed(kid, e))
    }
}
