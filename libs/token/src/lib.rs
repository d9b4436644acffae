//! Access tokens: Ed25519-signed, scoped, audience-bound and short-lived,
//! verified offline by any service from the broker's published key set.
//!
//! `pvt1.<claims>.<signature>`, both base64url without padding. The
//! signature covers `pvt1.<claims>` (the version is a domain tag: no other
//! signed thing of the platform starts with it). Claims name the key that
//! signed them (`kid`), so signing keys rotate with overlap: a key set
//! holds the current key and the ones before it until their tokens have
//! expired.
//!
//! Nothing of a token is trusted before its signature is: the `kid` only
//! picks the key to check it with.

mod scope;

pub use scope::{AUDIENCES, PLATFORM_AUDIENCE, READ_PREFIXES, Scope, method_scope, role_scopes};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const PREFIX: &str = "pvt1.";
/// Clock difference between issuer and verifier that is tolerated: a
/// verifier accepts a token up to this long past its `exp` (and before its
/// `iat`). The broker's introspection, on the issuer's own clock, does not:
/// it says `active=false` from `exp` on.
pub const LEEWAY_SECS: i64 = 30;
/// The longest token accepted, to bound the work of parsing one.
const MAX_LEN: usize = 8 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who: a SPIFFE id or a user.
    pub sub: String,
    /// The service it is for, e.g. `paved.secrets_broker`.
    pub aud: String,
    /// What it may do: `secrets:read:<path>`, `deploy:<env>`; a trailing
    /// `*` matches any rest (`secrets:read:app/*`).
    pub scp: Vec<String>,
    /// Issued and expiry, Unix seconds.
    pub iat: i64,
    pub exp: i64,
    /// Renewals may extend it until then (Unix seconds; 0: not said), and
    /// tokens it issues live no longer.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ren: i64,
    /// Unique id, for revocation.
    pub jti: String,
    /// A workload identity's artifact: the `sha256:…` digest of the
    /// executable its runtime proved at the bootstrap exchange. Absent
    /// from every other token.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dig: String,
    /// The signing key.
    pub kid: String,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Claims {
    /// Whether one of the scopes grants `wanted` ([`Scope::allows`]).
    pub fn allows(&self, wanted: &str) -> bool {
        Scope(wanted).within(&self.scp)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token signed by an unknown key {0:?}")]
    UnknownKey(String),
    #[error("token signature does not verify")]
    BadSignature,
    #[error("token expired {0} s ago")]
    Expired(i64),
    #[error("token issued in the future")]
    NotYetValid,
    #[error("token is for audience {got:?}, not {wanted}")]
    WrongAudience { got: String, wanted: String },
    #[error("token revoked")]
    Revoked,
}

/// A signing key with its id: what the broker issues tokens with.
pub struct Issuer {
    pub kid: String,
    key: SigningKey,
}

impl Issuer {
    /// A new random key; its id is the first 8 bytes of its public key, hex.
    pub fn generate() -> Self {
        let key = SigningKey::from_bytes(&rand::random());
        let kid = hex::encode(&key.verifying_key().to_bytes()[..8]);
        Self { kid, key }
    }

    /// The key whose private half is `seed` (as [`Issuer::seed`] gave it).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let kid = hex::encode(&key.verifying_key().to_bytes()[..8]);
        Self { kid, key }
    }

    /// The private key, to be stored sealed.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn public(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The token for `claims` (their `kid` set to this key's).
    pub fn sign(&self, mut claims: Claims) -> String {
        claims.kid = self.kid.clone();
        // Serialising plain strings and numbers cannot fail.
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signed = format!("{PREFIX}{body}");
        let signature = self.key.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// Public keys by id: what a verifier trusts.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: BTreeMap<String, VerifyingKey>,
}

impl KeySet {
    pub fn insert(&mut self, kid: &str, key: VerifyingKey) {
        self.keys.insert(kid.to_string(), key);
    }

    /// Stops trusting a retired key (once its last token has expired).
    pub fn remove(&mut self, kid: &str) {
        self.keys.remove(kid);
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The token's claims, once its signature, times, audience (one of
    /// `audiences`) and revocation are checked; `now` in Unix seconds.
    pub fn verify(&self, token: &str, audiences: &[&str], now: i64, revoked: impl Fn(&str) -> bool) -> Result<Claims, TokenError> {
        if token.len() > MAX_LEN {
            return Err(TokenError::Malformed("longer than 8 KiB"));
        }
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed("not a pvt1 token"))?;
        let (body, signature) = rest.split_once('.').ok_or(TokenError::Malformed("no signature"))?;
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or(TokenError::Malformed("signature is not 64 bytes of base64url"))?;
        let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Malformed("claims are not base64url"))?;
        let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed("claims are not valid"))?;
        let key = self.keys.get(&claims.kid).ok_or_else(|| TokenError::UnknownKey(claims.kid.clone()))?;
        let signed = &token[..PREFIX.len() + body.len()];
        key.verify(signed.as_bytes(), &Signature::from_bytes(&signature)).map_err(|_| TokenError::BadSignature)?;
        if now > claims.exp.saturating_add(LEEWAY_SECS) {
            return Err(TokenError::Expired(now.saturating_sub(claims.exp)));
        }
        if claims.iat > now.saturating_add(LEEWAY_SECS) {
            return Err(TokenError::NotYetValid);
        }
        if !audiences.contains(&claims.aud.as_str()) {
            return Err(TokenError::WrongAudience { got: claims.aud, wanted: audiences.join(" or ") });
        }
        if revoked(&claims.jti) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests;
