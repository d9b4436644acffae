//! The workload spec, `paved.yaml`: parsing and validation.
//!
//! Validation happens while deserialising: every field has a type whose
//! `Deserialize` checks it, so an error carries the line and column where the
//! bad value stands, and unknown fields are rejected the same way. The few
//! rules that relate two fields are checked afterwards and pointed at the
//! second field's line.
//!
//! ```yaml
//! name: hello                  # DNS label: a-z, 0-9, '-', at most 63
//! team: shop                   # who pays: cost by team, budgets (required in staging, prod)
//! command: ["hello", "--x"]    # or artifact: ./bin/hello (exactly one)
//! port: 8080                   # the port it listens on; the local runtime
//!                              # assigns its own and passes it in $PORT
//! health:
//!   path: /healthz             # HTTP GET, 2xx means healthy
//!   period: 1s
//!   timeout: 1s
//!   failure_threshold: 3
//!   startup_timeout: 30s
//! env:
//!   HELLO_VERSION: v1
//! replicas: 1
//! resources:                   # what the policy gate and Kubernetes expect
//!   requests: {cpu: 100m, memory: 64Mi}
//!   limits: {cpu: 500m, memory: 128Mi}
//! security:
//!   run_as_root: false         # the default; true is denied by policy
//!   privileged: false
//! secrets: [db-password]       # declared references; env uses ${secret:db-password}
//! databases: [orders]          # dynamic PostgreSQL credentials it may ask for
//! certificate: true            # may enrol an X.509 certificate for its own SPIFFE id
//! rollout:                     # how a new revision takes over (all optional)
//!   steps: [1, 5, 25, 50, 100] # canary traffic weights in percent
//!   interval: 30s              # each step is held this long, then checked
//!   max_error_rate: 0.01       # share of 5xx answers the canary may give
//!   max_p99_latency: 500ms     # the canary's p99 latency limit
//! analysis: …                  # how each step is judged (see `analysis`)
//! schedule:                    # when it sleeps (see `schedule`)
//!   uptime: "Mon-Fri 07:30-20:30 Europe/Berlin"
//!   idle_after: 30m
//! ```
//!
//! # Layout
//!
//! `lib.rs` only declares modules and re-exports; every public path
//! (`paved_spec::WorkloadSpec`, `paved_spec::parse`, …) is a re-export.
//! Imports point one way, from the readers down to the types:
//!
//! - `parse` — [`parse`]: the native reader, handing Score files to `score`;
//!   [`validate_name`].
//! - `score` — the Score (`score.dev/v1b1`) reader.
//! - `overlay` — environments as overlays ([`render`], [`overlay_files`]).
//! - `diff` — [`diff`], field by field, of two specs.
//! - `workload` — [`WorkloadSpec`], its analysis and its digest.
//! - `analysis` — the `analysis` section ([`Analysis`] and its parts).
//! - `schedule` — the `schedule` section ([`Schedule`]): when it sleeps.
//! - `defaults` — the operator's [`ScheduleDefaults`] by environment.
//! - `parts` — the parts of a spec ([`Resources`], [`RolloutPolicy`], [`Run`],
//!   [`HealthCheck`]…) and [`is_digest`].
//! - `types` — field types that validate themselves while deserialised.
//! - `error` — [`SpecError`] and the helpers that locate it in the YAML.

mod analysis;
mod defaults;
mod delivery;
mod diff;
mod error;
mod overlay;
mod parse;
mod parts;
mod schedule;
mod score;
mod types;
mod workload;

pub use analysis::{Analysis, Direction, Judge, Metric, Slo, Source};
pub use defaults::ScheduleDefaults;
pub use delivery::{OnRotation, references as secret_references, substitute as substitute_secrets};
pub use diff::{FieldChange, diff};
pub use error::SpecError;
pub use overlay::{Rendered, overlay_files, render};
pub use parse::{parse, validate_name};
pub use parts::{HealthCheck, Quantities, Resources, RolloutPolicy, Run, Security, is_digest};
pub use schedule::{Hours, Range as ScheduleRange, Schedule};
pub use types::{EnvName, Name};
pub use workload::WorkloadSpec;

#[cfg(test)]
mod tests;
