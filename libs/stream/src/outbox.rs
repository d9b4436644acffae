//! The transactional outbox. A service calls [`enqueue`] inside the database
//! transaction that changes its state; once that commits, the [`Relay`]
//! publishes the rows in order and deletes them. A crash before the publish
//! delays the event; a crash after the publish but before the delete publishes
//! it again, which consumers absorb by deduplicating on the event id.

use crate::{
    contract::{SharedStream, StreamError},
    event,
    schema::Outbox,
};
use paved_proto::events::v1::Envelope;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr,
    sea_query::{Alias, ColumnDef, Expr, ExprTrait, Order, Query, Table},
};
use std::{sync::Arc, time::Duration};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const TABLE: &str = "outbox";
const BATCH: u64 = 256;

/// The outbox table, included in the migrator of every service that publishes.
pub const MIGRATION: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261123_000000_create_outbox",
    table: || {
        Table::create()
            .table(Alias::new(TABLE))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("id")).big_integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(Alias::new("stream")).string().not_null())
            .col(ColumnDef::new(Alias::new("payload")).blob().not_null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

/// Writes `envelope` for `stream` through `conn`, which should be the
/// transaction of the state change the event describes.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, stream: &str, envelope: &Envelope) -> Result<(), DbErr> {
    enqueue_all(conn, stream, std::slice::from_ref(envelope)).await
}

/// [`enqueue`] for many events at once, in their order: one statement,
/// where a batch of state changes would otherwise pay one per event.
pub async fn enqueue_all<C: ConnectionTrait>(conn: &C, stream: &str, envelopes: &[Envelope]) -> Result<(), DbErr> {
    if envelopes.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert().into_table(Outbox::Table).columns([Outbox::Stream, Outbox::Payload]).to_owned();
    for envelope in envelopes {
        insert.values_panic([stream.into(), event::encode(envelope).into()]);
    }
    conn.execute(&insert).await?;
    Ok(())
}

/// Publishes committed outbox rows to the event stream.
#[derive(Clone)]
pub struct Relay {
    db: DatabaseConnection,
    stream: SharedStream,
    wake: Arc<Notify>,
}

impl Relay {
    pub fn new(db: DatabaseConnection, stream: SharedStream) -> Self {
        Self { db, stream, wake: Arc::new(Notify::new()) }
    }

    /// Call after committing a transaction that enqueued events, so they go
    /// out now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Publishes up to one batch, oldest first; returns how many rows went out.
    pub async fn relay_once(&self) -> Result<usize, StreamError> {
        let select = Query::select()
            .columns([Outbox::Id, Outbox::Stream, Outbox::Payload])
            .from(Outbox::Table)
            .order_by(Outbox::Id, Order::Asc)
            .limit(BATCH)
            .to_owned();
        let rows = self.db.query_all(&select).await?;
        let mut published = Vec::with_capacity(rows.len());
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            published.push(row.try_get::<i64>("", "id")?);
            entries.push((row.try_get::<String>("", "stream")?, row.try_get::<Vec<u8>>("", "payload")?));
        }
        if entries.is_empty() {
            return Ok(0);
        }
        // In order, in one batch: a failure part way publishes the stored
        // part again next time, which consumers deduplicate.
        self.stream.publish_batch(&entries).await?;
        // Exactly the rows published: on PostgreSQL ids are taken at insert,
        // not at commit, so a smaller id may commit after a larger one was
        // read, and a range delete would drop it unpublished.
        let delete = Query::delete().from_table(Outbox::Table).and_where(Expr::col(Outbox::Id).is_in(published)).to_owned();
        self.db.execute(&delete).await?;
        Ok(rows.len())
    }

    /// Relays until `shutdown`, retrying with backoff when the database or the
    /// stream is unreachable and reporting that through `healthy`.
    pub async fn run(self, healthy: crate::consumer::StatusFn, shutdown: CancellationToken) {
        let mut backoff = crate::consumer::Backoff::default();
        loop {
            match self.relay_once().await {
                Ok(n) => {
                    healthy(true);
                    backoff.reset();
                    if n as u64 == BATCH {
                        continue;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                Err(e) => {
                    healthy(false);
                    tracing::warn!(error = %e, "outbox relay failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = backoff.wait() => {}
                    }
                }
            }
        }
    }
}
