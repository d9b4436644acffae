//! A consumer-group loop: claims entries a dead consumer left pending, reads
//! new ones, hands each decoded envelope to a [`Handler`] and acks it once the
//! handler succeeded. A handler error leaves the entry pending, so it comes
//! back (to this or another consumer) after `claim_idle`.

use crate::{Delivery, Envelope, SharedStream, StreamError, event};
use async_trait::async_trait;
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

/// Reports whether a background loop currently reaches its dependencies.
pub type StatusFn = Arc<dyn Fn(bool) + Send + Sync>;

#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Must be idempotent by `event.id`: delivery is at-least-once.
    async fn handle(&self, stream: &str, event: &Envelope) -> anyhow::Result<()>;
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
    /// A group named after the consuming service, reading every producer's stream.
    pub fn for_service(service: &str, consumer: String) -> Self {
        Self {
            group: service.to_string(),
            consumer,
            streams: crate::PRODUCERS.iter().map(|p| crate::stream_name(p)).collect(),
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
    while !shutdown.is_cancelled() {
        let step = async {
            if !grouped {
                stream.ensure_group(&name, &config.group).await?;
                grouped = true;
            }
            let stale = stream.claim_stale(&name, &config.group, &config.consumer, config.claim_idle, config.batch).await?;
            process(&stream, &name, &config.group, stale, handler.as_ref()).await?;
            let fresh = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = stream.read(&name, &config.group, &config.consumer, config.batch, config.block) => r?,
            };
            process(&stream, &name, &config.group, fresh, handler.as_ref()).await
        };
        match step.await {
            Ok(()) => {
                healthy(true);
                backoff.reset();
            }
            Err(e) => {
                healthy(false);
                // The server may have lost the group with its data (a Redis
                // restarted without persistence): create it again next time.
                grouped = false;
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
    #[error("handler failed for event {id}: {source:#}")]
    Handler { id: String, source: anyhow::Error },
}

async fn process(
    stream: &SharedStream,
    name: &str,
    group: &str,
    deliveries: Vec<Delivery>,
    handler: &dyn Handler,
) -> Result<(), StepError> {
    for delivery in deliveries {
        match event::decode(&delivery.payload) {
            Ok(envelope) if !envelope.id.is_empty() => {
                handler.handle(name, &envelope).await.map_err(|source| StepError::Handler { id: envelope.id.clone(), source })?;
            }
            // Not an envelope: keep it for inspection on a dead-letter stream
            // rather than retrying it forever or dropping it.
            bad => {
                let reason = bad.err().map_or_else(|| "envelope without id".to_string(), |e| e.to_string());
                tracing::error!(stream = %name, entry = %delivery.id, %reason, "malformed event moved to dead-letter stream");
                stream.publish(&format!("{name}.dead"), &delivery.payload).await?;
            }
        }
        stream.ack(name, group, std::slice::from_ref(&delivery.id)).await?;
    }
    Ok(())
}

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
