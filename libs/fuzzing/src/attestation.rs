//! Artifact attestations as `AttachAttestation` takes them: digest, kind,
//! payload, signature and public key, each as the client sent it.

use paved_attest::{check_digest, check_kind, sign, verify};

/// A fixed signing key (hex seed) and its public key.
pub(crate) const PRIVATE: &str = "0909090909090909090909090909090909090909090909090909090909090909";

/// Fields split at NUL bytes: digest, kind, payload, signature, public key,
/// then a second digest, kind and payload.
pub fn attestation(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut fields = text.split('\0');
    let mut next = || fields.next().unwrap_or("");
    let (digest, kind, payload, signature, public) = (next(), next(), next(), next(), next());
    let other = (next(), next(), next());
    let _ = serde_json::from_str::<serde_json::Value>(payload);
    let _ = verify(public, digest, kind, payload.as_bytes(), signature);
    let Ok(ours) = paved_attest::public_key(PRIVATE) else { panic!("the fixed key") };
    let signed = sign(PRIVATE, digest, kind, payload.as_bytes());
    if check_digest(digest).is_err() || check_kind(kind).is_err() {
        assert!(signed.is_err(), "signed an attestation for {digest:?} of kind {kind:?}");
        return;
    }
    let Ok(signed) = signed else { panic!("cannot sign a valid attestation") };
    assert!(verify(&ours, digest, kind, payload.as_bytes(), &signed).is_ok(), "our own attestation does not verify");
    // A signature holds for what was signed alone.
    if other != (digest, kind, payload) {
        let (d, k, p) = other;
        assert!(verify(&ours, d, k, p.as_bytes(), &signed).is_err(), "a signature over ({digest:?}, {kind:?}) verifies for ({d:?}, {k:?})");
    }
}
