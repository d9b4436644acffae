//! The contract between services and stream backends: [`EventStream`] and
//! the types it speaks ([`Delivery`], [`StreamError`], [`SharedStream`]),
//! with the stream naming every producer and consumer agrees on. Its own
//! module so that the backends (`redis`, `embedded`) implement it without
//! importing the crate root, whose [`open`](crate::open) picks a backend.

use async_trait::async_trait;
use std::{sync::Arc, time::Duration};

/// One stream per producing service: `paved.events.<service>`.
pub fn stream_name(service: &str) -> String {
    format!("paved.events.{service}")
}

/// The services that publish events, in the order their streams are listed.
pub const PRODUCERS: &[&str] = &paved_proto::SERVICES;

/// An entry handed to a consumer. It stays pending for the group until acked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Backend-specific id, ordered within a stream.
    pub id: String,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("embedded stream database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("malformed stream entry or URL {id}: {reason}")]
    Malformed { id: String, reason: String },
    #[error("no consumer group {group} on stream {stream}")]
    NoGroup { stream: String, group: String },
}

/// The contract both backends keep:
/// - entries of a stream are delivered to a group in publish order;
/// - every entry is delivered to one consumer of each group at least once;
/// - an entry stays pending until [`EventStream::ack`]; pending entries idle
///   longer than `min_idle` can be taken over with [`EventStream::claim_stale`];
/// - Redis keeps a group's pending entries across restarts of its consumers;
///   the embedded backend holds them in the process that owns the file, and
///   after that process restarts delivers them again with [`EventStream::read`];
/// - a stream keeps about `max_len` entries (older ones are trimmed).
#[async_trait]
pub trait EventStream: Send + Sync + 'static {
    /// Appends an entry and returns its id.
    async fn publish(&self, stream: &str, payload: &[u8]) -> Result<String, StreamError>;
    /// Appends entries in order, possibly to several streams, in fewer round
    /// trips than one publish each. All or some may be stored when it fails.
    async fn publish_batch(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StreamError> {
        for (stream, payload) in entries {
            self.publish(stream, payload).await?;
        }
        Ok(())
    }
    /// Creates the group if missing; a new group starts at the beginning of the stream.
    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), StreamError>;
    /// Delivers up to `count` entries never delivered to the group (on the
    /// embedded backend: not since the last restart, unless acked), waiting
    /// up to `block` for the first one.
    async fn read(&self, stream: &str, group: &str, consumer: &str, count: usize, block: Duration) -> Result<Vec<Delivery>, StreamError>;
    async fn ack(&self, stream: &str, group: &str, ids: &[String]) -> Result<(), StreamError>;
    /// Transfers to `consumer` up to `count` entries pending in the group for
    /// at least `min_idle`, as a crashed consumer leaves them, and returns them.
    async fn claim_stale(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, StreamError>;
    /// Ids of the group's entries delivered but not yet acked (on the
    /// embedded backend: since the last restart).
    async fn pending(&self, stream: &str, group: &str) -> Result<Vec<String>, StreamError>;
}

pub type SharedStream = Arc<dyn EventStream>;

/// Default retention: entries kept per stream.
pub const DEFAULT_MAX_LEN: u64 = 100_000;
