//! A consumer-group loop: claims entries a dead consumer left pending, reads
//! new ones, hands each decoded envelope to a [`Handler`] and acks, in one
//! call per batch, those the handler succeeded with. A handler error leaves
//! the entry pending, so it comes back (to this or another consumer) after
//! `claim_idle`. A handler that can take a whole batch at once
//! ([`Handler::handle_all`]) is given it first; if that fails, the batch is
//! handled one by one, so a failing entry is found, retried and
//! dead-lettered alone. Failures because the handler's database is out of
//! reach ([`unreachable`]) are retried until it is back, never dead-lettered.

use crate::{
    contract::{Delivery, SharedStream, StreamError},
    event, metrics,
};
use async_trait::async_trait;
use paved_proto::events::v1::Envelope;
use std::{collections::VecDeque, sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

/// Reports whether a background loop currently reaches its dependencies.
pub type StatusFn = Arc<dyn Fn(bool) + Send + Sync>;

#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Must be idempotent by `event.id`: delivery is at-least-once.
    async fn handle(&self, stream: &str, event: &Envelope) -> anyhow::Result<()>;

    /// Handles `events` at once, all or none (one transaction, say: a
    /// commit per event bounds a consumer at the database's commit rate).
    /// `Ok(false)`, the default: not supported, each goes to [`Handler::handle`].
    async fn handle_all(&self, _stream: &str, _events: &[Envelope]) -> anyhow::Result<bool> {
        Ok(false)
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub group: String,
    pub consumer: String,
    pub streams: Vec<String>,
    pub batch: usize,
    pub block: Duration,
    /// Entries pending this long are presumed abandoned and claimed.
    pub claim_idle: Duration,
}

impl ConsumerConfig {
    /// A group named after the consuming service, reading the streams of
    /// `producers` (see [`crate::contract::PRODUCERS`]).
    pub fn for_service(service: &str, consumer: String, producers: &[&str]) -> Self {
        Self {
            group: service.to_string(),
            consumer,
            streams: producers.iter().map(|p| crate::contract::stream_name(p)).collect(),
            batch: 128,
            block: Duration::from_secs(1),
            claim_idle: Duration::from_secs(30),
        }
    }
}

/// Runs one task per stream until `shutdown`.
pub async fn run(stream: SharedStream, config: ConsumerConfig, handler: Arc<dyn Handler>, healthy: StatusFn, shutdown: CancellationToken) {
    let mut tasks = tokio::task::JoinSet::new();
    for name in &config.streams {
        let (stream, config, handler, healthy, shutdown) =
            (stream.clone(), config.clone(), handler.clone(), healthy.clone(), shutdown.clone());
        let name = name.clone();
        tasks.spawn(async move { consume_one(stream, name, config, handler, healthy, shutdown).await });
    }
    while tasks.join_next().await.is_some() {}
}

/// Handler failures on one entry before it is moved to the dead-letter stream.
const MAX_ATTEMPTS: u32 = 5;

async fn consume_one(
    stream: SharedStream,
    name: String,
    config: ConsumerConfig,
    handler: Arc<dyn Handler>,
    healthy: StatusFn,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::default();
    let mut grouped = false;
    // Entries this consumer holds but has not handled yet (after a handler
    // failure): retried first, in order, before anything newer is read.
    let mut held: VecDeque<Delivery> = VecDeque::new();
    let mut attempts = 0u32;
    let consumer = Consumer { stream: &stream, name: &name, group: &config.group, handler: handler.as_ref() };
    metrics::started(&name, &config.group);
    while !shutdown.is_cancelled() {
        let step = async {
            if !grouped {
                stream.ensure_group(&name, &config.group).await?;
                grouped = true;
            }
            if held.is_empty() {
                held.extend(stream.claim_stale(&name, &config.group, &config.consumer, config.claim_idle, config.batch).await?);
            }
            if held.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    r = stream.read(&name, &config.group, &config.consumer, config.batch, config.block) => {
                        let read = r?;
                        if read.is_empty() {
                            metrics::caught_up(&name, &config.group);
                        }
                        held.extend(read);
                    }
                }
            }
            consumer.process(&mut held, &mut attempts).await
        };
        match step.await {
            Ok(()) => {
                healthy(true);
                backoff.reset();
            }
            Err(e) => {
                // A failing handler is the handler's problem (its database,
                // say), reported the same way as a failing stream.
                healthy(false);
                if matches!(e, StepError::Stream(_)) {
                    // The server may have lost the group with its data (a Redis
                    // restarted without persistence): create it again next time.
                    grouped = false;
                }
                tracing::warn!(stream = %name, group = %config.group, error = %e, "consumer step failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = backoff.wait() => {}
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("handler failed for event {id} (attempt {attempt}): {source:#}")]
    Handler { id: String, attempt: u32, source: anyhow::Error },
}

struct Consumer<'a> {
    stream: &'a SharedStream,
    name: &'a str,
    group: &'a str,
    handler: &'a dyn Handler,
}

impl Consumer<'_> {
    /// Handles `held` front to back and acks what was handled, in one call;
    /// stops at the first failure, leaving that entry first in `held`.
    async fn process(&self, held: &mut VecDeque<Delivery>, attempts: &mut u32) -> Result<(), StepError> {
        let mut handled = Vec::new();
        let result = self.handle_held(held, attempts, &mut handled).await;
        // Acked even when a later entry failed: the handled ones are done.
        self.stream.ack(self.name, self.group, &handled).await?;
        result
    }

    async fn handle_held(&self, held: &mut VecDeque<Delivery>, attempts: &mut u32, handled: &mut Vec<String>) -> Result<(), StepError> {
        if *attempts == 0 && held.len() > 1 && self.handle_all(held).await {
            handled.extend(held.drain(..).map(|d| d.id));
            return Ok(());
        }
        while let Some(delivery) = held.front() {
            match event::decode(&delivery.payload) {
                Ok(envelope) if !envelope.id.is_empty() => match self.handler.handle(self.name, &envelope).await {
                    Ok(()) => {
                        *attempts = 0;
                        metrics::handled(self.name, self.group, [&envelope]);
                    }
                    // Retried until it comes back, never dead-lettered: an
                    // outage is no fault of the event's.
                    Err(source) if unreachable(&source) => {
                        metrics::failed(self.name, self.group);
                        return Err(StepError::Handler { id: envelope.id.clone(), attempt: *attempts, source });
                    }
                    Err(source) => {
                        metrics::failed(self.name, self.group);
                        *attempts += 1;
                        if *attempts < MAX_ATTEMPTS {
                            return Err(StepError::Handler { id: envelope.id.clone(), attempt: *attempts, source });
                        }
                        *attempts = 0;
                        self.dead_letter(delivery, &format!("handler failed {MAX_ATTEMPTS} times: {source:#}")).await?;
                    }
                },
                // Not an envelope: keep it for inspection rather than retrying
                // it forever or dropping it.
                bad => {
                    let reason = bad.err().map_or_else(|| "envelope without id".to_string(), |e| e.to_string());
                    self.dead_letter(delivery, &reason).await?;
                }
            }
            if let Some(done) = held.pop_front() {
                handled.push(done.id);
            }
        }
        Ok(())
    }

    /// Whether the handler took all of `held` (two or more: one goes to
    /// `handle` directly, never tried twice) at once. Not when one is not an
    /// envelope (that one is dead-lettered on the way one by one).
    async fn handle_all(&self, held: &VecDeque<Delivery>) -> bool {
        let events: Option<Vec<Envelope>> = held.iter().map(|d| event::decode(&d.payload).ok().filter(|e| !e.id.is_empty())).collect();
        let Some(events) = events else {
            return false;
        };
        match self.handler.handle_all(self.name, &events).await {
            Ok(all) => {
                if all {
                    metrics::handled(self.name, self.group, &events);
                }
                all
            }
            Err(e) => {
                tracing::warn!(stream = %self.name, group = %self.group, events = events.len(), error = %e, "a batch failed; handling it one by one");
                false
            }
        }
    }

    /// Copies an entry to `<stream>.dead`.
    async fn dead_letter(&self, delivery: &Delivery, reason: &str) -> Result<(), StreamError> {
        tracing::error!(stream = %self.name, group = %self.group, entry = %delivery.id, %reason, "event moved to the dead-letter stream");
        metrics::dead_lettered(self.name, self.group);
        self.stream.publish(&format!("{}.dead", self.name), &delivery.payload).await?;
        Ok(())
    }
}

/// Whether a handler failed because its database is out of reach
/// (connecting, a connection lost, the pool exhausted) rather than because
/// of the event.
pub fn unreachable(error: &anyhow::Error) -> bool {
    use sea_orm::{DbErr, RuntimeErr, sqlx};
    error.chain().any(|cause| {
        cause.is::<Outage>()
            || match cause.downcast_ref::<DbErr>() {
                Some(DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) => true,
                Some(DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) => {
                    matches!(**e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed)
                }
                _ => false,
            }
    })
}

/// A handler's failure that is its own, never the event's (the audit log's
/// stored tree not being what appending needs): retried until it is
/// mended, like an outage, rather than dead-lettering events that are fine.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Outage(pub String);

/// Exponential backoff with jitter, 100 ms to 5 s.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Duration::from_millis(100) }
    }
}

impl Backoff {
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    pub async fn wait(&mut self) {
        let jitter = rand::random_range(0.5..1.0);
        tokio::time::sleep(self.next.mul_f64(jitter)).await;
        self.next = (self.next * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr, sqlx};
    use std::sync::Arc;

    #[test]
    fn an_unreachable_database_is_told_from_a_bad_event() {
        let io = || sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let unreachable = [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::Conn(RuntimeErr::Internal("refused".into())),
            DbErr::Exec(RuntimeErr::SqlxError(Arc::new(io()))),
            DbErr::Query(RuntimeErr::SqlxError(Arc::new(sqlx::Error::PoolTimedOut))),
        ];
        for e in unreachable {
            let text = e.to_string();
            assert!(super::unreachable(&anyhow::Error::new(e).context("recording")), "{text}");
        }
        let bad = [
            DbErr::Exec(RuntimeErr::SqlxError(Arc::new(sqlx::Error::RowNotFound))),
            DbErr::Custom("a constraint".into()),
            DbErr::Exec(RuntimeErr::Internal("syntax error".into())),
        ];
        for e in bad {
            let text = e.to_string();
            assert!(!super::unreachable(&anyhow::Error::new(e)), "{text}");
        }
        assert!(!super::unreachable(&anyhow::anyhow!("not a database error")));
    }
}
