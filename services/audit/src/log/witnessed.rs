//! Cosignatures the log received from its witnesses: accepted only from
//! the witnesses it is told to trust, only over a checkpoint it signed,
//! kept in `log_cosignatures` and served under the checkpoint they cosign.

use super::{
    append::Log,
    cosign::CosignatureVerifier,
    schema::{LogCheckpoints, LogCosignatures},
    store::{int, uint},
};
use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Expr, ExprTrait, OnConflict, Order, Query},
};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    #[error("not a cosigned checkpoint: {0}")]
    Malformed(String),
    #[error("this log never signed a checkpoint of that size and root")]
    NotOurs,
    #[error("no witness this log trusts cosigned it (it trusts {0})")]
    Untrusted(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The text of a signed note: what a signature covers.
fn text(note: &[u8]) -> Result<Vec<u8>, CosignError> {
    let parsed = signed_note::Note::from_bytes(note).map_err(|e| CosignError::Malformed(e.to_string()))?;
    Ok(parsed.text().to_vec())
}

impl Log {
    /// Keeps the cosignatures on `note` made by trusted witnesses over a
    /// checkpoint this log signed; returns the witnesses', by label.
    pub async fn add_cosignatures(&self, note: &[u8]) -> Result<Vec<String>, CosignError> {
        let parsed = signed_note::Note::from_bytes(note).map_err(|e| CosignError::Malformed(e.to_string()))?;
        let cosigned = parsed.text().to_vec();
        let checkpoint = tlog_tiles::Checkpoint::from_bytes(&cosigned).map_err(|e| CosignError::Malformed(e.to_string()))?;
        let query = Query::select()
            .column(LogCheckpoints::Note)
            .from(LogCheckpoints::Table)
            .and_where(Expr::col(LogCheckpoints::Size).eq(int(checkpoint.size())))
            .to_owned();
        let ours: Option<String> = self.db().query_one(&query).await?.map(|row| row.try_get("", "note")).transpose()?;
        if ours.map(|n| text(n.as_bytes())).transpose()?.as_deref() != Some(&cosigned[..]) {
            return Err(CosignError::NotOurs);
        }
        // Checked before any await: signed-note's verifier list is not Send.
        let verified: Vec<(String, String)> = {
            self.witnesses()
                .iter()
                .filter_map(|witness| {
                    let list = signed_note::VerifierList::new(vec![Box::new(witness.clone())]);
                    let (signatures, _) = parsed.verify(&list).ok()?;
                    let line = signatures.first()?.to_bytes();
                    Some((witness.label(), String::from_utf8_lossy(&line).into_owned()))
                })
                .collect()
        };
        let now = chrono::Utc::now().timestamp_millis();
        let mut kept = Vec::new();
        for (witness, line) in verified {
            let insert = Query::insert()
                .into_table(LogCosignatures::Table)
                .columns([LogCosignatures::Size, LogCosignatures::Witness, LogCosignatures::Line, LogCosignatures::CreateTimeMs])
                .values_panic([int(checkpoint.size()).into(), witness.clone().into(), line.into(), now.into()])
                // A witness cosigning the same checkpoint again: its latest.
                .on_conflict(
                    OnConflict::columns([LogCosignatures::Size, LogCosignatures::Witness])
                        .update_columns([LogCosignatures::Line, LogCosignatures::CreateTimeMs])
                        .to_owned(),
                )
                .to_owned();
            self.db().execute(&insert).await?;
            kept.push(witness);
        }
        if kept.is_empty() {
            let trusted: Vec<String> = self.witnesses().iter().map(CosignatureVerifier::label).collect();
            return Err(CosignError::Untrusted(if trusted.is_empty() { "none".into() } else { trusted.join(", ") }));
        }
        tracing::info!(size = checkpoint.size(), witnesses = %kept.join(", "), "the log's checkpoint was cosigned");
        Ok(kept)
    }

    /// Each note with the cosignature lines kept for its size appended.
    pub(super) async fn with_cosignatures(&self, notes: Vec<(u64, String)>) -> Result<Vec<(u64, String)>, DbErr> {
        let sizes: Vec<i64> = notes.iter().map(|(s, _)| int(*s)).collect();
        let mut lines: HashMap<u64, String> = HashMap::new();
        for chunk in sizes.chunks(paved_store::CHUNK) {
            let query = Query::select()
                .columns([LogCosignatures::Size, LogCosignatures::Line])
                .from(LogCosignatures::Table)
                .and_where(Expr::col(LogCosignatures::Size).is_in(chunk.iter().copied()))
                .order_by(LogCosignatures::Witness, Order::Asc)
                .to_owned();
            for row in self.db().query_all(&query).await? {
                let line: String = row.try_get("", "line")?;
                lines.entry(uint(&row, "size")?).or_default().push_str(&line);
            }
        }
        Ok(notes.into_iter().map(|(size, note)| (size, note + lines.get(&size).map_or("", String::as_str))).collect())
    }
}
