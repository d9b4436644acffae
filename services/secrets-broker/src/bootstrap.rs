//! Secret zero: single-use bootstrap tokens, bound to one revision of a
//! workload, exchanged once for the workload's identity token. The identity
//! holds exactly the secrets the spec declares (`secrets:read:<env>/<workload>/<name>`):
//! least privilege compiled from the spec, not written by hand.
//!
//! Only the SHA-256 of a bootstrap token is stored. A second exchange is
//! refused, raised as `bootstrap.replayed`, and revokes what the first one
//! was given: one of the two holders was not the workload.

use crate::authority::{self, Authority, AuthorityError, Grant, Target, event};
use crate::now_ms;
use paved_proto::secrets_broker::v1::TokenInfo;
use sea_orm::{
    ConnectionTrait, DbErr, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use sha2::Digest;
use std::time::Duration;

const TABLE: &str = "bootstrap_tokens";
const PREFIX: &str = "pvb1.";
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
pub const MAX_TTL: Duration = Duration::from_secs(600);

/// What a bootstrap token is bound to.
#[derive(Debug, Clone)]
pub struct Binding {
    pub environment: String,
    pub workload: String,
    pub revision_id: String,
    pub artifact_digest: String,
    /// Declared secret names.
    pub secrets: Vec<String>,
    /// Declared database names (dynamic credentials).
    pub databases: Vec<String>,
    /// Whether it may enrol a certificate for its own SPIFFE id.
    pub certificate: bool,
}

impl Binding {
    /// The identity's scopes: one read grant per declared secret, one
    /// credentials grant per declared database, and a certificate for its
    /// own SPIFFE id only if asked for.
    pub fn scopes(&self) -> Vec<String> {
        let (env, workload) = (&self.environment, &self.workload);
        let secrets = self.secrets.iter().map(|name| format!("secrets:read:{env}/{workload}/{name}"));
        let databases = self.databases.iter().map(|name| format!("database:creds:{name}"));
        let certificate = self.certificate.then(|| format!("certs:issue:{env}/{workload}"));
        secrets.chain(databases).chain(certificate).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("not a bootstrap token")]
    Unknown,
    #[error("bootstrap token expired")]
    Expired,
    #[error("bootstrap token already used: a second use is refused and reported, and the identity it gave is revoked")]
    Replayed,
    #[error(transparent)]
    Authority(#[from] AuthorityError),
}

impl From<DbErr> for ExchangeError {
    fn from(e: DbErr) -> Self {
        Self::Authority(AuthorityError::Database(e))
    }
}

fn id_of(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Issues a bootstrap token for `binding`, valid for `ttl`.
pub async fn issue(authority: &Authority, actor: &str, binding: &Binding, ttl: Duration) -> Result<(String, i64), AuthorityError> {
    use base64::Engine;
    let token = format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()));
    let id = id_of(&token);
    let now = now_ms();
    let expire = now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let txn = authority.db().begin().await?;
    let insert = Query::insert()
        .into_table(Alias::new(TABLE))
        .columns(
            ["id", "environment", "workload", "revision_id", "artifact_digest", "scopes", "issue_time_ms", "expire_time_ms"]
                .map(Alias::new),
        )
        .values_panic([
            id.clone().into(),
            binding.environment.clone().into(),
            binding.workload.clone().into(),
            binding.revision_id.clone().into(),
            binding.artifact_digest.clone().into(),
            serde_json::to_string(&binding.scopes()).unwrap_or_default().into(),
            now.into(),
            expire.into(),
        ])
        .to_owned();
    txn.execute(&insert).await?;
    crate::policy::compiled(&txn, binding, now).await?;
    let target = format!("{}/{}@{}", binding.environment, binding.workload, binding.revision_id);
    event(&txn, "bootstrap.issued", actor, &target, &binding.scopes(), &format!("bootstrap {}", &id[..16])).await?;
    txn.commit().await?;
    authority.relay().wake();
    Ok((token, expire))
}

/// The identity token for a bootstrap token, once.
pub async fn exchange(authority: &Authority, token: &str) -> Result<(String, TokenInfo), ExchangeError> {
    if !token.starts_with(PREFIX) || token.len() > 128 {
        return Err(ExchangeError::Unknown);
    }
    let id = id_of(token);
    let now = now_ms();
    // Used and checked in one statement: two racing exchanges cannot both win.
    let claim = Query::update()
        .table(Alias::new(TABLE))
        .value(Alias::new("used_time_ms"), now)
        .and_where(Expr::col(Alias::new("id")).eq(id.as_str()))
        .and_where(Expr::col(Alias::new("used_time_ms")).is_null())
        .and_where(Expr::col(Alias::new("expire_time_ms")).gt(now))
        .to_owned();
    let won = authority.db().execute(&claim).await?.rows_affected() == 1;
    let query = Query::select()
        .columns(["environment", "workload", "revision_id", "scopes", "used_time_ms"].map(Alias::new))
        .from(Alias::new(TABLE))
        .and_where(Expr::col(Alias::new("id")).eq(id.as_str()))
        .to_owned();
    let Some(row) = authority.db().query_one(&query).await? else {
        return Err(ExchangeError::Unknown);
    };
    let (environment, workload, revision): (String, String, String) =
        (row.try_get("", "environment")?, row.try_get("", "workload")?, row.try_get("", "revision_id")?);
    let target = format!("{environment}/{workload}@{revision}");
    let short = &id[..16];
    if !won {
        let used: Option<i64> = row.try_get("", "used_time_ms")?;
        if used.is_none() {
            authority.record("bootstrap.refused", "anonymous", &target, &format!("bootstrap {short} expired")).await;
            return Err(ExchangeError::Expired);
        }
        // Replayed: whoever used it first may not be the workload. Marked
        // before revoking: an exchange still issuing either sees the mark
        // (and revokes its own token) or committed its token before it.
        let mark = Query::update()
            .table(Alias::new(TABLE))
            .value(Alias::new("replay_time_ms"), now)
            .and_where(Expr::col(Alias::new("id")).eq(id.as_str()))
            .to_owned();
        authority.db().execute(&mark).await?;
        let revoked = authority.revoke("paved", &Target::IssuedFrom(format!("bootstrap:{id}")), "bootstrap token replayed").await?;
        authority
            .record("bootstrap.replayed", "anonymous", &target, &format!("bootstrap {short} used again; {revoked} token(s) revoked"))
            .await;
        tracing::warn!(workload = %target, "a bootstrap token was used twice: its identity is revoked");
        return Err(ExchangeError::Replayed);
    }
    let scopes: String = row.try_get("", "scopes")?;
    let scopes: Vec<String> = serde_json::from_str(&scopes).map_err(|e| DbErr::Custom(format!("bootstrap scopes: {e}")))?;
    let grant = Grant {
        parent: Some(format!("bootstrap:{id}")),
        subject: crate::spiffe_id(&environment, &workload),
        scopes,
        audience: crate::SOURCE.into(),
        ttl: authority::DEFAULT_TTL,
        renewable: Duration::from_secs(24 * 3600),
    };
    let (token, info): (String, TokenInfo) = match authority.issue("paved", &grant).await {
        Ok(issued) => issued,
        Err(e) => {
            // Nothing was handed out: the token may be used again (unless
            // it was replayed meanwhile).
            let unclaim = Query::update()
                .table(Alias::new(TABLE))
                .value(Alias::new("used_time_ms"), Option::<i64>::None)
                .and_where(Expr::col(Alias::new("id")).eq(id.as_str()))
                .and_where(Expr::col(Alias::new("replay_time_ms")).is_null())
                .to_owned();
            if let Err(again) = authority.db().execute(&unclaim).await {
                tracing::warn!(error = %again, "a bootstrap token stays spent after a failed exchange");
            }
            return Err(e.into());
        }
    };
    // The identity is recorded against its bootstrap token unless a replay
    // came first, in which case it is revoked before anyone sees it.
    let bind = Query::update()
        .table(Alias::new(TABLE))
        .value(Alias::new("identity_jti"), info.token_id.as_str())
        .and_where(Expr::col(Alias::new("id")).eq(id.as_str()))
        .and_where(Expr::col(Alias::new("replay_time_ms")).is_null())
        .to_owned();
    if authority.db().execute(&bind).await?.rows_affected() == 0 {
        authority.revoke("paved", &Target::Token(info.token_id.clone()), "bootstrap token replayed").await?;
        return Err(ExchangeError::Replayed);
    }
    authority.record("bootstrap.exchanged", &grant.subject, &target, &format!("bootstrap {short}")).await;
    Ok((token, info))
}

#[cfg(test)]
mod tests {
    #[test]
    fn policy_is_compiled_from_declared_secrets() {
        let binding = super::Binding {
            environment: "dev".into(),
            workload: "shop".into(),
            revision_id: "r1".into(),
            artifact_digest: String::new(),
            secrets: vec!["db-password".into(), "api-key".into()],
            databases: vec!["orders".into()],
            certificate: false,
        };
        assert_eq!(binding.scopes(), ["secrets:read:dev/shop/db-password", "secrets:read:dev/shop/api-key", "database:creds:orders"]);
        let binding = super::Binding { secrets: Vec::new(), databases: Vec::new(), certificate: true, ..binding };
        assert_eq!(binding.scopes(), ["certs:issue:dev/shop"], "a certificate for its own SPIFFE id, no other");
    }
}
