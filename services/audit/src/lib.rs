//! The audit service: keeps every event of the platform, exactly once, in
//! order of arrival, and serves them back.
//!
//! # Layout
//! - [`migration`] — the `audit_entries` table (append-only for now; the
//!   Merkle log of a later issue builds on it).
//! - [`Recorder`] — the consumer-group handler that appends events,
//!   deduplicating by event id.
//! - [`api`] — `paved.audit.v1.AuditService`.

pub mod api;
pub mod migration;

use async_trait::async_trait;
use paved_grpc::{Component, Health};
use paved_stream::{Envelope, SharedStream, consumer::Handler};
use sea_orm::{
    ConnectionTrait, DatabaseConnection,
    sea_query::{Alias, OnConflict, Query},
};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const SERVICE: &str = "audit";
pub const GRPC_NAME: &str = "paved.audit.v1.AuditService";

pub const DEFAULTS: &str = "
listen: 127.0.0.1:7405
database_url: postgres://postgres@127.0.0.1:5432/paved_audit
stream_url: redis://127.0.0.1:6379
";

pub type Config = paved_service::BasicConfig;

/// Runs the audit service on its own (production mode).
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    paved_service::run_basic::<migration::Migrator>(config, listener, shutdown, component).await
}

/// The audit service's routes and consumer, on a migrated database.
pub fn component(db: DatabaseConnection, stream: SharedStream, health: &Health, shutdown: CancellationToken) -> Component {
    let api = api::server(db.clone());
    paved_service::consumer_component(
        GRPC_NAME,
        SERVICE,
        Box::new(move |r| r.add_service(api)),
        Arc::new(Recorder { db }),
        stream,
        health,
        shutdown,
    )
}

/// Appends each event once: a redelivered event (same id) is ignored.
pub struct Recorder {
    pub db: DatabaseConnection,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, stream: &str, event: &Envelope) -> anyhow::Result<()> {
        let event_time = event.time.as_ref().map(paved_proto::millis_from_timestamp);
        let insert = Query::insert()
            .into_table(Alias::new("audit_entries"))
            .columns(
                ["event_id", "stream", "source", "event_type", "subject", "event_time_ms", "receive_time_ms", "envelope"].map(Alias::new),
            )
            .values_panic([
                event.id.clone().into(),
                stream.into(),
                event.source.clone().into(),
                event.r#type.clone().into(),
                event.subject.clone().into(),
                event_time.into(),
                chrono::Utc::now().timestamp_millis().into(),
                prost::Message::encode_to_vec(event).into(),
            ])
            .on_conflict(OnConflict::column(Alias::new("event_id")).do_nothing().to_owned())
            .to_owned();
        self.db.execute(&insert).await?;
        Ok(())
    }
}
