//! Checking a log from outside, with nothing but its verifier key: its
//! checkpoints' signatures, every entry against the leaf hash the log
//! stored for it, and the tree the entries make against every checkpoint's
//! root. The log is read through [`Source`] at tlog-tiles paths, so the
//! same check runs online (HTTP) and over a copy in a directory.

use super::tiles::{Edge, TileRef, WIDTH};
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::{Checkpoint, HASH_SIZE, record_hash};

/// Where the log's files are read from, by tlog-tiles path (`checkpoint`,
/// `tile/0/000`, `tile/entries/001.p/7`); None for a file that is not there.
pub trait Source {
    fn get(&self, path: &str) -> impl std::future::Future<Output = anyhow::Result<Option<Vec<u8>>>>;
}

/// A log copied to a directory, at the same paths.
pub struct Directory(pub std::path::PathBuf);

impl Source for Directory {
    async fn get(&self, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.0.join(path)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("read {}: {e}", self.0.join(path).display())),
        }
    }
}

/// What is wrong, and where: the first bad entry's index when one can be
/// named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{what}", index.map(|i| format!("entry {i}: ")).unwrap_or_default())]
pub struct Finding {
    pub index: Option<u64>,
    pub what: String,
}

fn finding(index: Option<u64>, what: impl Into<String>) -> Finding {
    Finding { index, what: what.into() }
}

/// A log that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub size: u64,
    pub checkpoints: usize,
}

/// The keys to check with: those `given`, and any of the log's `published`
/// keys that signed a checkpoint beside a key already trusted — how a
/// rotation hands trust from the old key to the new, and back.
pub fn trusted(given: &[String], published: &[String], notes: &[Vec<u8>]) -> Vec<String> {
    let mut trusted: Vec<String> = given.to_vec();
    loop {
        let learned: Vec<String> = published
            .iter()
            .filter(|candidate| !trusted.contains(candidate))
            .filter(|candidate| {
                notes.iter().any(|note| trusted.iter().any(|k| checkpoint(note, k).is_ok()) && checkpoint(note, candidate).is_ok())
            })
            .cloned()
            .collect();
        if learned.is_empty() {
            return trusted;
        }
        trusted.extend(learned);
    }
}

/// A checkpoint's note checked against any of the keys.
pub fn checkpoint_any(note: &[u8], keys: &[String]) -> Result<Checkpoint, Finding> {
    let mut last = finding(None, "no key to check a checkpoint with");
    for key in keys {
        match checkpoint(note, key) {
            Ok(c) => return Ok(c),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A checkpoint's note checked against the key: its size and root.
pub fn checkpoint(note: &[u8], key: &str) -> Result<Checkpoint, Finding> {
    let verifier = StandardVerifier::new(key).map_err(|e| finding(None, format!("{key:?} is not a verifier key: {e}")))?;
    let parsed = Note::from_bytes(note).map_err(|e| finding(None, format!("a checkpoint is not a signed note: {e}")))?;
    parsed
        .verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| finding(None, format!("a checkpoint's signature does not verify with the key ({e})")))?;
    Checkpoint::from_bytes(parsed.text()).map_err(|e| finding(None, format!("a signed note is not a checkpoint: {e}")))
}

/// Checks the log in `source` against `keys` (any of them signing will
/// do; see [`trusted`]): its latest checkpoint and those in `history`
/// (notes of earlier checkpoints, any order), each signed; every entry up
/// to the latest's size against the stored leaf hash; the tree of the
/// entries against every checkpoint's root.
pub async fn verify(source: &impl Source, keys: &[String], history: &[Vec<u8>]) -> anyhow::Result<Result<Verified, Finding>> {
    let Some(latest) = source.get("checkpoint").await? else {
        return Ok(Err(finding(None, "the log has no checkpoint")));
    };
    let mut checkpoints = Vec::new();
    for note in history.iter().chain([&latest]) {
        match checkpoint_any(note, keys) {
            Ok(c) => checkpoints.push(c),
            Err(e) => return Ok(Err(e)),
        }
    }
    checkpoints.sort_by_key(Checkpoint::size);
    for pair in checkpoints.windows(2) {
        if pair[0].size() == pair[1].size() && pair[0].hash() != pair[1].hash() {
            let what = format!("two checkpoints of size {} sign different roots: the log showed two histories", pair[0].size());
            return Ok(Err(finding(None, what)));
        }
    }
    let size = checkpoints.last().map_or(0, Checkpoint::size);
    let (mut edge, mut next, mut matched) = (Edge::default(), 0usize, 0u64);
    // Checkpoints of the empty tree sign the empty hash.
    while let Some(c) = checkpoints.get(next).filter(|c| c.size() == 0) {
        if *c.hash() != tlog_tiles::EMPTY_HASH {
            return Ok(Err(finding(None, format!("a checkpoint of size 0 signs {} rather than the empty tree", c.hash()))));
        }
        next += 1;
    }
    // Hash tiles above level 0 as the entries make them, checked at the end
    // against the log's (clients' proofs are read from them).
    let mut upper: std::collections::BTreeMap<(u8, u64), Vec<u8>> = Default::default();
    for n in 0..size.div_ceil(WIDTH) {
        let width = (size - n * WIDTH).min(WIDTH);
        let first = n * WIDTH;
        let tile = |level| TileRef { level, index: n, width: width as u32 }.path();
        let entries = match source.get(&tile(None)).await? {
            Some(bundle) => match bundle_entries(&bundle) {
                Some(entries) => entries,
                None => return Ok(Err(finding(Some(first), format!("{} is not an entry bundle", tile(None))))),
            },
            None => return Ok(Err(finding(Some(first), format!("{} is missing", tile(None))))),
        };
        if (entries.len() as u64) < width {
            return Ok(Err(finding(Some(first + entries.len() as u64), "missing: the entries end before the checkpoint's size")));
        }
        let Some(hashes) = source.get(&tile(Some(0))).await? else {
            return Ok(Err(finding(Some(first), format!("{} is missing", tile(Some(0))))));
        };
        for (i, entry) in (first..).zip(&entries) {
            let at = ((i - first) as usize) * HASH_SIZE;
            if hashes.get(at..at + HASH_SIZE) != Some(&record_hash(entry).0[..]) {
                let what = "does not hash to the leaf hash the log stored for it (changed, removed or moved)";
                return Ok(Err(finding(Some(i), what)));
            }
        }
        // The tree grows to each checkpoint's size in turn.
        let mut done = 0usize;
        while done < entries.len() {
            let stop = checkpoints.get(next).map_or(u64::MAX, Checkpoint::size);
            let take = (stop.saturating_sub(edge.size) as usize).min(entries.len() - done);
            let appended = edge.append(&entries[done..done + take]).map_err(|e| anyhow::anyhow!("{e}"))?;
            upper.extend(appended.tiles.into_iter().filter(|(level, _, _)| *level > 0).map(|(l, n, data)| ((l, n), data)));
            done += take;
            while let Some(c) = checkpoints.get(next).filter(|c| c.size() == edge.size) {
                if *c.hash() != appended.root {
                    let what = format!(
                        "the entries before {} do not make the root its checkpoint signed: one of entries {matched}–{} was changed, and its stored hash with it",
                        c.size(),
                        c.size() - 1
                    );
                    return Ok(Err(finding(None, what)));
                }
                matched = c.size();
                next += 1;
            }
        }
    }
    for ((level, index), data) in upper {
        let path = TileRef { level: Some(level), index, width: (data.len() / HASH_SIZE) as u32 }.path();
        if source.get(&path).await?.as_deref() != Some(&data[..]) {
            return Ok(Err(finding(None, format!("{path} is missing or is not the tile the entries make"))));
        }
    }
    Ok(Ok(Verified { size, checkpoints: checkpoints.len() }))
}

/// An entry bundle of `entries`: each a big-endian u16 length, then its
/// bytes; None if one is over [`super::append::MAX_ENTRY`] bytes.
pub fn bundle(entries: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut bundle = Vec::new();
    for entry in entries {
        bundle.extend_from_slice(&u16::try_from(entry.len()).ok()?.to_be_bytes());
        bundle.extend_from_slice(entry);
    }
    Some(bundle)
}

/// The entries of a bundle (each a big-endian u16 length, then its bytes).
pub fn bundle_entries(bundle: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        entries.push(rest.get(2..2 + len)?.to_vec());
        rest = &rest[2 + len..];
    }
    Some(entries)
}
