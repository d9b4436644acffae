//! Reading the log: checkpoints, proofs, entries and tiles, from what is
//! stored. Hash tiles are read at their widest: a partial tile's data is
//! a prefix of what it grows into, so any tree up to the stored one can be
//! proven from them.

use super::metrics;
use super::{
    append::Log,
    store,
    tiles::{Asked, Reader, TileRef, WIDTH},
};
use sea_orm::DbErr;
use std::{collections::HashMap, time::Instant};
use tlog_tiles::{Checkpoint, Hash, HashReader, prove_record, prove_tree};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A size or index past the tree: (what was asked, the tree's size).
    #[error("{what} is beyond the log, which has {size} entries")]
    OutOfRange { what: String, field: &'static str, size: u64 },
    #[error("no checkpoint has been signed yet")]
    NoCheckpoint,
    #[error("event {0} is not in the log")]
    UnknownEvent(String),
    /// A request that cannot be answered as asked: (field, why).
    #[error("{1}")]
    Invalid(&'static str, String),
    /// An event in the log that no checkpoint covers yet.
    #[error("event {0} is in the log but no checkpoint covers it yet")]
    NotYetCovered(String),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("stored tree data is inconsistent: {0}")]
    Tree(String),
}

/// A signed checkpoint with what it says.
#[derive(Debug, Clone)]
pub struct Signed {
    pub note: String,
    pub size: u64,
    pub root: Hash,
}

impl Log {
    /// The latest signed checkpoint.
    pub async fn checkpoint(&self) -> Result<Signed, ReadError> {
        let started = Instant::now();
        let (size, note, _) = store::latest_checkpoint(self.db()).await?.ok_or(ReadError::NoCheckpoint)?;
        let (_, note) = self.with_cosignatures(vec![(size, note)]).await?.remove(0);
        let checkpoint = signed(note);
        metrics::read("checkpoint", started.elapsed());
        checkpoint
    }

    /// Signed checkpoints by size, from the `offset`-th.
    pub async fn checkpoints(&self, offset: u64, limit: u64) -> Result<Vec<Signed>, ReadError> {
        let notes = self.with_cosignatures(store::checkpoints(self.db(), offset, limit).await?).await?;
        notes.into_iter().map(|(_, note)| signed(note)).collect()
    }

    /// The tree's size as appended (checkpoints may trail it by a moment).
    pub async fn size(&self) -> Result<u64, DbErr> {
        let size = store::state(self.db(), false).await?.size;
        self.grown(size);
        Ok(size)
    }

    /// The leaf index of an event.
    pub async fn index_of(&self, event_id: &str) -> Result<u64, ReadError> {
        store::leaf_of(self.db(), event_id).await?.ok_or_else(|| ReadError::UnknownEvent(event_id.to_string()))
    }

    /// The audit path of leaf `index` in the tree of `size`.
    pub async fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, ReadError> {
        self.within("tree_size", size).await?;
        if index >= size {
            return Err(ReadError::OutOfRange { what: format!("leaf {index} of a tree of {size}"), field: "index", size });
        }
        let started = Instant::now();
        let proof = self.prove(|r| prove_record(size, index, r)).await;
        metrics::read("inclusion", started.elapsed());
        proof
    }

    /// The proof that the tree of `from` is a prefix of the tree of `to`.
    pub async fn consistency(&self, from: u64, to: u64) -> Result<Vec<Hash>, ReadError> {
        self.within("to_size", to).await?;
        if from > to {
            return Err(ReadError::Invalid("from_size", format!("from_size {from} is past to_size {to}")));
        }
        // The empty tree is a prefix of every tree, and a tree of itself:
        // nothing to prove (RFC 9162 §2.1.4 defines proofs for 0 < m < n).
        if from == 0 || from == to {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let proof = self.prove(|r| prove_tree(to, from, r)).await;
        metrics::read("consistency", started.elapsed());
        proof
    }

    async fn within(&self, field: &'static str, asked: u64) -> Result<(), ReadError> {
        // A tree only grows: a size this process has seen stored needs no
        // query (half of a proof's round trips).
        if asked <= self.seen_size() {
            return Ok(());
        }
        let size = self.size().await?;
        if asked > size {
            return Err(ReadError::OutOfRange { what: format!("{field} {asked}"), field, size });
        }
        Ok(())
    }

    /// Runs a proof on the tiles it reads, fetched in one query.
    async fn prove<T>(&self, prove: impl Fn(&Either<'_>) -> Result<T, tlog_tiles::Error>) -> Result<T, ReadError> {
        let asked = Asked::default();
        // Made-up hashes: this run only learns the indexes.
        let _ = prove(&Either(&asked));
        let tiles = store::tiles(self.db(), &asked.tiles()).await?;
        prove(&Either(&Reader { tiles: &tiles, overlay: HashMap::new() })).map_err(|e| ReadError::Tree(e.to_string()))
    }

    /// Entries from leaf `start`, at most `count`.
    pub async fn entries(&self, start: u64, count: u64) -> Result<Vec<Vec<u8>>, DbErr> {
        store::leaves(self.db(), start, count).await
    }

    /// A tile's bytes as tlog-tiles serves them, if the tree has it at that
    /// width: hashes, or an entry bundle (each entry a big-endian u16 length
    /// and its bytes).
    pub async fn tile(&self, tile: TileRef) -> Result<Option<Vec<u8>>, ReadError> {
        let started = Instant::now();
        let data = self.tile_data(tile).await;
        metrics::read(if tile.level.is_some() { "tile" } else { "entries" }, started.elapsed());
        data
    }

    async fn tile_data(&self, tile: TileRef) -> Result<Option<Vec<u8>>, ReadError> {
        let size = self.size().await?;
        let width = u64::from(tile.width);
        match tile.level {
            None => {
                if tile.index.saturating_mul(WIDTH).saturating_add(width) > size {
                    return Ok(None);
                }
                let entries = store::leaves(self.db(), tile.index * WIDTH, width).await?;
                if entries.len() as u64 != width {
                    return Err(ReadError::Tree(format!("entries of {} are missing", tile.path())));
                }
                let bundle = super::verify::bundle(&entries)
                    .ok_or_else(|| ReadError::Tree(format!("an entry of {} is over 64 KiB", tile.path())))?;
                Ok(Some(bundle))
            }
            Some(level) => {
                let hashes_at_level = size.checked_shr(u32::from(level) * u32::from(super::tiles::HEIGHT)).unwrap_or(0);
                if tile.index.saturating_mul(WIDTH).saturating_add(width) > hashes_at_level {
                    return Ok(None);
                }
                let mut found = store::tiles(self.db(), &[(level, tile.index)]).await?;
                let data = found.remove(&(level, tile.index)).unwrap_or_default();
                let need = tile.width as usize * tlog_tiles::HASH_SIZE;
                if data.len() < need {
                    return Err(ReadError::Tree(format!("{} is shorter than the tree needs", tile.path())));
                }
                Ok(Some(data[..need].to_vec()))
            }
        }
    }
}

/// A stored note with what it says.
fn signed(note: String) -> Result<Signed, ReadError> {
    let text = signed_note::Note::from_bytes(note.as_bytes()).map_err(|e| ReadError::Tree(e.to_string()))?;
    let checkpoint = Checkpoint::from_bytes(text.text()).map_err(|e| ReadError::Tree(e.to_string()))?;
    Ok(Signed { size: checkpoint.size(), root: *checkpoint.hash(), note })
}

/// One reader or the other, as one sized type: the proof functions take
/// a generic reader, and one closure serves both runs.
pub struct Either<'a>(&'a dyn HashReader);

impl HashReader for Either<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        self.0.read_hashes(indexes)
    }
}
