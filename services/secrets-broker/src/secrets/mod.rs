//! Versioned KV secrets, encrypted at rest by envelope: each version's value
//! is sealed (AES-256-GCM) under a data key of its own, and the data key is
//! sealed under the root key. Rotating the root key re-seals data keys,
//! never values. Generated secrets are rotated by the broker; a replaced
//! version stays readable for [`OVERLAP`], then is destroyed ([`Secrets::prune`]).

pub(crate) mod store;
mod version;

pub use version::{OVERLAP, Version};

use crate::act::Act;
use crate::clock::{ms, now_ms};
use crate::event;
use crate::seal::{Keyring, RootKey, SealError};
use paved_stream::outbox::Relay;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use std::{sync::Arc, time::Duration};
use store::purpose;

pub const DEFAULT_ROTATION: Duration = Duration::from_secs(24 * 3600);
pub const MAX_VALUE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("secret {0} not found")]
    NotFound(String),
    #[error("version {1} of {0} expired (replaced more than the overlap window ago)")]
    Expired(String, u32),
    /// Never says what the value was: only which record failed to open.
    #[error("secret {0} version {1} cannot be opened: {2}")]
    Sealed(String, u32, SealError),
}

/// What to write.
pub enum Value {
    Given(Vec<u8>),
    Generated { bytes: u32, rotate_every: Duration },
}

#[derive(Clone)]
pub struct Secrets {
    db: DatabaseConnection,
    keys: Arc<Keyring>,
    relay: Relay,
    /// Bumped on every write: watchers look again.
    written: tokio::sync::watch::Sender<u64>,
    /// Latest versions as stored (sealed: no value in memory in the clear),
    /// by path, for [`LATEST_FRESH`]: a read is then no database query.
    latest: Arc<std::sync::Mutex<Latest>>,
}

/// Latest versions by path, with when they were read.
type Latest = std::collections::HashMap<String, (std::time::Instant, Arc<store::Sealed>)>;

/// How long a cached latest version is trusted: a write on this replica
/// replaces it at once; another replica's is seen within this.
const LATEST_FRESH: Duration = Duration::from_secs(1);
const LATEST_LIMIT: usize = 16 * 1024;

impl Secrets {
    pub fn new(db: DatabaseConnection, keys: Arc<Keyring>, relay: Relay) -> Self {
        Self { db, keys, relay, written: tokio::sync::watch::Sender::new(0), latest: Default::default() }
    }

    /// Writes the next version of `path`; the one before is replaced now
    /// and readable for [`OVERLAP`].
    pub async fn put(&self, actor: &str, path: &str, value: Value) -> Result<Version, SecretError> {
        // Unconditional: only a conditional write is ever skipped.
        self.write(actor, path, &value, None).await?.ok_or_else(|| DbErr::Custom("a write was skipped".into()).into())
    }

    /// Writes the next version of `path` if the latest is still `expect`
    /// (any, when None); None when another write came first. Two writers
    /// racing for the same version number (PostgreSQL, several replicas)
    /// retry: the loser writes the version after.
    async fn write(&self, actor: &str, path: &str, value: &Value, expect: Option<u32>) -> Result<Option<Version>, SecretError> {
        let mut attempt = 0;
        loop {
            match self.write_once(actor, path, value, expect).await {
                Err(SecretError::Database(e))
                    if attempt < 5 && matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) =>
                {
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    async fn write_once(&self, actor: &str, path: &str, value: &Value, expect: Option<u32>) -> Result<Option<Version>, SecretError> {
        let action = if actor == "paved" { "secret.rotated" } else { "secret.written" };
        let (plain, generated, rotate_every) = match value {
            Value::Given(v) => (v.clone(), 0u32, None),
            Value::Generated { bytes, rotate_every } => (generate(*bytes), *bytes, Some(*rotate_every)),
        };
        let now = now_ms();
        let txn = self.db.begin().await?;
        store::lock_path(&txn, path).await?;
        let last = store::last_version(&txn, path).await?;
        if expect.is_some_and(|v| i64::from(v) != last.unwrap_or(0)) {
            return Ok(None);
        }
        let version = u32::try_from(last.unwrap_or(0) + 1).unwrap_or(u32::MAX);
        // Envelope: a data key for this version only, sealed by the root key.
        let data_key: [u8; 32] = rand::random();
        let root = self.keys.current();
        let new = store::New {
            path,
            version,
            sealed_value: RootKey::from_bytes(&data_key).seal(&plain, &purpose("secret", path, version)),
            sealed_key: root.seal(&data_key, &purpose("data-key", path, version)),
            root_key_id: &root.id,
            generate_bytes: generated,
            rotate_every_ms: rotate_every.map(ms),
            create_time_ms: now,
        };
        store::replace(&txn, &new).await?;
        event::record(&txn, Act::new(action, actor, &format!("{path}#{version}"), &[], "")).await?;
        txn.commit().await?;
        // Counted before the cache entry goes: a read that loaded the
        // version before this one sees the count move and does not cache it.
        self.written.send_modify(|n| *n += 1);
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).remove(path);
        self.relay.wake();
        Ok(Some(Version::new(path, version, now, generated > 0, rotate_every.map(ms), None)))
    }

    /// Deletes every version of `path` (and so its rotation); how many
    /// there were. Watchers are woken and end with NOT_FOUND.
    pub async fn delete(&self, actor: &str, path: &str) -> Result<u32, SecretError> {
        let txn = self.db.begin().await?;
        store::lock_path(&txn, path).await?;
        let deleted = store::delete_all(&txn, path).await?;
        if deleted == 0 {
            return Err(SecretError::NotFound(path.to_string()));
        }
        event::record(&txn, Act::new("secret.deleted", actor, path, &[], "")).await?;
        txn.commit().await?;
        self.written.send_modify(|n| *n += 1);
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).remove(path);
        self.relay.wake();
        Ok(u32::try_from(deleted).unwrap_or(u32::MAX))
    }

    /// The stored version of `path` at `version` (0: the latest, from the
    /// cache when fresh).
    async fn sealed(&self, path: &str, version: u32) -> Result<Arc<store::Sealed>, SecretError> {
        if version == 0
            && let Some((at, found)) = self.latest.lock().unwrap_or_else(|e| e.into_inner()).get(path)
            && at.elapsed() < LATEST_FRESH
        {
            return Ok(found.clone());
        }
        let writes = *self.written.borrow();
        let found = Arc::new(self.load(path, version).await?);
        if version == 0 {
            let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
            // Written here since the load began: the row may be the old one.
            if *self.written.borrow() != writes {
                return Ok(found);
            }
            if latest.len() >= LATEST_LIMIT {
                latest.clear();
            }
            latest.insert(path.to_string(), (std::time::Instant::now(), found.clone()));
        }
        Ok(found)
    }

    async fn load(&self, path: &str, version: u32) -> Result<store::Sealed, SecretError> {
        match store::find(&self.db, path, version).await? {
            Some(found) => Ok(found),
            // A version older than the latest was destroyed after its overlap.
            None => Err(match store::last_version(&self.db, path).await? {
                Some(last) if version != 0 && i64::from(version) < last => SecretError::Expired(path.to_string(), version),
                _ => SecretError::NotFound(path.to_string()),
            }),
        }
    }

    /// The value of `path` at `version` (0: the latest).
    pub async fn get(&self, path: &str, version: u32) -> Result<(Version, Vec<u8>), SecretError> {
        let found = self.sealed(path, version).await?;
        let v = found.version.version;
        if found.version.expire_time_ms.is_some_and(|expire| expire < now_ms()) {
            return Err(SecretError::Expired(path.to_string(), v));
        }
        let sealed = |e| SecretError::Sealed(path.to_string(), v, e);
        let data_key = self.keys.open(&found.sealed_key, &purpose("data-key", path, v), &found.root_key_id).map_err(sealed)?;
        let data_key: [u8; 32] = data_key.try_into().map_err(|_| sealed(SealError::Corrupt))?;
        let value = RootKey::from_bytes(&data_key).open(&found.sealed_value, &purpose("secret", path, v)).map_err(sealed)?;
        Ok((found.version.clone(), value))
    }

    /// Latest versions of the secrets under `prefix`, by path.
    pub async fn list(&self, prefix: &str, size: u64, offset: u64) -> Result<Vec<Version>, SecretError> {
        Ok(store::list(&self.db, prefix, size, offset).await?)
    }

    /// A receiver that changes whenever a secret is written here.
    pub fn writes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.written.subscribe()
    }

    /// Writes a new value for every generated secret whose rotation is due;
    /// returns how many, and when the next one is due (Unix ms).
    pub async fn rotate_due(&self) -> Result<(usize, Option<i64>), SecretError> {
        let now = now_ms();
        let mut rotated = 0;
        let mut next: Option<i64> = None;
        for latest in store::generated(&self.db).await? {
            let created = latest.create_time_ms;
            let every = latest.rotate_every_ms.unwrap_or(ms(DEFAULT_ROTATION));
            if created + every > now {
                next = Some(next.map_or(created + every, |n| Ord::min(n, created + every)));
                continue;
            }
            let rotate_every = Duration::from_millis(u64::try_from(every).unwrap_or(0));
            let value = Value::Generated { bytes: u32::try_from(latest.bytes).unwrap_or(32), rotate_every };
            // Only over the version that was due: a value written meanwhile
            // (by someone, or another replica's rotation) stands.
            if self.write("paved", &latest.path, &value, u32::try_from(latest.version).ok()).await?.is_none() {
                continue;
            }
            next = Some(next.map_or(now + every, |n| Ord::min(n, now + every)));
            rotated += 1;
        }
        Ok((rotated, next))
    }

    /// Destroys the versions replaced longer than [`OVERLAP`] ago (value and
    /// data key with the row: nothing left to open), each with its
    /// `secret.destroyed` event; returns how many.
    pub async fn prune(&self) -> Result<usize, SecretError> {
        let before = now_ms() - ms(OVERLAP);
        let txn = self.db.begin().await?;
        let mut destroyed = 0;
        for (path, version) in store::replaced_before(&txn, before).await? {
            store::delete(&txn, &path, version).await?;
            let act = Act::new("secret.destroyed", "paved", &format!("{path}#{version}"), &[], "replaced more than the overlap window ago");
            event::record(&txn, act).await?;
            destroyed += 1;
        }
        txn.commit().await?;
        if destroyed > 0 {
            self.relay.wake();
        }
        Ok(destroyed)
    }

    /// Re-seals data keys sealed under an older root key; returns how many,
    /// and how many do not open (each logged, and left as it is: one
    /// damaged record does not stop the rest).
    pub async fn rewrap(&self) -> Result<(usize, usize), SecretError> {
        let (count, failed) = store::rewrap(&self.db, &self.keys).await?;
        for (name, e) in &failed {
            tracing::error!(data_key = %name, error = %e, "a data key does not open: not re-sealed");
        }
        Ok((count, failed.len()))
    }
}

/// Rotates generated secrets when due, and destroys versions past their
/// overlap, until `shutdown`: it sleeps until
/// the next rotation, at most `longest` (another replica may have written
/// one), and wakes on every write here.
pub async fn rotate_loop(secrets: Secrets, longest: Duration, shutdown: tokio_util::sync::CancellationToken) {
    let mut writes = secrets.writes();
    loop {
        match secrets.prune().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(versions = n, "replaced secret versions destroyed after their overlap"),
            Err(e) => tracing::warn!(error = %e, "cannot destroy replaced secret versions; retrying"),
        }
        let next = match secrets.rotate_due().await {
            Ok((n, next)) => {
                if n > 0 {
                    tracing::info!(secrets = n, "generated secrets rotated");
                }
                next
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot rotate generated secrets; retrying");
                None
            }
        };
        let wait = next.map_or(longest, |at| Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(longest));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = writes.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

fn generate(bytes: u32) -> Vec<u8> {
    use base64::Engine;
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw).into_bytes()
}

/// A secret path: lowercase letters, digits, `-`, `_`, `.` and `/`, no empty
/// or dot-only segment, at most 256 characters.
pub fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 256
        && path.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_./".contains(c))
        && path.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
}
