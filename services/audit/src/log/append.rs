//! Appending: each event a leaf once, in one order, the tiles and the
//! tree's state written in the same transaction as the leaves; and the
//! signer, which follows the tree with checkpoints.

use super::{
    chains, entry,
    note::LogKey,
    store,
    tiles::{Edge, edge_keys},
};
use paved_seal::RootKey;
use paved_stream::Envelope;
use prost::Message;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

/// How long the signer waits after an append for more before it signs:
/// under load one checkpoint covers many appends, and none waits long.
const GATHER: Duration = Duration::from_millis(100);

/// The log: its database, the right edge of its tree, its key.
pub struct Log {
    db: DatabaseConnection,
    /// The edge as of the last append by this process; checked against the
    /// stored size before each use (another process may have appended).
    edge: Mutex<Option<Edge>>,
    appended: Notify,
    /// Loaded (or created) once the database answers: see [`Log::run`].
    key: OnceLock<LogKey>,
    /// The witnesses whose cosignatures the log keeps.
    witnesses: Vec<super::cosign::CosignatureVerifier>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Db(#[from] DbErr),
    /// The stored tree is not what appending needs (a tile missing): the
    /// log's fault, never the event's.
    #[error("the stored tree cannot take the leaves: {0}")]
    Tree(String),
    /// A tlog-tiles entry bundle holds entries of at most 65,535 bytes.
    #[error("event {id}'s log entry is {size} bytes, over the 65,535 an entry bundle holds")]
    TooLarge { id: String, size: usize },
    #[error("the log's key is not loaded yet")]
    NoKey,
}

/// The largest entry a tlog-tiles entry bundle can hold.
pub const MAX_ENTRY: usize = u16::MAX as usize;

impl Log {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db, edge: Mutex::new(None), appended: Notify::new(), key: OnceLock::new(), witnesses: Vec::new() }
    }

    /// The log, keeping cosignatures from these witnesses.
    pub fn with_witnesses(mut self, witnesses: Vec<super::cosign::CosignatureVerifier>) -> Self {
        self.witnesses = witnesses;
        self
    }

    pub fn witnesses(&self) -> &[super::cosign::CosignatureVerifier] {
        &self.witnesses
    }

    /// The signing key, once [`Log::run`] has it.
    pub fn key(&self) -> Option<&LogKey> {
        self.key.get()
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Appends the events not yet in the log, in the order given, with
    /// their query rows, people's salts and the chains' heads, in one
    /// transaction; returns how many became leaves.
    pub async fn append(&self, stream: &str, events: &[Envelope]) -> Result<usize, AppendError> {
        let started = std::time::Instant::now();
        let mut kept = self.edge.lock().await;
        let txn = self.db.begin().await?;
        let state = store::state(&txn, true).await?;
        let mut edge = match kept.take() {
            Some(edge) if edge.size == state.size => edge,
            _ => Edge::new(state.size, store::tiles(&txn, &edge_keys(state.size)).await?).map_err(AppendError::Tree)?,
        };
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let mut seen = store::known(&txn, &ids).await?;
        // A redelivered event, or one twice in a batch, is a leaf once.
        let fresh: Vec<&Envelope> = events.iter().filter(|e| seen.insert(e.id.clone())).collect();
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut people: Vec<&str> = fresh.iter().flat_map(|e| entry::people(e)).collect();
        people.sort_unstable();
        people.dedup();
        let salts = chains::salts(&txn, &people).await?;
        let keys: Vec<String> = fresh.iter().flat_map(|e| entry::chain_keys(e, &salts)).collect();
        let mut heads = chains::heads(&txn, &keys).await?;
        let built = entry::leaves(&fresh, stream, paved_proto::timestamp_from_millis(now_ms), state.size, &salts, &mut heads);
        let mut leaves = Vec::with_capacity(built.len());
        for (leaf, event) in built.iter().zip(&fresh) {
            let bytes = leaf.entry.encode_to_vec();
            if bytes.len() > MAX_ENTRY {
                return Err(AppendError::TooLarge { id: event.id.clone(), size: bytes.len() });
            }
            leaves.push(bytes);
        }
        let fresh_ids: Vec<&str> = fresh.iter().map(|e| e.id.as_str()).collect();
        // On any failure below the kept edge is gone: the next append
        // rebuilds it from what was committed.
        let appended = edge.append(&leaves).map_err(|e| AppendError::Tree(e.to_string()))?;
        store::insert_leaves(&txn, state.size, &fresh_ids, &leaves).await?;
        store::put_tiles(&txn, &appended.tiles).await?;
        store::set_state(&txn, store::State { size: appended.size, root: appended.root }).await?;
        if !built.is_empty() {
            txn.execute(&chains::rows(stream, state.size, &built, now_ms)).await?;
            chains::put_heads(&txn, &heads).await?;
        }
        txn.commit().await?;
        *kept = Some(edge);
        drop(kept);
        super::metrics::appended(appended.size, started.elapsed());
        if !leaves.is_empty() {
            self.appended.notify_one();
        }
        Ok(leaves.len())
    }

    /// Loads the key (creating it on first start, sealed under `root`),
    /// then signs a checkpoint whenever the tree has grown past the last
    /// one, until `shutdown`: within [`GATHER`] of an append in this
    /// process, and every second for appends made by another.
    pub async fn run(self: Arc<Self>, root: RootKey, name: String, shutdown: CancellationToken) {
        loop {
            match super::key::load_or_create(&self.db, &root, &name).await {
                Ok(key) => {
                    let _ = self.key.set(key);
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

    /// Signs the tree as it stands, unless the latest checkpoint has it.
    pub async fn sign_latest(&self) -> Result<u64, AppendError> {
        let state = store::state(&self.db, false).await?;
        if let Some((size, _, at)) = store::latest_checkpoint(&self.db).await?.filter(|(size, _, _)| *size >= state.size) {
            super::metrics::signed(size, at);
            return Ok(state.size);
        }
        let key = self.key.get().ok_or(AppendError::NoKey)?;
        let note = key.checkpoint(state.size, state.root).map_err(AppendError::Tree)?;
        let now = chrono::Utc::now().timestamp_millis();
        store::put_checkpoint(&self.db, state.size, &note, now).await?;
        super::metrics::signed(state.size, now);
        Ok(state.size)
    }
}
