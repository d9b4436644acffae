//! The SDKs' tooling: a virtualenv with what `sdk/python/requirements-dev.txt`
//! pins (`venv.rs`), `sdk/typescript`'s packages as
//! its `package-lock.json` pins them (`npm ci`, again when it changes) and
//! its build; the generated stubs of both checked against `proto/`, and
//! `cargo xtask sdk generate` to regenerate them.

use crate::{run, venv::root};
use anyhow::{Context, bail};
use std::{path::PathBuf, process::Command};

/// The Python SDK's virtualenv (its Python).
pub fn ensure_python() -> anyhow::Result<PathBuf> {
    crate::venv::ensure("python-sdk", &root().join("sdk/python/requirements-dev.txt"))
}

/// Fails when the committed Python stubs differ from what `proto/` generates.
pub fn check_generated(python: &PathBuf) -> anyhow::Result<()> {
    run(Command::new(python).arg(root().join("sdk/python/generate.py")).arg("--check"))
}

/// `sdk/typescript` ready to test: its packages installed as locked, its
/// generated code checked against `proto/`, and built (`dist/`).
pub fn ensure_typescript() -> anyhow::Result<()> {
    let dir = ensure_typescript_packages()?;
    run(Command::new("node").arg("scripts/check-generated.mjs").current_dir(&dir))?;
    run(npm(&dir).args(["run", "--silent", "build"]))
}

/// `sdk/typescript/node_modules` as its lock file pins it.
fn ensure_typescript_packages() -> anyhow::Result<PathBuf> {
    let dir = root().join("sdk/typescript");
    let lock = std::fs::read(dir.join("package-lock.json")).context("read sdk/typescript/package-lock.json")?;
    // The lock file as last installed: a changed pin installs again.
    let stamp = dir.join("node_modules/.paved-lock.json");
    if std::fs::read(&stamp).ok() != Some(lock.clone()) {
        eprintln!("xtask: installing the TypeScript SDK's packages (npm ci)");
        run(npm(&dir).args(["ci", "--no-audit", "--no-fund"]))?;
        std::fs::write(&stamp, &lock)?;
    }
    Ok(dir)
}

fn npm(dir: &std::path::Path) -> Command {
    let mut command = Command::new("npm");
    command.current_dir(dir);
    command
}

/// `cargo xtask sdk generate|check`: regenerates (or checks) the stubs of both SDKs.
pub fn command(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("generate") => {
            let python = ensure_python()?;
            run(Command::new(&python).arg(root().join("sdk/python/generate.py")))?;
            ensure_typescript_packages()?;
            run(npm(&root().join("sdk/typescript")).args(["run", "--silent", "generate"]))
        }
        Some("check") => {
            check_generated(&ensure_python()?)?;
            ensure_typescript()
        }
        _ => bail!("usage: cargo xtask sdk <generate | check>"),
    }
}
