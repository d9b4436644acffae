//! The SDKs' tooling (and the dashboards', which is the same kind): a virtualenv with what `sdk/python/requirements-dev.txt`
//! pins (reinstalled when that file changes), `sdk/typescript`'s packages as
//! its `package-lock.json` pins them (`npm ci`, again when it changes) and
//! its build; the generated stubs of both checked against `proto/`, and
//! `cargo xtask sdk generate` to regenerate them.

use crate::run;
use anyhow::{Context, bail};
use std::{path::PathBuf, process::Command};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python SDK's virtualenv (its Python).
pub fn ensure_python() -> anyhow::Result<PathBuf> {
    ensure_venv("python-sdk", &root().join("sdk/python/requirements-dev.txt"))
}

/// A virtualenv `~/.cache/paved-tools/<name>` holding what `requirements`
/// pins, reinstalled when that file changes; its Python.
pub fn ensure_venv(name: &str, requirements: &std::path::Path) -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let venv = PathBuf::from(home).join(".cache/paved-tools").join(name);
    let python = venv.join("bin/python");
    let wanted = std::fs::read_to_string(requirements).with_context(|| format!("read {}", requirements.display()))?;
    // The requirements as last installed: a changed pin reinstalls.
    let stamp = venv.join("paved-requirements.txt");
    if !python.is_file() || std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        eprintln!("xtask: installing {} into {}", requirements.display(), venv.display());
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check", "-r"]).arg(requirements))?;
        std::fs::write(&stamp, &wanted)?;
    }
    Ok(python)
}

/// Fails when a Grafana dashboard differs from what `deploy/grafana/dashboards.py`
/// (Grafana's Foundation SDK) writes, or has a field its schema does not know.
pub fn check_dashboards() -> anyhow::Result<()> {
    let grafana = root().join("deploy/grafana");
    let python = ensure_venv("grafana", &grafana.join("requirements.txt"))?;
    run(Command::new(python).arg(grafana.join("dashboards.py")).arg("--check"))
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
