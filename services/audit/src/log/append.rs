//! Appending: each event a leaf once, in one order, the tiles and the
//! tree's state written in the same transaction as the leaves (the signer,
//! which follows the tree with checkpoints, is `signer.rs`).

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
    collections::HashMap,
    sync::{Arc, OnceLock},
};
use tokio::sync::{Mutex, Notify};

/// The log: its database, the right edge of its tree, its key.
pub struct Log {
    db: DatabaseConnection,
    /// The edge as of the last append by this process, with the chains'
    /// heads it knows; checked against the stored size before each use
    /// (another process may have appended).
    edge: Mutex<Option<(Edge, HashMap<String, u64>)>>,
    pub(super) appended: Notify,
    /// The keys that sign (the current first), loaded once the database
    /// answers and again when they change: see `signer.rs`.
    pub(super) keys: std::sync::RwLock<Vec<Arc<LogKey>>>,
    /// The root keys the log's keys are sealed under, once the signer runs.
    pub(super) root: OnceLock<super::key::Roots>,
    /// The root key before, during a root key rotation.
    pub(super) previous_root: Option<RootKey>,
    /// The largest tree size this process has seen stored.
    seen: std::sync::atomic::AtomicU64,
    /// The witnesses whose cosignatures the log keeps.
    witnesses: Vec<super::cosign::CosignatureVerifier>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Not `transparent`: the `DbErr` must be in the error's chain, where
    /// the consumer looks for an outage (`paved_stream::consumer::
    /// unreachable`); transparent, it hid one and events of a database
    /// restart were dead-lettered.
    #[error("the log's database")]
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
        Self {
            db,
            edge: Mutex::new(None),
            appended: Notify::new(),
            keys: Default::default(),
            root: OnceLock::new(),
            previous_root: None,
            seen: Default::default(),
            witnesses: Vec::new(),
        }
    }

    /// The log, keeping cosignatures from these witnesses.
    pub fn with_witnesses(mut self, witnesses: Vec<super::cosign::CosignatureVerifier>) -> Self {
        self.witnesses = witnesses;
        self
    }

    /// The log, opening its keys also with the root key before the current
    /// one (and sealing them again under the current).
    pub fn with_previous_root(mut self, previous: Option<RootKey>) -> Self {
        self.previous_root = previous;
        self
    }

    /// Notes a tree size seen stored.
    pub(super) fn grown(&self, size: u64) {
        self.seen.fetch_max(size, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn seen_size(&self) -> u64 {
        self.seen.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn witnesses(&self) -> &[super::cosign::CosignatureVerifier] {
        &self.witnesses
    }

    /// The keys that sign now (the current first); empty until the
    /// signer has loaded them.
    pub fn keys(&self) -> Vec<Arc<LogKey>> {
        self.keys.read().map(|k| k.clone()).unwrap_or_default()
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
        let (mut edge, mut heads) = match kept.take() {
            Some((edge, heads)) if edge.size == state.size => (edge, heads),
            _ => (Edge::new(state.size, store::tiles(&txn, &edge_keys(state.size)).await?).map_err(AppendError::Tree)?, HashMap::new()),
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
        // A chain this process has not appended to since its edge was
        // built: its last leaf, from the query side's index.
        let mut missing: Vec<String> = keys.into_iter().filter(|k| !heads.contains_key(k)).collect();
        missing.sort_unstable();
        missing.dedup();
        heads.extend(chains::last_on(&txn, &missing).await?);
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
        }
        txn.commit().await?;
        *kept = Some((edge, heads));
        self.grown(appended.size);
        drop(kept);
        super::metrics::appended(appended.size, started.elapsed());
        fresh.iter().filter_map(|e| entry::workload(e)).for_each(|w| super::metrics::concerns(&w));
        if !leaves.is_empty() {
            self.appended.notify_one();
        }
        Ok(leaves.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_is_an_outage_not_the_events_fault() {
        let lost = DbErr::Conn(sea_orm::RuntimeErr::Internal("Connection reset by peer".into()));
        assert!(paved_stream::consumer::unreachable(&anyhow::Error::from(AppendError::Db(lost))));
        assert!(!paved_stream::consumer::unreachable(&anyhow::Error::from(AppendError::TooLarge { id: "e".into(), size: 70_000 })));
    }
}
