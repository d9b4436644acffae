//! The broker's own settings: where its root key comes from (and, during a
//! root key rotation, the one before), and what an embedding process gets
//! back from it.

use crate::authority::Authority;
use crate::seal::{Keyring, RootKey};
use anyhow::Context;
use serde::Deserialize;
use std::{
    path::PathBuf,
    sync::{Arc, OnceLock},
};

pub use paved_seal::Secret;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Options {
    /// A file holding the root key (64 hex digits or base64 of 32 bytes).
    #[serde(default)]
    pub root_key_file: Option<PathBuf>,
    /// Or the root key itself (`PAVED_ROOT_KEY`).
    #[serde(default)]
    pub root_key: Option<Secret>,
    /// During a root key rotation, the key before (file or value): what it
    /// sealed is re-sealed under the new one at start.
    #[serde(default)]
    pub previous_root_key_file: Option<PathBuf>,
    #[serde(default)]
    pub previous_root_key: Option<Secret>,
    /// Create `root_key_file` when it is missing (`paved up` on first start).
    #[serde(skip)]
    pub create_root_key: bool,
    /// Filled with the authority once the service is built, for the process
    /// that embeds it (`paved up` mints its root token with it).
    #[serde(skip)]
    pub authority: Arc<OnceLock<Authority>>,
}

impl Options {
    /// The root keys as configured: the current one (required) and the
    /// previous one, if a rotation is under way.
    pub(crate) fn keyring(&self) -> anyhow::Result<Keyring> {
        fn value(key: &Option<Secret>) -> Option<&str> {
            key.as_ref().map(|k| k.0.as_str())
        }
        let current = RootKey::configured(value(&self.root_key), self.root_key_file.as_deref(), self.create_root_key, "PAVED_ROOT_KEY")?
            .context("the broker needs a root key: set root_key_file (PAVED_ROOT_KEY_FILE) or PAVED_ROOT_KEY")?;
        let previous =
            RootKey::configured(value(&self.previous_root_key), self.previous_root_key_file.as_deref(), false, "PAVED_PREVIOUS_ROOT_KEY")?;
        Ok(Keyring::new(current, previous))
    }
}
