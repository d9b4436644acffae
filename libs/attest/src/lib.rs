//! Attestations of artifacts: Ed25519 signatures over a statement that binds
//! a payload (an SBOM, a vulnerability report, a coverage report) to one
//! artifact digest and one kind, so a signature cannot be moved to another
//! artifact or reused as another kind of claim.
//!
//! Keys are written as hex: a private key file holds the 32-byte seed, a
//! public key (as configured in `trusted_keys`) the 32-byte point.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The kinds of attestation the policy gate reads.
pub const KINDS: [&str; 3] = ["sbom", "vulnerabilities", "coverage"];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttestError {
    #[error("invalid key: {0}")]
    Key(String),
    #[error("invalid signature: {0}")]
    Signature(String),
    #[error("unknown attestation kind {0:?}: use sbom, vulnerabilities or coverage")]
    Kind(String),
    #[error("invalid artifact digest {0:?}: expected sha256:<64 hex digits>")]
    Digest(String),
}

/// Checks `sha256:<64 lowercase hex>`.
pub fn check_digest(digest: &str) -> Result<(), AttestError> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => Ok(()),
        _ => Err(AttestError::Digest(digest.to_string())),
    }
}

pub fn check_kind(kind: &str) -> Result<(), AttestError> {
    if KINDS.contains(&kind) { Ok(()) } else { Err(AttestError::Kind(kind.to_string())) }
}

/// What is signed: a domain tag, the artifact, the kind and the payload's hash.
pub fn statement(digest: &str, kind: &str, payload: &[u8]) -> Vec<u8> {
    format!("paved-attestation-v1\n{digest}\n{kind}\nsha256:{}\n", hex::encode(Sha256::digest(payload))).into_bytes()
}

/// A new private key (hex seed) and its public key (hex).
pub fn generate() -> (String, String) {
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    (hex::encode(key.to_bytes()), hex::encode(key.verifying_key().to_bytes()))
}

fn bytes32(text: &str, what: &str) -> Result<[u8; 32], AttestError> {
    let raw = hex::decode(text.trim()).map_err(|e| AttestError::Key(format!("{what} is not hex: {e}")))?;
    raw.try_into().map_err(|_| AttestError::Key(format!("{what} must be 32 bytes")))
}

/// The public key (hex) of a private key (hex seed).
pub fn public_key(private_hex: &str) -> Result<String, AttestError> {
    Ok(hex::encode(SigningKey::from_bytes(&bytes32(private_hex, "the private key")?).verifying_key().to_bytes()))
}

/// Signs the statement for (digest, kind, payload); the signature as hex.
pub fn sign(private_hex: &str, digest: &str, kind: &str, payload: &[u8]) -> Result<String, AttestError> {
    check_digest(digest)?;
    check_kind(kind)?;
    let key = SigningKey::from_bytes(&bytes32(private_hex, "the private key")?);
    Ok(hex::encode(key.sign(&statement(digest, kind, payload)).to_bytes()))
}

/// Verifies a hex signature by a hex public key over (digest, kind, payload).
pub fn verify(public_hex: &str, digest: &str, kind: &str, payload: &[u8], signature_hex: &str) -> Result<(), AttestError> {
    let key = VerifyingKey::from_bytes(&bytes32(public_hex, "the public key")?).map_err(|e| AttestError::Key(e.to_string()))?;
    let raw = hex::decode(signature_hex.trim()).map_err(|e| AttestError::Signature(format!("not hex: {e}")))?;
    let raw: [u8; 64] = raw.try_into().map_err(|_| AttestError::Signature("must be 64 bytes".into()))?;
    key.verify_strict(&statement(digest, kind, payload), &Signature::from_bytes(&raw))
        .map_err(|_| AttestError::Signature("it does not match the key, the artifact, the kind or the payload".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_signature_binds_key_artifact_kind_and_payload() {
        let (private, public) = generate();
        assert_eq!(public_key(&private).expect("valid"), public);
        let sig = sign(&private, DIGEST, "sbom", b"{\"components\":[]}").expect("signs");
        assert_eq!(verify(&public, DIGEST, "sbom", b"{\"components\":[]}", &sig), Ok(()));
        let other = DIGEST.replace("9f86", "0000");
        assert!(verify(&public, &other, "sbom", b"{\"components\":[]}", &sig).is_err(), "another artifact");
        assert!(verify(&public, DIGEST, "coverage", b"{\"components\":[]}", &sig).is_err(), "another kind");
        assert!(verify(&public, DIGEST, "sbom", b"{\"components\":[1]}", &sig).is_err(), "another payload");
        let (_, stranger) = generate();
        assert!(verify(&stranger, DIGEST, "sbom", b"{\"components\":[]}", &sig).is_err(), "another key");
    }

    #[test]
    fn bad_input_is_refused_precisely() {
        let (private, public) = generate();
        assert_eq!(sign(&private, "sha256:xyz", "sbom", b""), Err(AttestError::Digest("sha256:xyz".into())));
        assert_eq!(sign(&private, DIGEST, "vibes", b""), Err(AttestError::Kind("vibes".into())));
        assert!(matches!(sign("zz", DIGEST, "sbom", b""), Err(AttestError::Key(_))));
        assert!(matches!(verify(&public, DIGEST, "sbom", b"", "abcd"), Err(AttestError::Signature(_))));
    }
}
