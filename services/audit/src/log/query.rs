//! Questions with checkable answers: the entries of one workload or one
//! actor, each with its inclusion proof against one checkpoint; and
//! erasure of a person, which deletes their salt and nothing else.

use super::{
    append::Log,
    chains::{self, On},
    entry,
    read::{ReadError, Signed},
    store,
};
use tlog_tiles::Hash;

/// Whose entries.
pub enum Asked<'a> {
    Workload { environment: &'a str, name: &'a str },
    Actor(&'a str),
}

/// An entry with its audit path in the answer's checkpoint.
pub struct Proven {
    pub index: u64,
    pub entry: Vec<u8>,
    pub hashes: Vec<Hash>,
}

pub struct Answer {
    pub checkpoint: Signed,
    /// The chain as leaves name it: the workload, or the actor (a person's
    /// commitment).
    pub chain: String,
    /// A person's salt, for the client to open the commitment with.
    pub salt: Option<Vec<u8>>,
    pub entries: Vec<Proven>,
    /// Where the next page starts, when there may be one.
    pub next: Option<u64>,
}

/// What erasing a person did.
pub struct Erased {
    pub commitment: String,
    pub entries: u64,
}

impl Log {
    /// Up to `limit` entries of a chain from leaf `from` on, appended in
    /// `window` (Unix ms), proven against the latest checkpoint.
    pub async fn query(&self, asked: Asked<'_>, window: (Option<i64>, Option<i64>), from: u64, limit: u64) -> Result<Answer, ReadError> {
        let started = std::time::Instant::now();
        let checkpoint = self.checkpoint().await?;
        let (chain, salt) = match asked {
            Asked::Workload { environment, name } => (format!("environments/{environment}/workloads/{name}"), None),
            Asked::Actor(actor) if entry::is_person(actor) => match chains::salt(self.db(), actor).await? {
                Some(salt) => (entry::commitment(&salt, actor), Some(salt)),
                // Never seen, or erased: nothing can be found under the name.
                None => return Ok(Answer { checkpoint, chain: String::new(), salt: None, entries: Vec::new(), next: None }),
            },
            Asked::Actor(actor) => (actor.to_string(), None),
        };
        let on = if chain.starts_with("environments/") { On::Workload(&chain) } else { On::Actor(&chain) };
        let indexes = chains::on_chain(self.db(), on, from, checkpoint.size, window, limit).await?;
        let mut stored = store::leaves_at(self.db(), &indexes).await?;
        let mut entries = Vec::with_capacity(indexes.len());
        for index in &indexes {
            let hashes = self.inclusion(*index, checkpoint.size).await?;
            let entry = stored.remove(index).ok_or_else(|| ReadError::Tree(format!("leaf {index} is in the tree but not stored")))?;
            entries.push(Proven { index: *index, entry, hashes });
        }
        let next = (indexes.len() as u64 == limit).then(|| indexes.last().map_or(from, |i| i + 1));
        super::metrics::read("query", started.elapsed());
        Ok(Answer { checkpoint, chain, salt, entries, next })
    }

    /// Deletes a person's salt: their commitments stay in the leaves (the
    /// proofs do not change) and no longer open. `None` when there is no
    /// salt: never seen, or erased already.
    pub async fn erase(&self, subject: &str) -> Result<Option<Erased>, ReadError> {
        let Some(salt) = chains::salt(self.db(), subject).await? else {
            return Ok(None);
        };
        let commitment = entry::commitment(&salt, subject);
        let entries = chains::count_actor(self.db(), &commitment).await?;
        if !chains::erase(self.db(), subject).await? {
            return Ok(None);
        }
        tracing::info!(commitment = %commitment, entries, "a person's salt was erased");
        Ok(Some(Erased { commitment, entries }))
    }
}
