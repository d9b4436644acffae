//! The embedded backend: a SQLite file (through sea-orm), durable across
//! restarts, for `paved up`. One process owns the file; writers are serialised
//! by a mutex and readers are woken by a [`Notify`] instead of polling.

use crate::{Delivery, EventStream, StreamError};
use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};
use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};
use tokio::sync::{Mutex, Notify};

const SCHEMA: &[&str] = &[
    // AUTOINCREMENT: ids are never reused, even after the newest entry is trimmed.
    "CREATE TABLE IF NOT EXISTS stream_entries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        stream TEXT NOT NULL,
        payload BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS stream_entries_by_stream ON stream_entries (stream, id)",
    "CREATE TABLE IF NOT EXISTS stream_groups (
        stream TEXT NOT NULL,
        grp TEXT NOT NULL,
        last_id INTEGER NOT NULL,
        PRIMARY KEY (stream, grp))",
    "CREATE TABLE IF NOT EXISTS stream_pending (
        stream TEXT NOT NULL,
        grp TEXT NOT NULL,
        id INTEGER NOT NULL,
        consumer TEXT NOT NULL,
        delivered_ms INTEGER NOT NULL,
        PRIMARY KEY (stream, grp, id))",
];

/// Trim a stream every this many publishes.
const TRIM_EVERY: u64 = 256;

pub struct EmbeddedStream {
    db: DatabaseConnection,
    write: Mutex<()>,
    published: Notify,
    max_len: u64,
    publishes: AtomicU64,
}

impl EmbeddedStream {
    /// Opens (creating if needed) the stream tables in `db`, a SQLite database.
    pub async fn open(db: DatabaseConnection, max_len: u64) -> Result<Self, StreamError> {
        for sql in SCHEMA {
            db.execute_unprepared(sql).await?;
        }
        Ok(Self { db, write: Mutex::new(()), published: Notify::new(), max_len, publishes: AtomicU64::new(0) })
    }

    async fn trim(&self, stream: &str) -> Result<(), StreamError> {
        self.db
            .execute_raw(stmt(
                "DELETE FROM stream_entries WHERE stream = ?1 AND id < (
                    SELECT id FROM stream_entries WHERE stream = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                [stream.into(), (self.max_len as i64 - 1).max(0).into()],
            ))
            .await?;
        Ok(())
    }

    async fn deliver_new(&self, stream: &str, group: &str, consumer: &str, count: usize) -> Result<Vec<Delivery>, StreamError> {
        let _guard = self.write.lock().await;
        let txn = self.db.begin().await?;
        let last: i64 = txn
            .query_one_raw(stmt("SELECT last_id FROM stream_groups WHERE stream = ?1 AND grp = ?2", [stream.into(), group.into()]))
            .await?
            .map(|row| row.try_get::<i64>("", "last_id"))
            .transpose()?
            .unwrap_or(0);
        let rows = txn
            .query_all_raw(stmt(
                "SELECT id, payload FROM stream_entries WHERE stream = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                [stream.into(), last.into(), (count as i64).into()],
            ))
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        let now = now_ms();
        for row in rows {
            let id: i64 = row.try_get("", "id")?;
            let payload: Vec<u8> = row.try_get("", "payload")?;
            txn.execute_raw(stmt(
                "INSERT OR REPLACE INTO stream_pending (stream, grp, id, consumer, delivered_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                [stream.into(), group.into(), id.into(), consumer.into(), now.into()],
            ))
            .await?;
            out.push(Delivery { id: id.to_string(), payload });
        }
        if let Some(last) = out.last() {
            txn.execute_raw(stmt(
                "UPDATE stream_groups SET last_id = ?3 WHERE stream = ?1 AND grp = ?2",
                [stream.into(), group.into(), parse_id(&last.id)?.into()],
            ))
            .await?;
        }
        txn.commit().await?;
        Ok(out)
    }
}

#[async_trait]
impl EventStream for EmbeddedStream {
    async fn publish(&self, stream: &str, payload: &[u8]) -> Result<String, StreamError> {
        let id = {
            let _guard = self.write.lock().await;
            let result = self
                .db
                .execute_raw(stmt("INSERT INTO stream_entries (stream, payload) VALUES (?1, ?2)", [stream.into(), payload.to_vec().into()]))
                .await?;
            // Trimming is housekeeping: the entry is stored, so a failed trim
            // must not turn this publish into an error (the caller would
            // publish it again).
            if self.publishes.fetch_add(1, Ordering::Relaxed) % TRIM_EVERY == TRIM_EVERY - 1
                && let Err(e) = self.trim(stream).await
            {
                tracing::warn!(stream, error = %e, "trimming the embedded stream failed");
            }
            result.last_insert_id()
        };
        self.published.notify_waiters();
        Ok(id.to_string())
    }

    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), StreamError> {
        let _guard = self.write.lock().await;
        self.db
            .execute_raw(stmt(
                "INSERT OR IGNORE INTO stream_groups (stream, grp, last_id) VALUES (?1, ?2, 0)",
                [stream.into(), group.into()],
            ))
            .await?;
        Ok(())
    }

    async fn read(&self, stream: &str, group: &str, consumer: &str, count: usize, block: Duration) -> Result<Vec<Delivery>, StreamError> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            // Register for the wake-up before looking, so a publish between the
            // look and the wait is not missed.
            let woken = self.published.notified();
            let out = self.deliver_new(stream, group, consumer, count).await?;
            if !out.is_empty() {
                return Ok(out);
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn ack(&self, stream: &str, group: &str, ids: &[String]) -> Result<(), StreamError> {
        let _guard = self.write.lock().await;
        let txn = self.db.begin().await?;
        for id in ids {
            txn.execute_raw(stmt(
                "DELETE FROM stream_pending WHERE stream = ?1 AND grp = ?2 AND id = ?3",
                [stream.into(), group.into(), parse_id(id)?.into()],
            ))
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    async fn claim_stale(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, StreamError> {
        let _guard = self.write.lock().await;
        let txn = self.db.begin().await?;
        let now = now_ms();
        let rows = txn
            .query_all_raw(stmt(
                "SELECT p.id AS id, e.payload AS payload FROM stream_pending p
                 LEFT JOIN stream_entries e ON e.id = p.id
                 WHERE p.stream = ?1 AND p.grp = ?2 AND p.delivered_ms <= ?3 ORDER BY p.id LIMIT ?4",
                [stream.into(), group.into(), (now - min_idle.as_millis() as i64).into(), (count as i64).into()],
            ))
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("", "id")?;
            let payload: Option<Vec<u8>> = row.try_get("", "payload")?;
            match payload {
                Some(payload) => {
                    txn.execute_raw(stmt(
                        "UPDATE stream_pending SET consumer = ?4, delivered_ms = ?5 WHERE stream = ?1 AND grp = ?2 AND id = ?3",
                        [stream.into(), group.into(), id.into(), consumer.into(), now.into()],
                    ))
                    .await?;
                    out.push(Delivery { id: id.to_string(), payload });
                }
                // Trimmed while pending: like XAUTOCLAIM, drop it from the pending list.
                None => {
                    txn.execute_raw(stmt(
                        "DELETE FROM stream_pending WHERE stream = ?1 AND grp = ?2 AND id = ?3",
                        [stream.into(), group.into(), id.into()],
                    ))
                    .await?;
                }
            }
        }
        txn.commit().await?;
        Ok(out)
    }

    async fn pending(&self, stream: &str, group: &str) -> Result<Vec<String>, StreamError> {
        let rows = self
            .db
            .query_all_raw(stmt("SELECT id FROM stream_pending WHERE stream = ?1 AND grp = ?2 ORDER BY id", [stream.into(), group.into()]))
            .await?;
        rows.into_iter().map(|row| Ok(row.try_get::<i64>("", "id")?.to_string())).collect()
    }
}

fn stmt<const N: usize>(sql: &str, values: [Value; N]) -> Statement {
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

fn parse_id(id: &str) -> Result<i64, StreamError> {
    id.parse().map_err(|_| StreamError::Malformed { id: id.to_string(), reason: "not an embedded stream id".into() })
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
