//! Checking an answer from outside, with nothing but the log's verifier
//! key: the checkpoint's signature, each entry's inclusion proof, that each
//! entry is on the chain asked about, and — with the back-pointers inside
//! the entries — that no entry of the chain was left out between the first
//! and the last. `paved audit query` and `paved audit verify-bundle` both
//! check this way.

use super::entry::{self, COMMITMENT_PREFIX};
use super::verify::{Finding, checkpoint};
use paved_proto::audit::v1::LogEntry;
use prost::Message;
use tlog_tiles::{Hash, check_record, record_hash};

/// The chain an answer is about.
#[derive(Debug, Clone)]
pub enum Chain {
    /// `environments/<env>/workloads/<name>`.
    Workload(String),
    /// An actor as leaves name it (a SPIFFE id, `paved`, or a person's
    /// commitment), with the person's name and salt when it is one.
    Actor { chain: String, person: Option<(String, Vec<u8>)> },
}

impl Chain {
    fn name(&self) -> &str {
        match self {
            Chain::Workload(w) => w,
            Chain::Actor { chain, .. } => chain,
        }
    }

    /// The entry's back-pointer on this chain, or why it is not on it.
    fn prev(&self, entry: &LogEntry) -> Result<Option<u64>, String> {
        let (on, prev) = match self {
            Chain::Workload(_) => (&entry.workload, entry.workload_prev),
            Chain::Actor { .. } => (&entry.actor, entry.actor_prev),
        };
        if on != self.name() {
            return Err(format!("is about {on:?}, not {:?}", self.name()));
        }
        Ok(prev)
    }
}

/// One entry of an answer as received.
pub struct Received<'a> {
    pub index: u64,
    pub entry: &'a [u8],
    pub hashes: &'a [Vec<u8>],
}

/// What the first entry must point back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    /// Nothing: the answer starts at the chain's first entry.
    Start,
    /// This index: the last entry of the page before.
    Index(u64),
    /// Anything: the answer starts in the middle (a time bound), checked
    /// apart (see `paved audit query`).
    Unchecked,
}

/// Checks an answer; returns the tree size proven against and the entries,
/// decoded, in order.
pub fn check(note: &[u8], key: &str, chain: &Chain, before: Before, entries: &[Received<'_>]) -> Result<(u64, Vec<LogEntry>), Finding> {
    let signed = checkpoint(note, key)?;
    let (size, root) = (signed.size(), *signed.hash());
    if let Chain::Actor { chain, person: Some((name, salt)) } = chain {
        let opened = entry::commitment(salt, name);
        if &opened != chain || !chain.starts_with(COMMITMENT_PREFIX) {
            return Err(Finding { index: None, what: format!("the salt given does not open {chain} for {name}") });
        }
    }
    let mut out = Vec::with_capacity(entries.len());
    let mut last: Option<u64> = None;
    for received in entries {
        let at = Some(received.index);
        let bad = |what: String| Finding { index: at, what };
        let proof: Vec<Hash> = received
            .hashes
            .iter()
            .map(|h| h.as_slice().try_into().map(Hash).map_err(|_| bad("a proof hash is not 32 bytes".into())))
            .collect::<Result<_, _>>()?;
        check_record(&proof, size, root, received.index, record_hash(received.entry))
            .map_err(|e| bad(format!("its inclusion proof does not lead to the checkpoint's root ({e})")))?;
        let decoded = LogEntry::decode(received.entry).map_err(|e| bad(format!("not a LogEntry: {e}")))?;
        let prev = chain.prev(&decoded).map_err(bad)?;
        let expected = match (last, before) {
            (Some(i), _) | (None, Before::Index(i)) => Some(Some(i)),
            (None, Before::Start) => Some(None),
            (None, Before::Unchecked) => None,
        };
        if let Some(expected) = expected
            && prev != expected
        {
            return Err(bad(match (prev, expected) {
                (Some(p), _) => format!(
                    "it names entry {p} as the previous entry of {}, but the answer {}: an entry was left out",
                    chain.name(),
                    expected.map_or("starts here".to_string(), |e| format!("goes from {e} to {}", received.index))
                ),
                (None, _) => format!("it says it is the first entry of {}, but the answer has an earlier one", chain.name()),
            }));
        }
        if last.is_some_and(|l| received.index <= l) {
            return Err(bad("the answer is not in log order".into()));
        }
        last = Some(received.index);
        out.push(decoded);
    }
    Ok((size, out))
}

#[cfg(test)]
mod tests;
