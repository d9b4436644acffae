//! Content-addressed artifacts and their signed attestations.
//!
//! Bytes live in `<data>/artifacts/sha256/<hex>` (executable: an artifact is
//! a program the local runtime runs); rows in `artifacts` and
//! `attestations` say what exists. An upload is written to a temporary file
//! while it is hashed and renamed into place only when complete and, if the
//! client named a digest, only when it matches: nothing half-written is ever
//! addressable. Promotion between environments moves the digest, never
//! the bytes.

use crate::model::now_ms;
use crate::schema::{Artifacts, Attestations};
use paved_attest::AttestError;
use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Expr, ExprTrait, OnConflict, Order, Query},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::{collections::BTreeMap, path::PathBuf};
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("digest mismatch: the client expected {expected}, the bytes received hash to {actual}; nothing was stored")]
    Mismatch { expected: String, actual: String },
    #[error("no artifact {0}: push it with `paved artifact push`")]
    Unknown(String),
    #[error(transparent)]
    Invalid(#[from] AttestError),
    #[error("the attestation is signed by a key that is not trusted ({0}); add it to trusted_keys")]
    Untrusted(String),
    #[error("the attestation payload is not JSON: {0}")]
    Payload(String),
    #[error("artifact store: {0}")]
    Io(#[from] std::io::Error),
    #[error("database: {0}")]
    Database(#[from] DbErr),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub digest: String,
    pub size: i64,
    pub create_time_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attestation {
    pub kind: String,
    pub payload: String,
    pub signature: String,
    pub public_key: String,
    pub signer: String,
    pub create_time_ms: i64,
}

/// The `artifacts` columns, in the order `finish` writes and `get` reads them.
const ARTIFACT_COLUMNS: [Artifacts; 3] = [Artifacts::Digest, Artifacts::Size, Artifacts::CreateTimeMs];

/// The store on disk plus the keys whose signatures count.
pub struct Store {
    dir: PathBuf,
    /// name → hex Ed25519 public key
    trusted: BTreeMap<String, String>,
}

impl Store {
    pub fn new(dir: PathBuf, trusted: BTreeMap<String, String>) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("sha256"))?;
        std::fs::create_dir_all(dir.join("tmp"))?;
        Ok(Self { dir, trusted })
    }

    /// Where the bytes of `digest` are (when it is a valid digest).
    pub fn path(&self, digest: &str) -> Result<PathBuf, ArtifactError> {
        paved_attest::check_digest(digest)?;
        Ok(self.dir.join("sha256").join(&digest["sha256:".len()..]))
    }

    /// Starts an upload: a temporary file hashed as it is written.
    pub async fn begin(&self) -> Result<Upload, ArtifactError> {
        let tmp = self.dir.join("tmp").join(uuid::Uuid::now_v7().to_string());
        let file = tokio::fs::File::create(&tmp).await?;
        Ok(Upload { file, tmp, hasher: Sha256::new(), size: 0 })
    }

    /// Completes an upload: checks the digest, moves the bytes into place and
    /// records the artifact. Returns (artifact, whether it existed already).
    pub async fn finish<C: ConnectionTrait>(&self, db: &C, mut upload: Upload, expected: &str) -> Result<(Artifact, bool), ArtifactError> {
        upload.file.flush().await?;
        upload.file.sync_all().await?;
        let digest = format!("sha256:{}", hex::encode(upload.hasher.finalize_reset()));
        if !expected.is_empty() && expected != digest {
            let _ = tokio::fs::remove_file(&upload.tmp).await;
            return Err(ArtifactError::Mismatch { expected: expected.to_string(), actual: digest });
        }
        let path = self.path(&digest)?;
        let existed = get(db, &digest).await?;
        if let Some(artifact) = existed {
            let _ = tokio::fs::remove_file(&upload.tmp).await;
            return Ok((artifact, true));
        }
        {
            use std::os::unix::fs::PermissionsExt;
            tokio::fs::set_permissions(&upload.tmp, std::fs::Permissions::from_mode(0o755)).await?;
        }
        tokio::fs::rename(&upload.tmp, &path).await?;
        let artifact = Artifact { digest, size: upload.size as i64, create_time_ms: now_ms() };
        let insert = Query::insert()
            .into_table(Artifacts::Table)
            .columns(ARTIFACT_COLUMNS)
            .values_panic([artifact.digest.clone().into(), artifact.size.into(), artifact.create_time_ms.into()])
            .on_conflict(OnConflict::column(Artifacts::Digest).do_nothing().to_owned())
            .to_owned();
        db.execute(&insert).await?;
        Ok((artifact, false))
    }

    /// Verifies and records an attestation. The signature must match the
    /// given public key, and that key must be one of the trusted ones.
    pub async fn attach<C: ConnectionTrait>(
        &self,
        db: &C,
        digest: &str,
        kind: &str,
        payload: &str,
        signature: &str,
        public_key: &str,
    ) -> Result<Attestation, ArtifactError> {
        paved_attest::check_digest(digest)?;
        paved_attest::check_kind(kind)?;
        serde_json::from_str::<Value>(payload).map_err(|e| ArtifactError::Payload(e.to_string()))?;
        if get(db, digest).await?.is_none() {
            return Err(ArtifactError::Unknown(digest.to_string()));
        }
        paved_attest::verify(public_key, digest, kind, payload.as_bytes(), signature)?;
        let signer = self.signer(public_key).ok_or_else(|| ArtifactError::Untrusted(public_key.to_string()))?;
        let attestation = Attestation {
            kind: kind.to_string(),
            payload: payload.to_string(),
            signature: signature.to_string(),
            public_key: public_key.to_string(),
            signer,
            create_time_ms: now_ms(),
        };
        let insert = Query::insert()
            .into_table(Attestations::Table)
            .columns([
                Attestations::Id,
                Attestations::Digest,
                Attestations::Kind,
                Attestations::Payload,
                Attestations::Signature,
                Attestations::PublicKey,
                Attestations::Signer,
                Attestations::CreateTimeMs,
            ])
            .values_panic([
                uuid::Uuid::now_v7().to_string().into(),
                digest.into(),
                attestation.kind.clone().into(),
                attestation.payload.clone().into(),
                attestation.signature.clone().into(),
                attestation.public_key.clone().into(),
                attestation.signer.clone().into(),
                attestation.create_time_ms.into(),
            ])
            .to_owned();
        db.execute(&insert).await?;
        Ok(attestation)
    }

    fn signer(&self, public_key: &str) -> Option<String> {
        self.trusted.iter().find(|(_, k)| k.trim().eq_ignore_ascii_case(public_key.trim())).map(|(name, _)| name.clone())
    }

    /// What the policy gate sees of an artifact: its digest and, per kind,
    /// the newest attestation's payload fields plus `verified` (its signer
    /// is still trusted and its signature still checks) and `signer`.
    pub async fn policy_input<C: ConnectionTrait>(&self, db: &C, digest: &str) -> Result<(Value, Seen), ArtifactError> {
        let artifact = get(db, digest).await?.ok_or_else(|| ArtifactError::Unknown(digest.to_string()))?;
        let mut attestations = serde_json::Map::new();
        let mut seen = Seen { digest: artifact.digest.clone(), attestations: Vec::new() };
        for att in attestations_of(db, digest).await? {
            let verified = self.signer(&att.public_key).is_some()
                && paved_attest::verify(&att.public_key, digest, &att.kind, att.payload.as_bytes(), &att.signature).is_ok();
            let mut entry = match serde_json::from_str::<Value>(&att.payload) {
                Ok(Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            };
            entry.insert("verified".into(), json!(verified));
            entry.insert("signer".into(), json!(att.signer));
            attestations.insert(att.kind.clone(), Value::Object(entry));
            seen.attestations.push(SeenAttestation {
                payload_digest: format!("sha256:{}", hex::encode(Sha256::digest(att.payload.as_bytes()))),
                kind: att.kind,
                signer: att.signer,
                verified,
            });
        }
        Ok((json!({ "digest": artifact.digest, "size": artifact.size, "attestations": attestations }), seen))
    }
}

/// The artifact a policy decision saw, for the audit trail's lineage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    pub digest: String,
    pub attestations: Vec<SeenAttestation>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeenAttestation {
    pub kind: String,
    pub signer: String,
    pub verified: bool,
    /// `sha256:<hex>` of the payload as stored.
    pub payload_digest: String,
}

/// An upload in progress.
pub struct Upload {
    file: tokio::fs::File,
    tmp: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl Upload {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), ArtifactError> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file.write_all(chunk).await?;
        Ok(())
    }

    /// Drops a failed upload's temporary file.
    pub async fn abandon(self) {
        let _ = tokio::fs::remove_file(&self.tmp).await;
    }
}

pub async fn get<C: ConnectionTrait>(db: &C, digest: &str) -> Result<Option<Artifact>, DbErr> {
    let query =
        Query::select().columns(ARTIFACT_COLUMNS).from(Artifacts::Table).and_where(Expr::col(Artifacts::Digest).eq(digest)).to_owned();
    let Some(row) = db.query_one(&query).await? else { return Ok(None) };
    Ok(Some(Artifact {
        digest: row.try_get("", "digest")?,
        size: row.try_get("", "size")?,
        create_time_ms: row.try_get("", "create_time_ms")?,
    }))
}

/// The newest attestation of each kind.
pub async fn attestations_of<C: ConnectionTrait>(db: &C, digest: &str) -> Result<Vec<Attestation>, DbErr> {
    let query = Query::select()
        .columns([
            Attestations::Kind,
            Attestations::Payload,
            Attestations::Signature,
            Attestations::PublicKey,
            Attestations::Signer,
            Attestations::CreateTimeMs,
        ])
        .from(Attestations::Table)
        .and_where(Expr::col(Attestations::Digest).eq(digest))
        .order_by(Attestations::CreateTimeMs, Order::Desc)
        .order_by(Attestations::Id, Order::Desc)
        .to_owned();
    let mut newest: BTreeMap<String, Attestation> = BTreeMap::new();
    for row in db.query_all(&query).await? {
        let att = Attestation {
            kind: row.try_get("", "kind")?,
            payload: row.try_get("", "payload")?,
            signature: row.try_get("", "signature")?,
            public_key: row.try_get("", "public_key")?,
            signer: row.try_get("", "signer")?,
            create_time_ms: row.try_get("", "create_time_ms")?,
        };
        newest.entry(att.kind.clone()).or_insert(att);
    }
    Ok(newest.into_values().collect())
}
