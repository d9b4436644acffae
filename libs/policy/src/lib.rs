//! Policy as code: Rego bundles evaluated in-process (regorus), and their
//! unit tests run the way `opa test` runs them.
//!
//! A bundle is a set of `.rego` files. Files ending in `_test.rego` hold
//! tests (rules named `test_*`, passing when `true`) and take no part in
//! decisions. A deploy decision reads two sets from the package
//! `paved.deploy`: `deny` (messages that block) and `warn` (messages that
//! pass along). Every decision names the bundle's digest, a sha256 over the
//! file names and contents, so a decision can be traced to the exact rules
//! that made it.
//!
//! The default bundle ships in the binary (from `deploy/policies/`), so the
//! embedded platform needs no files; a configured directory replaces it.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex},
};

/// The default bundle, as `deploy/policies/` has it: (file name, Rego).
pub const DEFAULT_BUNDLE: [(&str, &str); 2] = [
    ("deploy.rego", include_str!("../../../deploy/policies/deploy.rego")),
    ("deploy_test.rego", include_str!("../../../deploy/policies/deploy_test.rego")),
];

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file that does not parse or compile; regorus' message carries its
    /// file, line and column.
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read policy bundle {path}: {message}")]
    Read { path: String, message: String },
    #[error("policy evaluation failed: {0}")]
    Evaluation(String),
}

/// A loaded, compiled bundle, ready to evaluate.
#[derive(Clone)]
pub struct Bundle {
    /// Engine with the decision rules only.
    engine: regorus::Engine,
    files: Vec<(String, String)>,
    digest: String,
    /// Decisions by input (JSON), so that a plan, its apply and the
    /// rollout's policy stage decide once. None when a rule may read the
    /// clock, the network or randomness: then a decision is a function of
    /// more than the bundle and the input. Bounded: emptied when full.
    decided: Option<Arc<Mutex<HashMap<String, Decision>>>>,
}

/// Built-ins whose result is not a function of the input.
const NONDETERMINISTIC: [&str; 5] = ["time.now_ns", "http.send", "rand.", "uuid.", "opa.runtime"];

/// Decisions kept by [`Bundle::decide`].
const DECIDED_MAX: usize = 4096;

/// A deploy decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub denials: Vec<String>,
    pub warnings: Vec<String>,
    /// `sha256:<hex>` of the bundle that decided.
    pub bundle_digest: String,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.denials.is_empty()
    }
}

/// The outcome of one policy unit test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// `data.<package>.<rule>`
    pub name: String,
    pub file: String,
    /// None when it passed, else why not.
    pub failure: Option<String>,
}

impl Bundle {
    /// The bundle compiled into the binary.
    pub fn default_bundle() -> Result<Self, PolicyError> {
        Self::from_files(DEFAULT_BUNDLE.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect())
    }

    /// Every `.rego` file directly in `dir`.
    pub fn load(dir: &Path) -> Result<Self, PolicyError> {
        let read_err = |e: std::io::Error| PolicyError::Read { path: dir.display().to_string(), message: e.to_string() };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            if path.extension().is_some_and(|e| e == "rego") {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| PolicyError::Read { path: path.display().to_string(), message: e.to_string() })?;
                files.push((path.display().to_string(), text));
            }
        }
        if files.is_empty() {
            return Err(PolicyError::Read { path: dir.display().to_string(), message: "no .rego files".into() });
        }
        Self::from_files(files)
    }

    /// Compiles `(file name, Rego)` pairs; a file that does not parse is an
    /// error naming its file, line and column.
    pub fn from_files(mut files: Vec<(String, String)>) -> Result<Self, PolicyError> {
        files.sort();
        let mut hasher = Sha256::new();
        for (name, text) in &files {
            let base = Path::new(name).file_name().map_or(name.clone(), |n| n.to_string_lossy().into_owned());
            // Length-prefixed, so no two bundles hash the same by moving bytes between fields.
            for part in [base.as_bytes(), text.as_bytes()] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part);
            }
        }
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        let mut engine = regorus::Engine::new();
        for (name, text) in files.iter().filter(|(n, _)| !is_test(n)) {
            engine.add_policy(name.clone(), text.clone()).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        }
        // Test files must parse too, even though decisions do not read them.
        let mut all = engine.clone();
        for (name, text) in files.iter().filter(|(n, _)| is_test(n)) {
            all.add_policy(name.clone(), text.clone()).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        }
        let pure = !files.iter().any(|(_, text)| NONDETERMINISTIC.iter().any(|b| text.contains(b)));
        Ok(Self { engine, files, digest, decided: pure.then(Arc::default) })
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Evaluates `data.paved.deploy.deny` and `.warn` for `input`.
    pub fn decide(&self, input: &Value) -> Result<Decision, PolicyError> {
        let json = input.to_string();
        let Some(decided) = &self.decided else { return self.evaluate(&json) };
        let lock = || decided.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(decision) = lock().get(&json) {
            return Ok(decision.clone());
        }
        let decision = self.evaluate(&json)?;
        let mut decided = lock();
        if decided.len() >= DECIDED_MAX {
            decided.clear();
        }
        decided.insert(json, decision.clone());
        Ok(decision)
    }

    fn evaluate(&self, json: &str) -> Result<Decision, PolicyError> {
        let mut engine = self.engine.clone();
        let input = regorus::Value::from_json_str(json).map_err(|e| PolicyError::Evaluation(e.to_string()))?;
        engine.set_input(input);
        let mut set = |rule: &str| -> Result<Vec<String>, PolicyError> {
            let value = engine.eval_rule(format!("data.paved.deploy.{rule}")).map_err(|e| PolicyError::Evaluation(e.to_string()))?;
            messages(&value)
        };
        let (denials, warnings) = (set("deny")?, set("warn")?);
        Ok(Decision { denials, warnings, bundle_digest: self.digest.clone() })
    }

    /// Runs every `test_*` rule of the bundle's `_test.rego` files.
    pub fn test(&self) -> Result<Vec<TestResult>, PolicyError> {
        let mut engine = self.engine.clone();
        let mut tests = Vec::new();
        for (name, text) in self.files.iter().filter(|(n, _)| is_test(n)) {
            engine.add_policy(name.clone(), text.clone()).map_err(|e| PolicyError::Invalid(e.to_string()))?;
            let package = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("package "))
                .map(|p| p.trim().to_string())
                .ok_or_else(|| PolicyError::Invalid(format!("{name}: no package declaration")))?;
            let mut seen = std::collections::BTreeSet::new();
            for line in text.lines() {
                let Some(rule) = line.strip_prefix("test_") else { continue };
                let rule: String = rule.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if seen.insert(rule.clone()) {
                    tests.push((name.clone(), format!("data.{package}.test_{rule}")));
                }
            }
        }
        let mut results = Vec::new();
        for (file, rule) in tests {
            let failure = match engine.eval_rule(rule.clone()) {
                Ok(regorus::Value::Bool(true)) => None,
                Ok(regorus::Value::Undefined) => Some("undefined: a condition of the test does not hold".to_string()),
                Ok(other) => Some(format!("evaluated to {other}, not true")),
                Err(e) => Some(format!("error: {e}")),
            };
            results.push(TestResult { name: rule, file, failure });
        }
        Ok(results)
    }
}

fn is_test(name: &str) -> bool {
    name.ends_with("_test.rego")
}

/// The strings of a set (or array) of messages, sorted; nothing when undefined.
fn messages(value: &regorus::Value) -> Result<Vec<String>, PolicyError> {
    if *value == regorus::Value::Undefined {
        return Ok(Vec::new());
    }
    let json = value.to_json_str().map_err(|e| PolicyError::Evaluation(e.to_string()))?;
    let parsed: Value = serde_json::from_str(&json).map_err(|e| PolicyError::Evaluation(e.to_string()))?;
    let Value::Array(items) = parsed else {
        return Err(PolicyError::Evaluation(format!("expected a set of messages, got {json}")));
    };
    let mut out: Vec<String> = items.into_iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests;
