//! `paved audit trace` and `paved audit verify-bundle`: a revision's
//! lineage — artifact and attestations, policy decision, identity and
//! credentials, canary verdicts, promotion or rollback — as one bundle of
//! entries, each with its inclusion proof against one signed checkpoint,
//! checkable offline with nothing but the log's verifier key.

use super::{describe, query};
use crate::client::failed;
use anyhow::Context;
use base64::{Engine, engine::general_purpose::STANDARD as B64};
pub use paved_audit::log::bundle::{Bundle, verify};
use paved_audit::log::bundle::{BundleEntry, FORMAT, revision_number};
use paved_grpc::client::AuthChannel;
use paved_proto::audit::v1::{
    GetInclusionProofRequest, LogEntry, audit_service_client::AuditServiceClient, get_inclusion_proof_request::Leaf,
};

/// The workload's chain from revision `revision`'s deployment (the latest
/// when None) to the next revision's, with proofs against one checkpoint.
pub async fn trace(
    client: &mut AuditServiceClient<AuthChannel>,
    key: &str,
    name: &str,
    env: &str,
    revision: Option<i64>,
) -> anyhow::Result<Bundle> {
    let whose = query::Whose::Workload { name: name.to_string(), env: env.to_string() };
    let found = query::fetch(client, key, &whose, None, None).await?.context("the log holds nothing about this workload")?;
    let deployed: Vec<(usize, i64)> = found.entries.iter().enumerate().filter_map(|(i, c)| Some((i, revision_number(&c.entry)?))).collect();
    let at = match revision {
        Some(n) => deployed.iter().position(|(_, r)| *r == n).with_context(|| {
            let known: Vec<String> = deployed.iter().map(|(_, r)| r.to_string()).collect();
            format!("revision {n} of {name} in {env} is not in the log (revisions there: {})", known.join(", "))
        })?,
        None => deployed.len().checked_sub(1).with_context(|| format!("no revision of {name} in {env} is in the log"))?,
    };
    let start = deployed[at].0;
    let end = deployed.get(at + 1).map_or(found.entries.len(), |(i, _)| *i);
    // Every proof against the last page's checkpoint, so the bundle needs
    // one: an entry proven in an earlier page's is proven again.
    let mut entries = Vec::new();
    for checked in &found.entries[start..end] {
        let index = checked.index;
        let hashes = if checked.proven_in == found.size {
            checked.hashes.clone()
        } else {
            let proof = client
                .get_inclusion_proof(GetInclusionProofRequest { leaf: Some(Leaf::Index(index)), tree_size: found.size })
                .await
                .map_err(failed)?
                .into_inner();
            anyhow::ensure!(proof.entry == checked.bytes, "the log served entry {index} with other bytes than a moment ago");
            proof.hashes
        };
        entries.push(BundleEntry { index, entry: B64.encode(&checked.bytes), hashes: hashes.iter().map(|h| B64.encode(h)).collect() });
    }
    let bundle = Bundle { format: FORMAT.into(), workload: found.chain, revision: deployed[at].1, checkpoint: found.note, entries };
    // What is handed over is what verify-bundle accepts.
    verify(&bundle, key)?;
    Ok(bundle)
}

/// The verified entries of a bundle: a table for people; for scripts, each
/// entry as `audit query` shows it.
pub fn print(bundle: &Bundle, entries: &[(u64, LogEntry)], output: crate::output::Format) -> anyhow::Result<()> {
    let table = || {
        let rows: Vec<Vec<String>> = entries.iter().map(|(i, e)| describe::row(*i, e)).collect();
        let table = crate::output::table(&["INDEX", "APPENDED", "TYPE", "ACTOR", "WHAT"], &rows);
        format!("lineage of revision {} of {}:\n{table}", bundle.revision, bundle.workload)
    };
    let json = || {
        let entries: Vec<serde_json::Value> = entries.iter().map(|(i, e)| describe::json(*i, e)).collect();
        serde_json::json!({ "workload": bundle.workload, "revision": bundle.revision, "verified": true, "entries": entries })
    };
    crate::output::print(output, table, json)
}

pub fn read(path: &std::path::Path) -> anyhow::Result<Bundle> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a bundle", path.display()))
}
