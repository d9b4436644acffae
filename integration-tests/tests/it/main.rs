//! Paved's integration tests: one binary, one module per area.

mod alerts;
mod artifacts;
mod audit_embedded;
mod audit_faults;
mod audit_log;
mod audit_query;
mod audit_witness;
mod auth;
mod canary;
mod cli;
mod compose;
mod cost;
mod error_edge;
mod judging;
mod leases;
mod mtls;
mod outbox;
mod platform;
mod power;
mod prometheus;
mod rollouts;
mod scopes;
mod sdk;
mod secrets;
mod services;
mod stream_contract;
