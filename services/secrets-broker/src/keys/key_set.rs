//! The key set as published: what verifiers trust (the signing keys whose
//! tokens may still live) and the revoked tokens not yet expired. Its
//! version is a hash of its content, so every replica agrees on it.

use crate::tokens::Revoked;
use std::collections::HashSet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    /// Never 0 (0 means "nothing known" to callers).
    pub version: u64,
    /// Oldest first.
    pub keys: Vec<PublicKey>,
    /// By token id.
    pub revoked: Vec<Revoked>,
}

/// A signing key's public half, and when it signs from and retired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub key_id: String,
    pub ed25519: Vec<u8>,
    pub create_time_ms: i64,
    pub retire_time_ms: Option<i64>,
}

impl KeySet {
    pub fn new(keys: Vec<PublicKey>, revoked: Vec<Revoked>) -> Self {
        let mut set = Self { version: 0, keys, revoked };
        set.version = set.hash();
        set
    }

    /// FNV-1a over the key set's content: equal sets, equal versions.
    fn hash(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes.iter().chain(&[0xff]) {
                hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
        };
        for key in &self.keys {
            feed(key.key_id.as_bytes());
            feed(&key.ed25519);
        }
        for revoked in &self.revoked {
            feed(revoked.token_id.as_bytes());
        }
        Ord::max(hash, 1)
    }

    /// The set as a verifier holds it: the keys, and the revoked ids. The
    /// broker verifies with what it publishes, as every verifier does
    /// (`paved_grpc::auth::trust` on the wire form).
    pub fn trust(&self) -> anyhow::Result<(paved_token::KeySet, HashSet<String>)> {
        let mut keys = paved_token::KeySet::default();
        for key in &self.keys {
            let bytes: [u8; 32] = key.ed25519.as_slice().try_into().map_err(|_| anyhow::anyhow!("key {} is not 32 bytes", key.key_id))?;
            keys.insert(&key.key_id, ed25519_dalek::VerifyingKey::from_bytes(&bytes)?);
        }
        Ok((keys, self.revoked.iter().map(|r| r.token_id.clone()).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_the_content_and_the_trust_is_what_it_says() {
        let public = paved_token::Issuer::generate().public().to_bytes().to_vec();
        let key = |id: &str| PublicKey { key_id: id.into(), ed25519: public.clone(), create_time_ms: 1, retire_time_ms: None };
        let revoked = |id: &str| Revoked { token_id: id.into(), expire_time_ms: 1 };
        let set = KeySet::new(vec![key("a")], vec![revoked("t")]);
        let retired = PublicKey { retire_time_ms: Some(5), ..key("a") };
        assert_eq!(set.version, KeySet::new(vec![retired], vec![revoked("t")]).version, "times are not content");
        assert_ne!(set.version, KeySet::new(vec![key("a")], vec![]).version);
        assert_ne!(set.version, KeySet::new(vec![key("b")], vec![revoked("t")]).version);
        assert_ne!(set.version, 0);
        let (keys, revoked_ids) = set.trust().expect("a valid key");
        assert!(!keys.is_empty() && revoked_ids.contains("t"), "{revoked_ids:?}");
        assert!(KeySet::new(vec![PublicKey { ed25519: vec![1], ..key("b") }], vec![]).trust().is_err(), "a short key");
    }
}
