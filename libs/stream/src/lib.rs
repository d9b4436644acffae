//! The event stream: how Paved's services publish facts and consume each
//! other's, with at-least-once delivery.
//!
//! # Layout
//! - [`EventStream`] is the contract: publish, consumer groups, read, explicit
//!   ack, and claiming the pending entries of a consumer that died. Two backends
//!   implement it: [`redis::RedisStream`] (Redis Streams, production) and
//!   [`embedded::EmbeddedStream`] (a SQLite file, for `paved up`). The contract
//!   tests (`integration-tests/tests/it/stream_contract.rs`) run against both.
//! - [`outbox`] is the transactional outbox: a service writes its events in the
//!   same database transaction as its state change, and a [`outbox::Relay`]
//!   publishes them afterwards, so a crash can delay an event but never lose it.
//! - [`consumer`] runs a consumer group loop and hands decoded envelopes to a
//!   handler; handlers must be idempotent by event id because delivery is
//!   at-least-once.
//! - [`event`] builds envelopes.
//! - `metrics` — the consumers' work as `paved_stream_*` metrics.
//! - `schema` names the outbox's and the inbox's tables and columns for
//!   queries (their migrations keep string names).
//! - `contract` holds [`EventStream`] and its types ([`Delivery`],
//!   [`StreamError`], [`SharedStream`]), [`stream_name`] and [`PRODUCERS`],
//!   re-exported here. `lib.rs` keeps only [`open`], which picks a backend:
//!   every module imports `contract` and none imports the crate root, so
//!   the backends and [`open`] do not depend on each other both ways.

pub mod consumer;
mod contract;
pub mod embedded;
pub mod event;
pub mod inbox;
mod metrics;
pub mod outbox;
pub mod redis;
mod schema;

use std::sync::Arc;

pub use contract::{DEFAULT_MAX_LEN, Delivery, EventStream, PRODUCERS, SharedStream, StreamError, stream_name};
pub use paved_proto::events::v1::Envelope;

/// Opens the backend a URL names: `redis://…` for Redis Streams, or
/// `sqlite://…` for the embedded backend (a SQLite file of its own).
pub async fn open(url: &str, max_len: u64) -> Result<SharedStream, StreamError> {
    if url.starts_with("redis://") || url.starts_with("rediss://") {
        Ok(Arc::new(redis::RedisStream::connect(url, max_len).await?))
    } else if url.starts_with("sqlite:") {
        let mut options = sea_orm::ConnectOptions::new(url);
        // One writer at a time anyway (see `embedded`); a small pool suffices.
        options.max_connections(4).sqlx_logging(false);
        paved_store::sqlite_wal(&mut options);
        let db = sea_orm::Database::connect(options).await?;
        Ok(Arc::new(embedded::EmbeddedStream::open(db, max_len).await?))
    } else {
        Err(StreamError::Malformed { id: url.to_string(), reason: "stream URL must start with redis:// or sqlite:".into() })
    }
}
