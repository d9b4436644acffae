//! `paved audit query` and `paved audit erase`: a workload's or an actor's
//! entries, each checked against the log's key and its inclusion proof,
//! with the back-pointers inside the entries showing that none was left out.

use super::describe;
use crate::client::failed;
use anyhow::Context;
use paved_audit::log::answer::{self, Before, Chain, Received};
use paved_grpc::client::AuthChannel;
use paved_proto::audit::v1::{
    EraseSubjectRequest, GetInclusionProofRequest, LogEntry, QueryLogRequest, QueryLogResponse, audit_service_client::AuditServiceClient,
    get_inclusion_proof_request::Leaf,
};

/// Whose entries.
pub enum Whose {
    Workload { name: String, env: String },
    Actor(String),
}

/// The verified entries of a chain, and the checkpoint of the last page.
pub struct Found {
    pub chain: String,
    pub entries: Vec<Checked>,
    pub note: String,
    pub size: u64,
}

/// An entry as its page proved it.
pub struct Checked {
    pub index: u64,
    pub bytes: Vec<u8>,
    /// Its audit path in the tree of `proven_in` entries.
    pub hashes: Vec<Vec<u8>>,
    pub proven_in: u64,
    pub entry: LogEntry,
}

/// Every page of the answer, each checked; `Ok(None)` for a person with no
/// salt (never seen, or erased).
pub async fn fetch(
    client: &mut AuditServiceClient<AuthChannel>,
    key: &str,
    whose: &Whose,
    since: Option<prost_types::Timestamp>,
    until: Option<prost_types::Timestamp>,
) -> anyhow::Result<Option<Found>> {
    let (workload, environment, actor) = match whose {
        Whose::Workload { name, env } => (name.clone(), env.clone(), String::new()),
        Whose::Actor(a) => (String::new(), String::new(), a.clone()),
    };
    let mut page_token = String::new();
    let mut found: Option<Found> = None;
    loop {
        let request = QueryLogRequest {
            workload: workload.clone(),
            environment: environment.clone(),
            actor: actor.clone(),
            since,
            until,
            page_size: 1000,
            page_token: page_token.clone(),
        };
        let page = client.query_log(request).await.map_err(failed)?.into_inner();
        if page.chain.is_empty() {
            return Ok(None);
        }
        let chain = chain_of(whose, &page);
        let before = match found.as_ref().and_then(|f| f.entries.last()) {
            Some(last) => Before::Index(last.index),
            None if since.is_some() => Before::Unchecked,
            None => Before::Start,
        };
        let note = page.checkpoint.as_ref().map(|c| c.note.clone()).context("the answer carries no checkpoint")?;
        let received: Vec<Received> =
            page.entries.iter().map(|e| Received { index: e.index, entry: &e.entry, hashes: &e.hashes }).collect();
        let (size, decoded) =
            answer::check(note.as_bytes(), key, &chain, before, &received).map_err(|f| anyhow::anyhow!("NOT verified: {f}"))?;
        // A time-bounded answer: the entry before the first must be older
        // than the bound, or one was left out at the start.
        if before == Before::Unchecked
            && let (Some(first), Some(since)) = (decoded.first(), since.as_ref())
        {
            let prev = match chain {
                Chain::Workload(_) => first.workload_prev,
                Chain::Actor { .. } => first.actor_prev,
            };
            if let Some(prev) = prev {
                check_older(client, key, &chain, prev, since, &note).await?;
            }
        }
        let f = found.get_or_insert_with(|| Found { chain: page.chain.clone(), entries: Vec::new(), note: String::new(), size: 0 });
        f.entries.extend(page.entries.into_iter().zip(decoded).map(|(e, entry)| Checked {
            index: e.index,
            bytes: e.entry,
            hashes: e.hashes,
            proven_in: size,
            entry,
        }));
        (f.note, f.size) = (note, size);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(found)
}

fn chain_of(whose: &Whose, page: &QueryLogResponse) -> Chain {
    match whose {
        Whose::Workload { name, env } => Chain::Workload(format!("environments/{env}/workloads/{name}")),
        Whose::Actor(actor) => {
            Chain::Actor { chain: page.chain.clone(), person: (!page.salt.is_empty()).then(|| (actor.clone(), page.salt.clone())) }
        }
    }
}

/// Entry `index` is on the chain, proven in the same checkpoint, and was
/// appended before `since`.
async fn check_older(
    client: &mut AuditServiceClient<AuthChannel>,
    key: &str,
    chain: &Chain,
    index: u64,
    since: &prost_types::Timestamp,
    note: &str,
) -> anyhow::Result<()> {
    let size = paved_audit::log::verify::checkpoint(note.as_bytes(), key).map_err(|f| anyhow::anyhow!("{f}"))?.size();
    let proof = client
        .get_inclusion_proof(GetInclusionProofRequest { leaf: Some(Leaf::Index(index)), tree_size: size })
        .await
        .map_err(failed)?
        .into_inner();
    let received = [Received { index, entry: &proof.entry, hashes: &proof.hashes }];
    let (_, decoded) =
        answer::check(note.as_bytes(), key, chain, Before::Unchecked, &received).map_err(|f| anyhow::anyhow!("NOT verified: {f}"))?;
    let appended = decoded.first().and_then(|e| e.append_time).map(|t| (t.seconds, t.nanos)).unwrap_or_default();
    anyhow::ensure!(
        appended < (since.seconds, since.nanos),
        "NOT verified: entry {index}, the one before the answer's first, was appended after --since: the answer left it out"
    );
    Ok(())
}

/// `--since 24h` or an RFC 3339 time.
pub fn parse_time(text: &str) -> Result<prost_types::Timestamp, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(paved_proto::timestamp_from_millis(t.timestamp_millis()));
    }
    let seconds = match crate::ttl::seconds(text) {
        None => return Err(format!("{text:?} is neither a duration (24h, 30m, 7d, 90s) nor an RFC 3339 time")),
        Some(Err(_)) => return Err(format!("{text:?}: the unit must be s, m, h or d")),
        Some(Ok(s)) => i64::try_from(s).unwrap_or(i64::MAX),
    };
    Ok(paved_proto::timestamp_from_millis(chrono::Utc::now().timestamp_millis() - seconds.saturating_mul(1000)))
}

/// Prints a checked answer: a table, or JSON lines' worth of objects.
pub fn print(found: &Found, kind: Option<&str>, json: bool) -> anyhow::Result<()> {
    let shown: Vec<_> =
        found.entries.iter().filter(|c| kind.is_none_or(|k| c.entry.event.as_ref().is_some_and(|ev| ev.r#type.contains(k)))).collect();
    if json {
        let rows: Vec<_> = shown.iter().map(|c| describe::json(c.index, &c.entry)).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let rows: Vec<Vec<String>> = shown.iter().map(|c| describe::row(c.index, &c.entry)).collect();
        print!("{}", crate::output::table(&["INDEX", "APPENDED", "TYPE", "ACTOR", "WHAT"], &rows));
    }
    eprintln!(
        "verified: {} entries of {}, each proven in the log's tree of {} entries; none of its entries left out between the first and the last",
        found.entries.len(),
        found.chain,
        found.size
    );
    Ok(())
}

pub async fn erase(client: &mut AuditServiceClient<AuthChannel>, subject: &str, output: crate::output::Format) -> anyhow::Result<()> {
    let erased = client.erase_subject(EraseSubjectRequest { subject: subject.to_string() }).await.map_err(failed)?.into_inner();
    let text = || {
        format!(
            "erased {subject}: the salt of {} is deleted, so it no longer opens to the name; {} entries keep it, with their ids, times, types, workloads and proofs\n",
            erased.commitment, erased.entries
        )
    };
    crate::output::print(
        output,
        text,
        || serde_json::json!({ "subject": subject, "commitment": erased.commitment, "entries": erased.entries }),
    )
}
