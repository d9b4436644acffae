//! What a leaf says besides the event: the workload it concerns and who
//! acted, each with a back-pointer to the previous leaf of the same one; and
//! a person's name replaced, in the leaf and in the event inside it, by a
//! salted commitment, so that erasing the salt erases the name without
//! touching a hash.

use paved_proto::{
    audit::v1::LogEntry,
    events::v1::{Envelope, envelope::Payload},
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// What a commitment hashes before the salt: commitments made for another
/// purpose can never collide with these.
const DOMAIN: &[u8] = b"paved/audit/subject\n";

/// The prefix of a commitment as leaves write it.
pub const COMMITMENT_PREFIX: &str = "sha256:";

/// A person's name, as opposed to the platform (`paved`) or a workload or
/// service (a SPIFFE id): what erasure is for.
pub fn is_person(subject: &str) -> bool {
    !subject.is_empty() && subject != "paved" && !subject.starts_with("spiffe://")
}

/// `sha256:<hex>` of the domain, the salt and the subject.
pub fn commitment(salt: &[u8], subject: &str) -> String {
    let digest = Sha256::new().chain_update(DOMAIN).chain_update(salt).chain_update(subject.as_bytes()).finalize();
    format!("{COMMITMENT_PREFIX}{}", hex::encode(digest))
}

/// The names in an event that belong to people.
pub fn people(event: &Envelope) -> Vec<&str> {
    let names: Vec<&str> = match &event.payload {
        Some(Payload::BrokerActed(acted)) => vec![&acted.actor, &acted.for_subject],
        Some(Payload::AccessDenied(denied)) => vec![&denied.subject],
        Some(Payload::WorkloadPowered(powered)) => vec![&powered.actor],
        _ => Vec::new(),
    };
    names.into_iter().filter(|n| is_person(n)).collect()
}

/// Who acted, as the event names them (before any commitment).
fn actor(event: &Envelope) -> &str {
    match &event.payload {
        Some(Payload::BrokerActed(acted)) => &acted.actor,
        Some(Payload::AccessDenied(denied)) => &denied.subject,
        Some(Payload::WorkloadPowered(powered)) => &powered.actor,
        _ => "",
    }
}

/// `environments/<env>/workloads/<name>` for a workload's SPIFFE id
/// (`spiffe://paved/<env>/<name>`); platform services are no workload.
fn workload_of_spiffe(id: &str) -> Option<String> {
    paved_grpc::spiffe::workload_of(id).map(|(env, name)| format!("environments/{env}/workloads/{name}"))
}

/// The workload an event concerns: its subject when that names one, else a
/// workload whose identity acted, was issued for or was acted on.
pub fn workload(event: &Envelope) -> Option<String> {
    if let Some(rest) = event.subject.strip_prefix("environments/")
        && let Some((_, name)) = rest.split_once("/workloads/")
        && !name.is_empty()
    {
        return Some(event.subject.clone());
    }
    match &event.payload {
        Some(Payload::BrokerActed(acted)) => {
            [&acted.actor, &acted.for_subject, &acted.target].into_iter().find_map(|id| workload_of_spiffe(id))
        }
        _ => None,
    }
}

/// The event with every person's name replaced by `commit(name)`: in the
/// fields that hold names, and wherever those names stand as words in the
/// free text beside them (a refusal's reason names who asked and for whom).
fn redact(event: &Envelope, commit: &impl Fn(&str) -> String) -> Envelope {
    let names: Vec<String> = people(event).into_iter().map(str::to_string).collect();
    let mut event = event.clone();
    let replace = |name: &mut String| {
        if is_person(name) {
            *name = commit(name);
        }
    };
    let scrub = |text: &mut String| {
        for name in &names {
            *text = replace_word(text, name, &commit(name));
        }
    };
    match &mut event.payload {
        Some(Payload::BrokerActed(acted)) => {
            replace(&mut acted.actor);
            replace(&mut acted.for_subject);
            scrub(&mut acted.reason);
            scrub(&mut acted.target);
        }
        Some(Payload::AccessDenied(denied)) => {
            replace(&mut denied.subject);
            scrub(&mut denied.message);
        }
        Some(Payload::WorkloadPowered(powered)) => {
            replace(&mut powered.actor);
            scrub(&mut powered.note);
        }
        _ => {}
    }
    event
}

/// `text` with each occurrence of `word` that is not part of a longer word
/// (letters, digits, `-`, `_`, `@` around it, or a `.` inside a name such as
/// `dora.smith`) replaced; a sentence's full stop ends a word.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let part = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || "-_.@".contains(c));
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().next_back();
        let mut after = rest[at + word.len()..].chars();
        let joined = match after.next() {
            Some('.') => after.next().is_some_and(char::is_alphanumeric),
            c => part(c),
        };
        out.push_str(&rest[..at]);
        out.push_str(if part(before) || joined { word } else { with });
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

/// A leaf about to be appended, with what the query side keeps of it.
pub struct Leaf {
    pub entry: LogEntry,
    /// The chains it joins: its workload and its actor, as the entry says them.
    pub workload: Option<String>,
    pub actor: Option<String>,
}

/// Builds leaves from `index` on: each event with people's names committed
/// under `salts` (which must hold a salt for every name [`people`] finds)
/// and back-pointers from `heads` (chain key → last index), which it moves
/// on past each leaf.
pub fn leaves(
    events: &[&Envelope],
    stream: &str,
    append_time: prost_types::Timestamp,
    mut index: u64,
    salts: &HashMap<String, Vec<u8>>,
    heads: &mut HashMap<String, u64>,
) -> Vec<Leaf> {
    let commit = committer(salts);
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let (workload, actor) = chains(event, &commit);
        let mut step = |key: Option<String>| key.and_then(|k| heads.insert(k, index));
        let workload_prev = step(workload.as_ref().map(|w| chain_key(Chain::Workload, w)));
        let actor_prev = step(actor.as_ref().map(|a| chain_key(Chain::Actor, a)));
        let entry = LogEntry {
            event: Some(redact(event, &commit)),
            stream: stream.to_string(),
            append_time: Some(append_time),
            workload: workload.clone().unwrap_or_default(),
            workload_prev,
            actor: actor.clone().unwrap_or_default(),
            actor_prev,
        };
        out.push(Leaf { entry, workload, actor });
        index += 1;
    }
    out
}

/// A name's commitment under its salt.
fn committer(salts: &HashMap<String, Vec<u8>>) -> impl Fn(&str) -> String {
    // Without its salt a name is not kept at all (never an unsalted,
    // guessable hash); callers give every salt, so this is a guard.
    |name: &str| salts.get(name).map_or_else(|| format!("{COMMITMENT_PREFIX}unsalted"), |salt| commitment(salt, name))
}

/// The event's workload and actor, as its leaf names them.
fn chains(event: &Envelope, commit: &impl Fn(&str) -> String) -> (Option<String>, Option<String>) {
    let actor = Some(actor(event)).filter(|a| !a.is_empty()).map(|a| if is_person(a) { commit(a) } else { a.to_string() });
    (workload(event), actor)
}

/// The keys of the chains an event joins, as the store keeps their heads.
pub fn chain_keys(event: &Envelope, salts: &HashMap<String, Vec<u8>>) -> Vec<String> {
    let (workload, actor) = chains(event, &committer(salts));
    workload.map(|w| chain_key(Chain::Workload, &w)).into_iter().chain(actor.map(|a| chain_key(Chain::Actor, &a))).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chain {
    Workload,
    Actor,
}

/// The key of a chain's head in the store: workloads and actors never share one.
pub fn chain_key(chain: Chain, name: &str) -> String {
    match chain {
        Chain::Workload => format!("w:{name}"),
        Chain::Actor => format!("a:{name}"),
    }
}

#[cfg(test)]
mod tests;
