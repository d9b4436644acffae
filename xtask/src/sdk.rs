//! The SDKs' tooling: a virtualenv with what `sdk/python/requirements-dev.txt`
//! pins (reinstalled when that file changes), the generated stubs checked
//! against `proto/`, and `cargo xtask sdk generate` to regenerate them.

use crate::run;
use anyhow::{Context, bail};
use std::{path::PathBuf, process::Command};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The virtualenv's Python, its packages those the requirements pin.
pub fn ensure_python() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let venv = PathBuf::from(home).join(".cache/paved-tools/python-sdk");
    let python = venv.join("bin/python");
    let requirements = root().join("sdk/python/requirements-dev.txt");
    let wanted = std::fs::read_to_string(&requirements).with_context(|| format!("read {}", requirements.display()))?;
    // The requirements as last installed: a changed pin reinstalls.
    let stamp = venv.join("paved-requirements.txt");
    if !python.is_file() || std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        eprintln!("xtask: installing the Python SDK's requirements into {}", venv.display());
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check", "-r"]).arg(&requirements))?;
        std::fs::write(&stamp, &wanted)?;
    }
    Ok(python)
}

/// Fails when the committed Python stubs differ from what `proto/` generates.
pub fn check_generated(python: &PathBuf) -> anyhow::Result<()> {
    run(Command::new(python).arg(root().join("sdk/python/generate.py")).arg("--check"))
}

/// `cargo xtask sdk generate`: regenerates the Python stubs.
pub fn command(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("generate") => {
            let python = ensure_python()?;
            run(Command::new(&python).arg(root().join("sdk/python/generate.py")))
        }
        Some("check") => check_generated(&ensure_python()?),
        _ => bail!("usage: cargo xtask sdk <generate | check>"),
    }
}
