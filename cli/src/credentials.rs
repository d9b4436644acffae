//! Where the CLI keeps its tokens: `credentials.json` in `$PAVED_CONFIG_DIR`
//! (default `$XDG_CONFIG_HOME/paved`, then `~/.config/paved`), one token per
//! endpoint, readable by its owner only. `PAVED_TOKEN` overrides the file.

use anyhow::Context;
use std::{collections::BTreeMap, path::PathBuf};

pub fn config_dir() -> anyhow::Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("PAVED_CONFIG_DIR")
        .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("paved")))
        .or_else(|| var("HOME").map(|d| d.join(".config/paved")))
        .context("no configuration directory: set PAVED_CONFIG_DIR or HOME")
}

fn file() -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join("credentials.json"))
}

fn load() -> anyhow::Result<BTreeMap<String, String>> {
    let path = file()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{} is not a credentials file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// The token for `endpoint`: `PAVED_TOKEN`, else the stored one, else none
/// (the call is then refused with a hint to log in).
pub fn token_for(endpoint: &str) -> anyhow::Result<String> {
    if let Some(token) = std::env::var("PAVED_TOKEN").ok().filter(|t| !t.is_empty()) {
        return Ok(token);
    }
    Ok(load()?.remove(endpoint).unwrap_or_default())
}

/// Stores `token` for `endpoint` (replacing the file atomically, mode 0600).
pub fn store(endpoint: &str, token: &str) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = file()?;
    let dir = path.parent().context("credentials file has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut all = load()?;
    all.insert(endpoint.to_string(), token.to_string());
    let temp = dir.join(format!(".credentials.{}.tmp", std::process::id()));
    let mut out = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp)?;
    out.write_all(serde_json::to_string_pretty(&all)?.as_bytes())?;
    out.sync_all()?;
    std::fs::rename(&temp, &path).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}
