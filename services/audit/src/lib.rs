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
use paved_stream::{Envelope, consumer::Handler};
use sea_orm::{
    ConnectionTrait, DatabaseConnection,
    sea_query::{Alias, InsertStatement, OnConflict, Query},
};
use std::sync::Arc;

/// The service, as the shell in `paved-service` runs it.
pub struct Audit;

impl paved_service::ConsumerService for Audit {
    const NAME: &'static str = "audit";
    const GRPC_NAME: &'static str = "paved.audit.v1.AuditService";
    const PORT: u16 = 7405;
    type Migrator = migration::Migrator;
    type Options = paved_service::NoOptions;

    fn parts(
        db: DatabaseConnection,
        _relay: paved_stream::outbox::Relay,
        _options: paved_service::NoOptions,
        _background: &mut paved_service::Background,
    ) -> anyhow::Result<(paved_service::Mount, Arc<dyn Handler>)> {
        let api = api::server(db.clone());
        Ok((Box::new(move |r| r.add_service(api)), Arc::new(Recorder { db })))
    }
}

/// Appends each event once: a redelivered event (same id) is ignored.
pub struct Recorder {
    pub db: DatabaseConnection,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, stream: &str, event: &Envelope) -> anyhow::Result<()> {
        self.db.execute(&append(stream, std::slice::from_ref(event))).await?;
        Ok(())
    }

    /// A batch in one statement (in order): one commit, not one per event.
    async fn handle_all(&self, stream: &str, events: &[Envelope]) -> anyhow::Result<bool> {
        // An INSERT without rows is no statement at all.
        if !events.is_empty() {
            self.db.execute(&append(stream, events)).await?;
        }
        Ok(true)
    }
}

/// One INSERT appending `events`, a redelivered id ignored. A consumer's
/// batch (at most 128 × 8 parameters) is well under the databases' limits
/// on bound parameters.
fn append(stream: &str, events: &[Envelope]) -> InsertStatement {
    let mut insert = Query::insert()
        .into_table(Alias::new("audit_entries"))
        .columns(["event_id", "stream", "source", "event_type", "subject", "event_time_ms", "receive_time_ms", "envelope"].map(Alias::new))
        .on_conflict(OnConflict::column(Alias::new("event_id")).do_nothing().to_owned())
        .to_owned();
    let now = chrono::Utc::now().timestamp_millis();
    for event in events {
        insert.values_panic([
            event.id.clone().into(),
            stream.into(),
            event.source.clone().into(),
            event.r#type.clone().into(),
            event.subject.clone().into(),
            event.time.as_ref().map(paved_proto::millis_from_timestamp).into(),
            now.into(),
            prost::Message::encode_to_vec(event).into(),
        ]);
    }
    insert
}
