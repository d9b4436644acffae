//! The SDKs' tooling: a virtualenv with what `sdk/python/requirements-dev.txt`
//! pins (`venv.rs`), `sdk/typescript`'s packages as
//! its `package-lock.json` pins them (`npm ci`, again when it changes) and
//! its build; the generated stubs of both checked against `proto/`, and
//! `cargo xtask sdk generate` to regenerate them; Debian's Go toolchain for
//! the test of a Go client generated in buf's managed mode.

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

/// Debian's Go toolchain, protoc plugins and the gRPC and protobuf modules
/// (GOPATH mode: no Go module proxy is reachable), which the test of a Go
/// client generated from `proto/buf.gen.go.yaml` builds with. The v1.5
/// `github.com/golang/protobuf` is named: Debian's gRPC accepts v1.3 too,
/// which cannot encode the generated (APIv2) messages.
pub fn ensure_go() -> anyhow::Result<()> {
    const PACKAGES: [&str; 7] = [
        "golang-go",
        "protoc-gen-go",
        "protoc-gen-go-grpc",
        "golang-google-grpc-dev",
        "golang-google-protobuf-dev",
        "golang-google-genproto-dev",
        "golang-github-golang-protobuf-1-5-dev",
    ];
    let installed = |package: &&str| {
        Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", package])
            .output()
            .is_ok_and(|o| o.status.success() && o.stdout.ends_with(b"installed"))
    };
    let missing: Vec<&str> = PACKAGES.iter().filter(|p| !installed(p)).copied().collect();
    if missing.is_empty() { Ok(()) } else { crate::apt_install(&missing) }
}

/// buf, from the TypeScript SDK's packages (`ensure_typescript` installs them).
pub fn buf() -> PathBuf {
    root().join("sdk/typescript/node_modules/.bin/buf")
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
