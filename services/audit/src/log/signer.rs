//! The signer: follows the tree with checkpoints, signed by every key that
//! signs now (two during a rotation's overlap), and rotates the key on
//! command.

use super::{
    append::{AppendError, Log},
    key, note, store,
};
use paved_seal::RootKey;
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

/// How long the signer waits after an append for more before it signs:
/// under load one checkpoint covers many appends, and none waits long.
const GATHER: Duration = Duration::from_millis(100);

impl Log {
    /// Loads the keys (creating one on first start, sealed under `root`),
    /// then signs a checkpoint whenever the tree has grown past the last
    /// one, until `shutdown`: within [`GATHER`] of an append in this
    /// process, and every second for appends made by another.
    pub async fn run(self: Arc<Self>, root: RootKey, name: String, shutdown: CancellationToken) {
        let roots = key::Roots { current: root, previous: self.previous_root.clone() };
        loop {
            match key::load_or_create(self.db(), &roots, &name).await {
                Ok(keys) => {
                    self.set_keys(keys);
                    let _ = self.root.set(roots.clone());
                    break;
                }
                Err(e) => tracing::warn!(error = format!("{e:#}"), "the audit log's key is not loaded yet; trying again"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        loop {
            if let Err(e) = self.sign_latest().await {
                tracing::warn!(error = %e, "the audit log could not sign a checkpoint; trying again");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.appended.notified() => tokio::time::sleep(GATHER).await,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    fn set_keys(&self, keys: Vec<note::LogKey>) {
        if let Ok(mut held) = self.keys.write() {
            *held = keys.into_iter().map(Arc::new).collect();
        }
    }

    /// The keys that sign now, reloaded when the stored set differs (a
    /// rotation, here or by another replica, or an overlap's end).
    async fn signing_keys(&self) -> Result<Vec<Arc<note::LogKey>>, AppendError> {
        let held = self.keys();
        let root = self.root.get().ok_or(AppendError::NoKey)?;
        let now = chrono::Utc::now().timestamp_millis();
        let stored: Vec<String> = store::keys(self.db(), now).await?.into_iter().map(|(k, _)| k).collect();
        if stored.is_empty() || stored == held.iter().map(|k| k.verifier_key()).collect::<Vec<_>>() {
            return Ok(held);
        }
        let keys = key::active(self.db(), root).await.map_err(|e| AppendError::Tree(format!("{e:#}")))?;
        self.set_keys(keys);
        Ok(self.keys())
    }

    /// Signs the tree as it stands, unless the latest checkpoint has it.
    pub async fn sign_latest(&self) -> Result<u64, AppendError> {
        let state = store::state(self.db(), false).await?;
        if let Some((size, _, at)) = store::latest_checkpoint(self.db()).await?.filter(|(size, _, _)| *size >= state.size) {
            super::metrics::signed(size, at);
            return Ok(state.size);
        }
        let keys: Vec<note::LogKey> = self.signing_keys().await?.iter().map(|k| (**k).clone()).collect();
        if keys.is_empty() {
            return Err(AppendError::NoKey);
        }
        let note = note::checkpoint(&keys, state.size, state.root).map_err(AppendError::Tree)?;
        let now = chrono::Utc::now().timestamp_millis();
        store::put_checkpoint(self.db(), state.size, &note, now).await?;
        super::metrics::signed(state.size, now);
        Ok(state.size)
    }

    /// A new key signs from now on; the current one goes on beside it for
    /// `overlap`. Returns the new verifier key.
    pub async fn rotate(&self, overlap: Duration) -> anyhow::Result<String> {
        let root = self.root.get().ok_or_else(|| anyhow::anyhow!("the log's keys are not loaded yet"))?;
        let key = key::rotate(self.db(), root, i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX)).await?;
        self.set_keys(key::active(self.db(), root).await?);
        Ok(key.verifier_key())
    }
}
