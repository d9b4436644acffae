//! Secret zero: single-use bootstrap tokens, bound to one revision of a
//! workload ([`Binding`]), exchanged once for the workload's identity
//! token, which holds exactly what the spec declares.
//!
//! Only the SHA-256 of a bootstrap token is stored. A second exchange is
//! refused, raised as `bootstrap.replayed`, and revokes what the first one
//! was given: one of the two holders was not the workload.

pub(crate) mod store;

pub use crate::binding::Binding;

use crate::act::Act;
use crate::authority::{Authority, AuthorityError};
use crate::clock::now_ms;
use crate::identities::{SOURCE, spiffe_id};
use crate::recorder::Recorder;
use crate::tokens::{self, Grant, Target, Token};
use crate::{event, policy};
use sea_orm::{DbErr, TransactionTrait};
use sha2::Digest;
use std::time::Duration;

const PREFIX: &str = "pvb1.";
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
pub const MAX_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("not a bootstrap token")]
    Unknown,
    #[error("bootstrap token expired")]
    Expired,
    #[error("bootstrap token already used: a second use is refused and reported, and the identity it gave is revoked")]
    Replayed,
    /// The process does not run the executable the token was issued for.
    #[error("the process runs {presented}, not {bound} that the bootstrap token is bound to: refused, and the token is spent")]
    ArtifactMismatch { bound: String, presented: String },
    #[error(transparent)]
    Authority(#[from] AuthorityError),
}

impl From<DbErr> for ExchangeError {
    fn from(e: DbErr) -> Self {
        Self::Authority(AuthorityError::Database(e))
    }
}

/// Whether `token` can be a bootstrap token at all: the prefix, and no
/// longer than one (`pvb1.` and 43 base64url characters) with room. The
/// rest of it is opaque: only its SHA-256 is looked up.
pub fn well_formed(token: &str) -> bool {
    token.starts_with(PREFIX) && token.len() <= 128
}

/// `sha256:` and 64 lowercase hex digits: a digest as runtimes write it.
pub fn is_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

fn id_of(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Bootstrap tokens, issued by the authority's holders and exchanged by
/// workloads for identity tokens.
#[derive(Clone)]
pub struct Bootstrap {
    authority: Authority,
    recorder: Recorder,
}

impl Bootstrap {
    pub fn new(authority: Authority, recorder: Recorder) -> Self {
        Self { authority, recorder }
    }

    /// Issues a bootstrap token for `binding`, valid for `ttl`; the token
    /// and its expiry (Unix ms). The workload's policy is compiled from the
    /// binding in the same transaction.
    pub async fn issue(&self, actor: &str, binding: &Binding, ttl: Duration) -> Result<(String, i64), AuthorityError> {
        use base64::Engine;
        let token = format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()));
        let id = id_of(&token);
        let now = now_ms();
        let expire = now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let txn = self.authority.db().begin().await?;
        store::insert(&txn, &id, binding, now, expire).await?;
        policy::compiled(&txn, binding, now).await?;
        let target = format!("{}/{}@{}", binding.environment, binding.workload, binding.revision_id);
        event::record(&txn, Act::new("bootstrap.issued", actor, &target, &binding.scopes(), &format!("bootstrap {}", &id[..16]))).await?;
        txn.commit().await?;
        self.authority.relay().wake();
        Ok((token, expire))
    }

    /// The identity token for a bootstrap token, once, for the process
    /// whose runtime presents the digest (`artifact_digest`) the token is
    /// bound to. A mismatch spends the token: whoever presents it has not
    /// started what was approved, and gets no second try.
    pub async fn exchange(&self, token: &str, artifact_digest: &str) -> Result<(String, Token), ExchangeError> {
        if !well_formed(token) {
            return Err(ExchangeError::Unknown);
        }
        let (db, authority) = (self.authority.db(), &self.authority);
        let id = id_of(token);
        let now = now_ms();
        let won = store::spend(db, &id, now).await?;
        let Some(stored) = store::find(db, &id).await? else {
            return Err(ExchangeError::Unknown);
        };
        let target = format!("{}/{}@{}", stored.environment, stored.workload, stored.revision_id);
        let short = &id[..16];
        if !won {
            if stored.used_time_ms.is_none() {
                self.recorder.record("bootstrap.refused", "anonymous", &target, &format!("bootstrap {short} expired")).await;
                return Err(ExchangeError::Expired);
            }
            // Replayed: whoever used it first may not be the workload. Marked
            // before revoking: an exchange still issuing either sees the mark
            // (and revokes its own token) or committed its token before it.
            store::replayed(db, &id, now).await?;
            let revoked = authority.revoke("paved", &Target::IssuedFrom(format!("bootstrap:{id}")), "bootstrap token replayed").await?;
            let why = format!("bootstrap {short} used again; {revoked} token(s) revoked");
            self.recorder.record("bootstrap.replayed", "anonymous", &target, &why).await;
            tracing::warn!(workload = %target, "a bootstrap token was used twice: its identity is revoked");
            return Err(ExchangeError::Replayed);
        }
        if stored.artifact_digest != artifact_digest {
            let (bound, presented) = (stored.artifact_digest, artifact_digest.to_string());
            let presented = if presented.is_empty() { "no digest".to_string() } else { presented };
            let why = format!("bootstrap {short}: the process runs {presented}, the token is bound to {bound}");
            self.recorder.record("bootstrap.artifact_mismatch", "anonymous", &target, &why).await;
            tracing::warn!(workload = %target, bound = %bound, presented = %presented, "a bootstrap exchange presented another artifact: refused");
            return Err(ExchangeError::ArtifactMismatch { bound, presented });
        }
        let grant = Grant {
            parent: Some(format!("bootstrap:{id}")),
            subject: spiffe_id(&stored.environment, &stored.workload),
            scopes: stored.scopes()?,
            audience: SOURCE.into(),
            ttl: tokens::DEFAULT_TTL,
            renewable: Duration::from_secs(24 * 3600),
            artifact_digest: stored.artifact_digest,
        };
        let (token, info) = match authority.issue("paved", &grant).await {
            Ok(issued) => issued,
            Err(e) => {
                // Nothing was handed out: the token may be used again (unless
                // it was replayed meanwhile).
                if let Err(again) = store::unspend(db, &id).await {
                    tracing::warn!(error = %again, "a bootstrap token stays spent after a failed exchange");
                }
                return Err(e.into());
            }
        };
        // The identity is recorded against its bootstrap token unless a replay
        // came first, in which case it is revoked before anyone sees it.
        if !store::bind(db, &id, &info.token_id).await? {
            authority.revoke("paved", &Target::Token(info.token_id.clone()), "bootstrap token replayed").await?;
            return Err(ExchangeError::Replayed);
        }
        self.recorder.record("bootstrap.exchanged", &grant.subject, &target, &format!("bootstrap {short}")).await;
        Ok((token, info))
    }
}
