//! The log's signing keys: created on first start, kept sealed under the
//! root key (as the broker keeps its own keys), never in the clear; rotated
//! on command, the old key signing beside the new one for an overlap, so
//! that a verifier holding either learns the other from a checkpoint both
//! signed.

use super::{note::LogKey, store};
use paved_seal::RootKey;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};

/// The default name of a log (its checkpoints' origin line).
pub const DEFAULT_NAME: &str = "paved/audit";

/// What the seal is bound to: a sealed seed moved to another key's row
/// does not open.
fn purpose(verifier_key: &str) -> String {
    format!("log-key:{verifier_key}")
}

/// The keys that sign now (the current first), one created (named `name`)
/// if the log has none. A log
/// keeps its name: a stored key named otherwise wins, with a warning. The
/// tree's state row is held meanwhile, so that two replicas starting on an
/// empty database make one key between them.
pub async fn load_or_create(db: &DatabaseConnection, roots: &Roots, name: &str) -> anyhow::Result<Vec<LogKey>> {
    let txn = db.begin().await?;
    store::state(&txn, true).await?;
    current_or_new(&txn, roots, name).await?;
    let keys = active(&txn, roots).await?;
    txn.commit().await?;
    Ok(keys)
}

/// The keys that sign now, newest first (two during an overlap).
pub async fn active(db: &impl ConnectionTrait, roots: &Roots) -> anyhow::Result<Vec<LogKey>> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut keys = Vec::new();
    for (verifier_key, sealed) in store::keys(db, now).await? {
        keys.push(open(db, roots, &verifier_key, &sealed, None).await?);
    }
    Ok(keys)
}

/// The root key the log's keys are sealed under and, during a root key
/// rotation, the one before (`PAVED_PREVIOUS_ROOT_KEY[_FILE]`): a key
/// sealed under it is opened and sealed again under the current one.
#[derive(Clone)]
pub struct Roots {
    pub current: RootKey,
    pub previous: Option<RootKey>,
}

/// A new key, signing from now on; the keys signing until now go on for
/// `overlap_ms`, then retire.
pub async fn rotate(db: &DatabaseConnection, roots: &Roots, overlap_ms: i64) -> anyhow::Result<LogKey> {
    let root = &roots.current;
    let txn = db.begin().await?;
    store::state(&txn, true).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let current = store::keys(&txn, now).await?;
    let (verifier_key, _) = current.first().ok_or_else(|| anyhow::anyhow!("the log has no key to rotate yet"))?;
    let name = verifier_key.split('+').next().unwrap_or(DEFAULT_NAME).to_string();
    let seed: [u8; 32] = rand::random();
    let key = LogKey::new(&name, &seed).map_err(anyhow::Error::msg)?;
    let new = key.verifier_key();
    // Created a millisecond on, so that it sorts first.
    store::put_key(&txn, &new, root.seal(&seed, &purpose(&new)), now + 1).await?;
    store::retire_keys(&txn, &new, now + overlap_ms).await?;
    txn.commit().await?;
    tracing::info!(verifier_key = %new, overlap_ms, "rotated the audit log's key");
    Ok(key)
}

async fn open(db: &impl ConnectionTrait, roots: &Roots, verifier_key: &str, sealed: &[u8], name: Option<&str>) -> anyhow::Result<LogKey> {
    let root = &roots.current;
    let purpose = purpose(verifier_key);
    let seed = match root.open(sealed, &purpose) {
        Ok(seed) => seed,
        Err(e) => match roots.previous.as_ref().map(|previous| (previous, previous.open(sealed, &purpose))) {
            Some((previous, Ok(seed))) => {
                store::reseal_key(db, verifier_key, root.seal(&seed, &purpose)).await?;
                tracing::info!(%verifier_key, from = %previous.id, to = %root.id, "sealed the audit log's key under the new root key");
                seed
            }
            previous => anyhow::bail!(
                "the audit log's key does not open under root key {}{}: {e}",
                root.id,
                previous.map(|(p, _)| format!(" nor the previous one {}", p.id)).unwrap_or_default()
            ),
        },
    };
    let seed: [u8; 32] = seed.try_into().map_err(|_| anyhow::anyhow!("the audit log's sealed key is not 32 bytes"))?;
    let stored = verifier_key.split('+').next().unwrap_or_default();
    if let Some(name) = name.filter(|n| *n != stored) {
        tracing::warn!(log = stored, configured = name, "the audit log keeps the name it was created with");
    }
    let key = LogKey::new(stored, &seed).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(key.verifier_key() == verifier_key, "the audit log's stored key does not match its verifier key");
    Ok(key)
}

async fn current_or_new(db: &impl ConnectionTrait, roots: &Roots, name: &str) -> anyhow::Result<LogKey> {
    let root = &roots.current;
    let now = chrono::Utc::now().timestamp_millis();
    if let Some((verifier_key, sealed)) = store::keys(db, now).await?.into_iter().next() {
        return open(db, roots, &verifier_key, &sealed, Some(name)).await;
    }
    let seed: [u8; 32] = rand::random();
    let key = LogKey::new(name, &seed).map_err(anyhow::Error::msg)?;
    let verifier_key = key.verifier_key();
    store::put_key(db, &verifier_key, root.seal(&seed, &purpose(&verifier_key)), chrono::Utc::now().timestamp_millis()).await?;
    tracing::info!(%verifier_key, "created the audit log's key");
    Ok(key)
}
