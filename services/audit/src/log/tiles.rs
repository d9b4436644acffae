//! The tree's shape in tiles (C2SP tlog-tiles): where a tile is served,
//! and the right edge of the tree that appending needs.
//!
//! The Merkle arithmetic is the `tlog_tiles` crate's (a port of Go's
//! `golang.org/x/mod/sumdb/tlog`): stored-hash indexes, `stored_hashes`,
//! `tree_hash`, the proofs. Two things are ours, and why:
//! - the paths: the crate formats Go sumdb's `tile/<H>/<L>/<N>`, while
//!   tlog-tiles drops the height (`tile/<L>/<N>[.p/<W>]`, always 256 wide);
//! - [`Edge`], the hashes appending reads — the tile at the right edge of
//!   each level — kept in memory between appends, so an append reads no
//!   tile from the database and writes only the tiles it changed.

use std::collections::HashMap;
use tlog_tiles::{Hash, HashReader, Tile, stored_hash_index, stored_hashes, tree_hash};

/// Tiles are 2^8 = 256 hashes wide, as tlog-tiles fixes them.
pub const HEIGHT: u8 = 8;
pub const WIDTH: u64 = 1 << HEIGHT;

/// A tile a client asks for: a level of hashes, or the entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileRef {
    /// None for an entry bundle (`tile/entries/…`).
    pub level: Option<u8>,
    pub index: u64,
    /// 1–256; 256 is a full tile (no `.p/` in its path).
    pub width: u32,
}

impl TileRef {
    /// Its path under the log's prefix: `tile/<L>/<N>[.p/<W>]`, N in
    /// groups of three digits, all but the last prefixed with `x`.
    pub fn path(&self) -> String {
        let mut n = self.index;
        let mut digits = format!("{:03}", n % 1000);
        while n >= 1000 {
            n /= 1000;
            digits = format!("x{:03}/{digits}", n % 1000);
        }
        let level = self.level.map_or_else(|| "entries".to_string(), |l| l.to_string());
        let partial = if u64::from(self.width) == WIDTH { String::new() } else { format!(".p/{}", self.width) };
        format!("tile/{level}/{digits}{partial}")
    }

    /// Parses what follows the prefix; None unless it is exactly a path
    /// [`TileRef::path`] would write (one path per tile, as caches need).
    pub fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("tile/")?;
        let (level, rest) = rest.split_once('/')?;
        let level = match level {
            "entries" => None,
            l => Some(canonical_number(l)?).filter(|l| *l < 64).map(|l| l as u8).map(Some)?,
        };
        let (digits, width) = match rest.split_once(".p/") {
            Some((digits, w)) => (digits, canonical_number(w).filter(|w| (1..WIDTH).contains(w))? as u32),
            None => (rest, WIDTH as u32),
        };
        let groups: Vec<&str> = digits.split('/').collect();
        let (last, upper) = groups.split_last()?;
        let mut index: u64 = 0;
        for group in upper.iter().map(|g| g.strip_prefix('x')).chain([Some(*last)]) {
            let group = group.filter(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))?;
            index = index.checked_mul(1000)?.checked_add(group.parse().ok()?)?;
        }
        let tile = Self { level, index, width };
        (tile.path() == path).then_some(tile)
    }
}

/// A decimal number with no sign and no leading zero.
fn canonical_number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))).then(|| s.parse().ok()).flatten()
}

/// The hash tiles at the right edge of a tree of `size` leaves, as
/// (level, index, width): at each level, the partial tile still growing
/// (none where the level's hashes fill whole tiles). Every hash appending
/// reads lies in one of them.
pub fn edge_tiles(size: u64) -> Vec<(u8, u64, u32)> {
    (0..64u8)
        .map_while(|level| {
            let hashes = size.checked_shr(u32::from(level) * u32::from(HEIGHT)).filter(|h| *h > 0)?;
            Some((level, hashes / WIDTH, (hashes % WIDTH) as u32))
        })
        .filter(|(_, _, width)| *width > 0)
        .collect()
}

/// [`edge_tiles`] as the store keys them: (level, index).
pub fn edge_keys(size: u64) -> Vec<(u8, u64)> {
    edge_tiles(size).into_iter().map(|(level, index, _)| (level, index)).collect()
}

/// What an append changed: the tiles to store (level, index, data) and
/// the new tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    pub size: u64,
    pub root: Hash,
    pub tiles: Vec<(u8, u64, Vec<u8>)>,
}

/// The tree's right edge: its size and the data of its edge tiles.
#[derive(Debug, Clone, Default)]
pub struct Edge {
    pub size: u64,
    tiles: HashMap<(u8, u64), Vec<u8>>,
}

impl Edge {
    /// The edge of a tree of `size`, from its edge tiles' data (as
    /// [`edge_tiles`] lists them; wider data is cut to the tree).
    pub fn new(size: u64, tiles: impl IntoIterator<Item = ((u8, u64), Vec<u8>)>) -> Result<Self, String> {
        let mut edge = Self { size, tiles: HashMap::new() };
        let mut given: HashMap<(u8, u64), Vec<u8>> = tiles.into_iter().collect();
        for (level, index, width) in edge_tiles(size) {
            let need = width as usize * tlog_tiles::HASH_SIZE;
            match given.remove(&(level, index)) {
                Some(mut data) if data.len() >= need => {
                    data.truncate(need);
                    edge.tiles.insert((level, index), data);
                }
                _ => {
                    let path = TileRef { level: Some(level), index, width }.path();
                    return Err(format!("tile {path} is missing or shorter than a tree of {size} needs"));
                }
            }
        }
        Ok(edge)
    }

    /// Appends `leaves` (each an entry's bytes, in order) and says what
    /// changed; the edge moves to the new tree.
    pub fn append(&mut self, leaves: &[Vec<u8>]) -> Result<Appended, tlog_tiles::Error> {
        let old = self.size;
        let mut reader = Reader { tiles: &self.tiles, overlay: HashMap::new() };
        for (n, leaf) in (old..).zip(leaves) {
            let start = stored_hash_index(0, n);
            for (i, hash) in (start..).zip(stored_hashes(n, leaf, &reader)?) {
                reader.overlay.insert(i, hash);
            }
        }
        let size = old + leaves.len() as u64;
        let root = tree_hash(size, &reader)?;
        let mut changed = Vec::new();
        for tile in Tile::new_tiles(HEIGHT, old, size) {
            changed.push((tile.level(), tile.level_index(), tile.read_data(&reader)?));
        }
        self.size = size;
        let edge = edge_keys(size);
        // Changed tiles replace the old ones; tiles left of the edge go.
        let mut tiles: HashMap<(u8, u64), Vec<u8>> = std::mem::take(&mut self.tiles);
        tiles.extend(changed.iter().map(|(l, n, data)| ((*l, *n), data.clone())));
        tiles.retain(|key, _| edge.contains(key));
        self.tiles = tiles;
        Ok(Appended { size, root, tiles: changed })
    }
}

/// Hashes from tiles in hand and from an append's new hashes.
pub struct Reader<'a> {
    pub tiles: &'a HashMap<(u8, u64), Vec<u8>>,
    pub overlay: HashMap<u64, Hash>,
}

impl HashReader for Reader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| match self.overlay.get(&i) {
                Some(hash) => Ok(*hash),
                None => {
                    let tile = Tile::from_index(HEIGHT, i);
                    let data = self.tiles.get(&(tile.level(), tile.level_index())).ok_or(tlog_tiles::Error::IndexesNotInTree)?;
                    tile.hash_at_index(data, i)
                }
            })
            .collect()
    }
}

/// Learns which hash tiles a proof reads: a proof's indexes depend only
/// on the sizes, so a proof run once on this (which answers made-up
/// hashes) names the tiles to fetch before running it on a [`Reader`].
#[derive(Default)]
pub struct Asked(std::cell::RefCell<Vec<u64>>);

impl Asked {
    /// The tiles (level, index) holding the hashes asked for.
    pub fn tiles(self) -> Vec<(u8, u64)> {
        let mut tiles: Vec<(u8, u64)> = self
            .0
            .into_inner()
            .into_iter()
            .map(|i| {
                let t = Tile::from_index(HEIGHT, i);
                (t.level(), t.level_index())
            })
            .collect();
        tiles.sort_unstable();
        tiles.dedup();
        tiles
    }
}

impl HashReader for Asked {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        self.0.borrow_mut().extend_from_slice(indexes);
        Ok(vec![tlog_tiles::EMPTY_HASH; indexes.len()])
    }
}

#[cfg(test)]
mod tests;
