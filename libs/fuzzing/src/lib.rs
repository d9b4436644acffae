//! The bodies of Paved's fuzz targets: every parser that reads input a
//! user, a client or another service controls, each called as its caller
//! calls it, with the properties its callers rely on asserted. A panic is
//! a finding.
//!
//! `fuzz/` (cargo fuzz, nightly, libFuzzer) wraps each in a
//! `fuzz_target!`; `tests/replay.rs` runs every input of `fuzz/corpus/` and
//! `fuzz/regressions/` through the same functions on the stable toolchain,
//! so the test suite keeps every input the fuzzer found interesting, and
//! every crash it found, passing. See `docs/fuzzing.md`.
//!
//! # Layout
//! - `spec` — `paved.yaml`, Score files, overlays, the analysis section.
//! - `look` — `JudgeLook`: validation, then the judgement.
//! - `token` — `pvt1.` access tokens and the `pvb1.` bootstrap gate.
//! - `event` — event envelopes and what each consumer reads of them.
//! - `attestation` — artifact attestations as the provisioner accepts them.
//! - `audit` — the audit log's checkpoints, signed notes, entry bundles and
//!   `paved-audit-bundle/v1` files.
//! - `seeds` — the committed seeds, made from real inputs.

mod attestation;
mod audit;
mod event;
mod look;
pub mod seeds;
mod spec;
mod token;

/// A fuzz target: its name (as `cargo xtask fuzz <name>` and `fuzz/corpus/<name>` say it) and body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("spec", spec::spec),
    ("score", spec::score),
    ("overlay", spec::overlay),
    ("analysis", spec::analysis),
    ("judge_look", look::judge_look),
    ("token", token::token),
    ("envelope", event::envelope),
    ("attestation", attestation::attestation),
    ("checkpoint", audit::checkpoint),
    ("audit_bundle", audit::bundle),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}
