//! The `paved` command: the human front door to the platform, and the
//! embedded platform itself (`paved up`).
//!
//! # Layout
//! - [`up`] — assembles all five services in one process (embedded mode) or
//!   the provisioner deploying the other four (self-hosted mode).
//! - [`selfhost`] — forwards the deployed services' gRPC calls, so clients
//!   still need only the one address `paved up` prints.
//! - [`artifacts`] — `artifact push|get|keygen|sign|verify`.
//! - [`canary`] — `canary explain|replay`: the analyzer's decision records.
//! - [`commands`] — `status`, `render` and `deploy`, as gRPC clients.
//! - [`credentials`] — the tokens the CLI presents, per endpoint.
//! - [`tokens`] — `login` and `token issue|list|revoke|rotate-key|root`.
//! - [`secrets`] — `secrets put|get|list|watch|rewrap`.
//! - [`leases`] — `db configure|list|creds`, `lease list|renew|revoke`.
//! - [`rollouts`] — following and steering rollouts, `rollback`, traffic.
//! - [`output`] — tables for people, JSON for scripts.

pub mod artifacts;
pub mod ca;
pub mod canary;
pub mod commands;
pub mod credentials;
pub mod leases;
pub mod output;
pub mod rollouts;
pub mod secrets;
pub mod selfhost;
pub mod tokens;
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
