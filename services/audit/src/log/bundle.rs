//! A revision's lineage as one file, `paved-audit-bundle/v1`: entries of
//! the log, each with its inclusion proof against one signed checkpoint,
//! checkable offline with nothing but the log's verifier key. `paved audit
//! trace` writes one and `paved audit verify-bundle` checks one; the check
//! lives beside the log's format because whoever holds a bundle may not
//! have written it.

use super::answer::{self, Before, Chain, Received};
use base64::{Engine, engine::general_purpose::STANDARD as B64};
use paved_proto::{audit::v1::LogEntry, events::v1::envelope::Payload};
use serde::{Deserialize, Serialize};

/// The bundle's format, its first field.
pub const FORMAT: &str = "paved-audit-bundle/v1";

#[derive(Debug, Serialize, Deserialize)]
pub struct Bundle {
    pub format: String,
    /// `environments/<env>/workloads/<name>`.
    pub workload: String,
    pub revision: i64,
    /// The signed checkpoint every proof leads to.
    pub checkpoint: String,
    pub entries: Vec<BundleEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BundleEntry {
    pub index: u64,
    /// The LogEntry's bytes, base64.
    pub entry: String,
    /// The audit path, base64 hashes, leaf to root.
    pub hashes: Vec<String>,
}

/// The revision number an entry deploys, if it is a deployment.
pub fn revision_number(entry: &LogEntry) -> Option<i64> {
    match entry.event.as_ref()?.payload.as_ref()? {
        Payload::RevisionDeployed(r) => Some(r.number),
        _ => None,
    }
}

/// Checks a bundle with nothing but the key; returns its entries, decoded.
pub fn verify(bundle: &Bundle, key: &str) -> anyhow::Result<Vec<(u64, LogEntry)>> {
    anyhow::ensure!(bundle.format == FORMAT, "not a {FORMAT} bundle (format {:?})", bundle.format);
    let decoded: Vec<(u64, Vec<u8>, Vec<Vec<u8>>)> = bundle
        .entries
        .iter()
        .map(|e| {
            let hashes = e.hashes.iter().map(|h| B64.decode(h)).collect::<Result<Vec<_>, _>>();
            Ok((e.index, B64.decode(&e.entry)?, hashes?))
        })
        .collect::<Result<_, base64::DecodeError>>()
        .map_err(|e| anyhow::anyhow!("the bundle's entries are not base64: {e}"))?;
    let received: Vec<Received> = decoded.iter().map(|(index, entry, hashes)| Received { index: *index, entry, hashes }).collect();
    // The first entry's predecessor is the revision before: outside the
    // bundle. From there on, every entry of the workload is in it.
    let (_, entries) =
        answer::check(bundle.checkpoint.as_bytes(), key, &Chain::Workload(bundle.workload.clone()), Before::Unchecked, &received)
            .map_err(|f| anyhow::anyhow!("NOT verified: {f}"))?;
    let first = entries.first().and_then(revision_number);
    anyhow::ensure!(
        first == Some(bundle.revision),
        "NOT verified: the bundle does not start with the deployment of revision {}",
        bundle.revision
    );
    Ok(decoded.iter().map(|(i, _, _)| *i).zip(entries).collect())
}
