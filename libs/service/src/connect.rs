//! Connecting to what a service depends on — its database and the event
//! stream — with retries and backoff. Its own module, below both `process`
//! and `shape`, because `shape` assembles a service from these connections
//! while `process` (the binary's `main`) runs what `shape` assembles.

use crate::config::Common;
use paved_stream::{SharedStream, consumer::Backoff};
use sea_orm_migration::{MigratorTrait, sea_orm::DatabaseConnection};
use std::future::Future;
use tokio_util::sync::CancellationToken;

/// Retries `attempt` with backoff until it succeeds or `shutdown`: a database
/// or Redis that is still starting must delay a service, not crash it.
pub async fn retry<T, E: std::fmt::Display, Fut: Future<Output = Result<T, E>>>(
    what: &str,
    shutdown: &CancellationToken,
    mut attempt: impl FnMut() -> Fut,
) -> anyhow::Result<T> {
    let mut backoff = Backoff::default();
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                tracing::warn!(error = %e, "{what} failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => anyhow::bail!("{what}: interrupted by shutdown (last error: {e})"),
                    _ = backoff.wait() => {}
                }
            }
        }
    }
}

/// Connects to the service's database (retrying) and runs its migrations.
pub async fn database<M: MigratorTrait>(url: &str, shutdown: &CancellationToken) -> anyhow::Result<DatabaseConnection> {
    retry("connect to database", shutdown, || paved_store::connect_and_migrate::<M>(url)).await
}

/// Opens the event stream (retrying).
pub async fn stream(common: &Common, shutdown: &CancellationToken) -> anyhow::Result<SharedStream> {
    retry("connect to event stream", shutdown, || paved_stream::open(&common.stream_url, common.stream_max_len)).await
}
