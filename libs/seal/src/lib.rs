//! Encryption at rest: AES-256-GCM under the root key, which comes from a
//! file or the environment and never from the database it protects. The
//! secrets broker seals its keys and secrets with it, the audit service its
//! log key.
//!
//! A sealed value is `v1 ‖ nonce (12) ‖ ciphertext+tag`, and its associated
//! data names what it is (`signing-key:<kid>`): a ciphertext moved to
//! another row or column does not open.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use std::path::Path;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// An AES-256-GCM key: the root key that seals every other key, or a data
/// key sealing one secret's value. Never printed.
#[derive(Clone)]
pub struct RootKey {
    cipher: Aes256Gcm,
    /// The first 8 bytes of SHA-256 of the key, hex: tells which root key
    /// sealed a row without revealing it.
    pub id: String,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RootKey({})", self.id)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the root key must be 32 bytes, as 64 hex digits or base64")]
    BadRootKey,
    #[error("sealed data is corrupt or was sealed for something else")]
    Corrupt,
    #[error("sealed under a root key this broker does not hold (set the previous root key during a rotation)")]
    UnknownRootKey,
}

impl RootKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        use sha2::Digest;
        let id = hex::encode(&sha2::Sha256::digest(bytes)[..8]);
        // A 32-byte slice is always a valid AES-256 key.
        Self { cipher: Aes256Gcm::new(bytes.into()), id }
    }

    /// From its text form: 64 hex digits, or base64 (standard or URL-safe).
    pub fn parse(text: &str) -> Result<Self, SealError> {
        use base64::Engine;
        let text = text.trim();
        let bytes = hex::decode(text)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .or_else(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or(SealError::BadRootKey)?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Reads the key from `path`, or creates it there (hex, mode 0600) when
    /// `create` and the file is missing: what `paved up` does on first start.
    pub fn load_or_create(path: &Path, create: bool) -> anyhow::Result<Self> {
        use anyhow::Context;
        if create && !path.exists() {
            let bytes: [u8; 32] = rand::random();
            write_private(path, &hex::encode(bytes)).with_context(|| format!("create root key {}", path.display()))?;
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("read root key {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("root key {}", path.display()))
    }

    /// A root key as configured: the key itself (`value`, from the
    /// environment variable `env`), which wins, or else its file; None
    /// without either. The broker and the CLI's root-key holders
    /// (`paved token root`, `paved token enrol`) read it alike.
    pub fn configured(value: Option<&str>, file: Option<&Path>, create: bool, env: &str) -> anyhow::Result<Option<Self>> {
        use anyhow::Context;
        match (value, file) {
            (Some(key), _) => Self::parse(key).context(env.to_string()).map(Some),
            (None, Some(file)) => Self::load_or_create(file, create).map(Some),
            (None, None) => Ok(None),
        }
    }

    pub fn seal(&self, plain: &[u8], purpose: &str) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        // Encryption fails only for inputs over 64 GiB.
        let sealed = self.cipher.encrypt(&Nonce::from(nonce), Payload { msg: plain, aad: purpose.as_bytes() }).unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, sealed: &[u8], purpose: &str) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(SealError::Corrupt);
        }
        let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().map_err(|_| SealError::Corrupt)?;
        self.cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: &sealed[1 + NONCE_LEN..], aad: purpose.as_bytes() })
            .map_err(|_| SealError::Corrupt)
    }
}

/// The root key in use and, during a rotation, the one before it: rows
/// name the key that sealed them, so both open until everything is
/// re-sealed under the current one.
#[derive(Debug, Clone)]
pub struct Keyring {
    current: RootKey,
    previous: Option<RootKey>,
}

impl Keyring {
    pub fn new(current: RootKey, previous: Option<RootKey>) -> Self {
        let previous = previous.filter(|p| p.id != current.id);
        Self { current, previous }
    }

    /// The key new seals use.
    pub fn current(&self) -> &RootKey {
        &self.current
    }

    /// Opens what the root key `key_id` sealed.
    pub fn open(&self, sealed: &[u8], purpose: &str, key_id: &str) -> Result<Vec<u8>, SealError> {
        let key = [Some(&self.current), self.previous.as_ref()].into_iter().flatten().find(|k| k.id == key_id);
        key.ok_or(SealError::UnknownRootKey)?.open(sealed, purpose)
    }
}

/// Writes `text` to a new file only its owner can read.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

/// A value kept out of debug output and logs: a root key given in the
/// configuration.
#[derive(Clone, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_refuses_tampering() {
        let key = RootKey::from_bytes(&[7; 32]);
        let sealed = key.seal(b"seed bytes", "signing-key:a");
        assert_eq!(key.open(&sealed, "signing-key:a").expect("opens"), b"seed bytes");
        // Another purpose, a flipped bit, a truncation, another key.
        assert_eq!(key.open(&sealed, "signing-key:b"), Err(SealError::Corrupt));
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert_eq!(key.open(&flipped, "signing-key:a"), Err(SealError::Corrupt));
        assert_eq!(key.open(&sealed[..10], "signing-key:a"), Err(SealError::Corrupt));
        assert_eq!(RootKey::from_bytes(&[8; 32]).open(&sealed, "signing-key:a"), Err(SealError::Corrupt));
        // Text forms, and the key never in debug output.
        assert_eq!(RootKey::parse(&hex::encode([7; 32])).expect("hex").id, key.id);
        assert!(matches!(RootKey::parse("short"), Err(SealError::BadRootKey)));
        assert!(!format!("{key:?}").contains("0707"));
    }
}
