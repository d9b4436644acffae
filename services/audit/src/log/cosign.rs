//! Witness cosignatures, C2SP tlog-cosignature v1: a witness signs, with
//! Ed25519, `cosignature/v1\ntime <unix seconds>\n` followed by the
//! checkpoint's text, and adds the line to the note as
//! `— <name> base64(key id ‖ u64 timestamp ‖ signature)`. The key id is
//! signed-note's, over `0x04 ‖ public key`.
//!
//! Written here because neither `signed_note` nor `tlog_tiles` has this
//! signature type; it plugs into `signed_note`'s `Signer` and `Verifier`,
//! so notes are still parsed and checked by that crate. Tested against
//! transparency-dev's published key and signature (see the tests).

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};

/// The signature type byte of a cosignature/v1 key.
const COSIGNATURE_V1: u8 = 0x04;

fn message(timestamp: u64, text: &[u8]) -> Vec<u8> {
    [format!("cosignature/v1\ntime {timestamp}\n").as_bytes(), text].concat()
}

/// A witness's key, checking cosignatures.
#[derive(Debug, Clone)]
pub struct CosignatureVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// From a verifier key, `<name>+<hex id>+<base64 of 0x04 ‖ public key>`.
    pub fn new(vkey: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{vkey:?} is not a cosignature/v1 verifier key: {why}");
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected <name>+<id>+<key>"));
        };
        let id = u32::from_str_radix(id, 16).map_err(|_| bad("the id is not hex"))?;
        let key = STANDARD.decode(key).map_err(|_| bad("the key is not base64"))?;
        let Some((&COSIGNATURE_V1, public)) = key.split_first() else {
            return Err(bad("the key's type is not 0x04 (cosignature/v1)"));
        };
        let public: [u8; 32] = public.try_into().map_err(|_| bad("an Ed25519 public key is 32 bytes"))?;
        if signed_note::key_id(name, &key) != id || !signed_note::is_key_name_valid(name) {
            return Err(bad("the id does not match the name and key"));
        }
        Ok(Self { name: name.to_string(), id, key: VerifyingKey::from_bytes(&public).map_err(|_| bad("not an Ed25519 key"))? })
    }

    /// The key as written: `<name>+<id>`.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }
}

/// The timestamp inside a cosignature (after the key id).
pub fn timestamp(signature: &[u8]) -> Option<u64> {
    (signature.len() == 8 + 64).then(|| u64::from_be_bytes(signature[..8].try_into().unwrap_or_default()))
}

impl signed_note::Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        let Some(time) = timestamp(signature) else {
            return false;
        };
        let Ok(bytes) = <[u8; 64]>::try_from(&signature[8..]) else {
            return false;
        };
        self.key.verify(&message(time, text), &ed25519_dalek::Signature::from_bytes(&bytes)).is_ok()
    }
}

/// A witness's signing key, cosigning at a given time.
pub struct Cosigner {
    name: String,
    id: u32,
    key: SigningKey,
    pub timestamp: u64,
}

impl Cosigner {
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<Self, String> {
        if !signed_note::is_key_name_valid(name) {
            return Err(format!("{name:?} cannot name a witness: a signed-note key name has no spaces or '+'"));
        }
        let key = SigningKey::from_bytes(seed);
        let id = signed_note::key_id(name, &public(&key));
        Ok(Self { name: name.to_string(), id, key, timestamp: 0 })
    }

    /// `<name>+<id>+<base64 of 0x04 ‖ public key>`: what a log and a
    /// verifier are told to trust.
    pub fn verifier_key(&self) -> String {
        format!("{}+{:08x}+{}", self.name, self.id, STANDARD.encode(public(&self.key)))
    }
}

fn public(key: &SigningKey) -> Vec<u8> {
    [&[COSIGNATURE_V1][..], key.verifying_key().as_bytes()].concat()
}

impl signed_note::Signer for Cosigner {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn sign(&self, text: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok([&self.timestamp.to_be_bytes()[..], &self.key.sign(&message(self.timestamp, text)).to_bytes()].concat())
    }
}

/// The witnesses among `known` that validly cosigned `note`, by label.
pub fn cosigned_by(note: &[u8], known: &[CosignatureVerifier]) -> Vec<String> {
    let Ok(parsed) = signed_note::Note::from_bytes(note) else {
        return Vec::new();
    };
    let list = signed_note::VerifierList::new(known.iter().map(|v| Box::new(v.clone()) as Box<dyn signed_note::Verifier>).collect());
    match parsed.verify(&list) {
        Ok((verified, _)) => verified.iter().map(|s| format!("{}+{:08x}", s.name(), s.id())).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
