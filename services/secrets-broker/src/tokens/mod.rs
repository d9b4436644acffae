//! Tokens as the broker records them: what a new one grants ([`Grant`]),
//! the record of each one issued ([`Token`]: ids, never values), which to
//! revoke ([`Target`]) and how long they may live. The SQL is in `store`;
//! issuing, renewing and revoking is the authority's.

pub(crate) mod store;

use std::time::Duration;

/// The longest a token may live before renewal; a retired signing key stays
/// in the key set this long (plus the leeway), so every token it signed
/// verifies until it expires.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);
/// How long renewals may extend a token by default, and at most.
pub const DEFAULT_RENEWABLE: Duration = Duration::from_secs(8 * 3600);
pub const MAX_RENEWABLE: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a new token grants.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    /// The token that asked for it: revoking it revokes this one too.
    pub parent: Option<String>,
    pub subject: String,
    pub scopes: Vec<String>,
    pub audience: String,
    pub ttl: Duration,
    pub renewable: Duration,
    /// A workload identity's proved artifact digest (the `dig` claim);
    /// empty for any other token.
    pub artifact_digest: String,
}

/// Which tokens to revoke.
#[derive(Debug, Clone)]
pub enum Target {
    Token(String),
    Subject(String),
    /// Every token issued from this parent (a bootstrap token's id).
    IssuedFrom(String),
}

/// The record of a token issued (times in Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub token_id: String,
    pub subject: String,
    pub scopes: Vec<String>,
    pub audience: String,
    pub issue_time_ms: i64,
    /// The latest expiry of any copy: renewals never shorten it.
    pub expire_time_ms: i64,
    pub renewable_until_ms: i64,
    pub revoke_time_ms: Option<i64>,
    /// See [`Grant::artifact_digest`].
    pub artifact_digest: String,
}

/// A revoked token that may still be presented (not yet expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub token_id: String,
    pub expire_time_ms: i64,
}
