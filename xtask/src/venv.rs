//! The Python tools `cargo xtask test` needs, each in a virtualenv of its
//! own under `~/.cache/paved-tools/`, holding what a requirements file pins
//! (reinstalled when that file changes): the Python SDK's, the dashboard
//! generator's, kubernetes-validate.

use crate::run;
use anyhow::Context;
use std::{
    path::{Path, PathBuf},
    process::Command,
};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The virtualenv `<name>` with what `requirements` pins; its Python.
pub fn ensure(name: &str, requirements: &Path) -> anyhow::Result<PathBuf> {
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
    let python = ensure("grafana", &grafana.join("requirements.txt"))?;
    run(Command::new(python).arg(grafana.join("dashboards.py")).arg("--check"))
}

/// `kubernetes-validate` (PyPI), which checks manifests against the
/// Kubernetes OpenAPI schemas; its executable.
pub fn ensure_kubernetes_validate() -> anyhow::Result<PathBuf> {
    let python = ensure("kubernetes-validate", &root().join("xtask/kubernetes-validate.txt"))?;
    Ok(python.with_file_name("kubernetes-validate"))
}
