//! The log's signing key: created on first start, kept sealed under the
//! root key (as the broker keeps its own keys), never in the clear.

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

/// The current key, created (named `name`) if the log has none. A log
/// keeps its name: a stored key named otherwise wins, with a warning. The
/// tree's state row is held meanwhile, so that two replicas starting on an
/// empty database make one key between them.
pub async fn load_or_create(db: &DatabaseConnection, root: &RootKey, name: &str) -> anyhow::Result<LogKey> {
    let txn = db.begin().await?;
    store::state(&txn, true).await?;
    let key = current_or_new(&txn, root, name).await?;
    txn.commit().await?;
    Ok(key)
}

async fn current_or_new(db: &impl ConnectionTrait, root: &RootKey, name: &str) -> anyhow::Result<LogKey> {
    if let Some((verifier_key, sealed)) = store::keys(db).await?.into_iter().next() {
        let seed = root
            .open(&sealed, &purpose(&verifier_key))
            .map_err(|e| anyhow::anyhow!("the audit log's key does not open under root key {}: {e}", root.id))?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| anyhow::anyhow!("the audit log's sealed key is not 32 bytes"))?;
        let stored = verifier_key.split('+').next().unwrap_or(name);
        if stored != name {
            tracing::warn!(log = stored, configured = name, "the audit log keeps the name it was created with");
        }
        let key = LogKey::new(stored, &seed).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(key.verifier_key() == verifier_key, "the audit log's stored key does not match its verifier key");
        return Ok(key);
    }
    let seed: [u8; 32] = rand::random();
    let key = LogKey::new(name, &seed).map_err(anyhow::Error::msg)?;
    let verifier_key = key.verifier_key();
    store::put_key(db, &verifier_key, root.seal(&seed, &purpose(&verifier_key)), chrono::Utc::now().timestamp_millis()).await?;
    tracing::info!(%verifier_key, "created the audit log's key");
    Ok(key)
}
