//! The log's key and its signed checkpoints (C2SP tlog-checkpoint in a
//! C2SP signed-note): the text is `tlog_tiles::Checkpoint`'s, the note and
//! the verifier key the `signed_note` crate's. The key itself is an
//! ed25519-dalek key of the workspace's version, signing through
//! `signed_note::Signer`, so the crate's own (older) dalek only verifies.

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signer as _, SigningKey};
use signed_note::{Note, Signer};
use tlog_tiles::{Checkpoint, Hash};

/// signed-note's algorithm byte for Ed25519.
const ED25519: u8 = 0x01;

/// An Ed25519 key signing the log's checkpoints under the log's name (its
/// origin line, and the key name in every signature).
#[derive(Clone)]
pub struct LogKey {
    name: String,
    key: SigningKey,
    id: u32,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogKey({}+{:08x})", self.name, self.id)
    }
}

impl LogKey {
    /// `name` must be a signed-note key name: not empty, no space, no `+`.
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<Self, String> {
        if !signed_note::is_key_name_valid(name) {
            return Err(format!("{name:?} cannot name a log: a signed-note key name has no spaces or '+'"));
        }
        let key = SigningKey::from_bytes(seed);
        let id = signed_note::key_id(name, &public(&key));
        Ok(Self { name: name.to_string(), key, id })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key, `<name>+<id, 8 hex>+<base64 of 0x01 ‖ public key>`:
    /// what a client or a witness needs to check the checkpoints.
    pub fn verifier_key(&self) -> String {
        format!("{}+{:08x}+{}", self.name, self.id, STANDARD.encode(public(&self.key)))
    }

    /// The checkpoint of a tree of `size` leaves with root `root`, signed.
    pub fn checkpoint(&self, size: u64, root: Hash) -> Result<String, String> {
        checkpoint(std::slice::from_ref(self), size, root)
    }
}

/// A checkpoint signed by every key given (the current first; during a
/// rotation's overlap, the old and the new), all of one log's name.
pub fn checkpoint(keys: &[LogKey], size: u64, root: Hash) -> Result<String, String> {
    let first = keys.first().ok_or("no key to sign with")?;
    let text = Checkpoint::new(&first.name, size, root, "").map_err(|e| e.to_string())?.to_bytes();
    let mut note = Note::new(&text, &[]).map_err(|e| e.to_string())?;
    let signers: Vec<&dyn Signer> = keys.iter().map(|k| k as &dyn Signer).collect();
    note.add_sigs(&signers).map_err(|e| e.to_string())?;
    String::from_utf8(note.to_bytes()).map_err(|e| e.to_string())
}

fn public(key: &SigningKey) -> Vec<u8> {
    [&[ED25519][..], key.verifying_key().as_bytes()].concat()
}

impl Signer for LogKey {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.key.sign(msg).to_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signed_note::{StandardVerifier, VerifierList};

    #[test]
    fn checkpoints_verify_with_the_published_key_and_parse_as_tlog_checkpoints() {
        let key = LogKey::new("example.com/audit", &[7; 32]).expect("key");
        let root = tlog_tiles::record_hash(b"x");
        let note = key.checkpoint(42, root).expect("sign");
        // The crate's own verifier, from nothing but the verifier key.
        let verifier = StandardVerifier::new(&key.verifier_key()).expect("a verifier key");
        let parsed = Note::from_bytes(note.as_bytes()).expect("a signed note");
        let (good, _) = parsed.verify(&VerifierList::new(vec![Box::new(verifier)])).expect("verified");
        assert_eq!(good.len(), 1);
        let checkpoint = Checkpoint::from_bytes(parsed.text()).expect("a checkpoint");
        assert_eq!((checkpoint.origin(), checkpoint.size(), *checkpoint.hash()), ("example.com/audit", 42, root));
        assert!(note.starts_with("example.com/audit\n42\n"), "{note}");
        assert!(note.contains("\n\n\u{2014} example.com/audit "), "{note}");
        // Another key of the same name does not verify it.
        let other = StandardVerifier::new(&LogKey::new("example.com/audit", &[8; 32]).expect("key").verifier_key()).expect("key");
        assert!(parsed.verify(&VerifierList::new(vec![Box::new(other)])).is_err());
        // A changed size breaks the signature.
        let forged = note.replacen("\n42\n", "\n43\n", 1);
        let verifier = StandardVerifier::new(&key.verifier_key()).expect("key");
        assert!(Note::from_bytes(forged.as_bytes()).expect("note").verify(&VerifierList::new(vec![Box::new(verifier)])).is_err());
        assert!(LogKey::new("two words", &[7; 32]).is_err());
    }
}
