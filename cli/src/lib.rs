//! The `paved` command: the human front door to the platform, and the
//! embedded platform itself (`paved up`).
//!
//! # Layout
//! One module per command (or command group): its clap arguments, a `run`
//! that `main.rs` dispatches to, and the gRPC calls behind it, which tests
//! and other commands use directly.
//! - [`up`] — assembles all five services in one process (embedded mode) or
//!   the provisioner deploying the other four (self-hosted mode).
//! - [`selfhost`] — forwards the deployed services' gRPC calls, so clients
//!   still need only the one address `paved up` prints.
//! - [`status`] — the services' health and the workloads.
//! - [`render`] — a spec resolved for an environment, or as Kubernetes
//!   manifests; how every command that sends a spec reads it.
//! - [`init`] — a new workload's starting point (`init/` holds its templates).
//! - [`deploy`], [`plan`] — apply a spec and follow its rollout; what that would change.
//! - [`preview`] — `preview open|close|list`: environments `pr-<n>`.
//! - [`rollouts`] — following and steering rollouts; [`rollback`]; [`traffic`].
//! - [`canary`] — `canary explain|replay`: the analyzer's decision records.
//! - [`policy`] — `policy test`: a Rego bundle's unit tests.
//! - [`artifacts`] — `artifact push|get|keygen|sign|verify`.
//! - [`login`] — a token checked, then stored for an endpoint.
//! - [`tokens`] — `token issue|list|revoke|rotate-key|root|enrol`.
//! - [`secrets`] — `secrets put|get|list|watch|rewrap|policy`.
//! - [`db`], [`leases`] — `db configure|list|creds`, `lease list|renew|revoke`.
//! - [`ca`] — `ca bundle|rotate|issue|renew`: the internal CA.
//! - [`power`] — `sleep`, `wake`; [`cost`] — `cost report|budget`;
//!   [`rightsize`] — `cost rightsize`.
//! - [`shell`] — `completions <shell>`, `man`: derived from the commands.
//!
//! Shared by the commands:
//! - [`client`] — channels to an endpoint, and gRPC errors in words.
//! - [`credentials`] — the tokens the CLI presents, per endpoint.
//! - [`ttl`] — `48h`-style durations on the command line.
//! - [`output`] — tables for people, JSON for scripts.
//! - [`revisions`] — revision numbers for the ids the API gives.

pub mod artifacts;
pub mod audit;
pub mod ca;
pub mod canary;
pub mod client;
pub mod cost;
pub mod credentials;
pub mod db;
pub mod delete;
pub mod deploy;
pub mod init;
pub mod leases;
pub mod login;
pub mod output;
pub mod plan;
pub mod policy;
pub mod power;
pub mod preview;
pub mod render;
pub mod revisions;
pub mod rightsize;
pub mod rollback;
pub mod rollouts;
pub mod secrets;
pub mod selfhost;
pub mod shell;
pub mod status;
pub mod tokens;
pub mod traffic;
pub mod ttl;
pub mod up;

/// The five services: (short name, gRPC service name).
pub const SERVICES: [(&str, &str); 5] = [
    ("provisioner", paved_provisioner::GRPC_NAME),
    service::<paved_secrets_broker::SecretsBroker>(),
    service::<paved_canary_analyzer::CanaryAnalyzer>(),
    service::<paved_cost_scheduler::CostScheduler>(),
    service::<paved_audit::Audit>(),
];

const fn service<S: paved_service::ConsumerService>() -> (&'static str, &'static str) {
    (S::NAME, S::GRPC_NAME)
}

/// The default address of `paved up`.
pub const DEFAULT_ENDPOINT: &str = "127.0.0.1:7400";
