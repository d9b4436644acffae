//! The embedded backend: a SQLite file (through sea-orm), durable across
//! restarts, for `paved up`. One process owns the file; writers are serialised
//! by a mutex and readers are woken by a [`Notify`] per stream instead of
//! polling. A batch (publish, deliver, ack) is one transaction with one
//! multi-row statement per 200 rows, not a statement per row: every
//! statement is a round trip to SQLite's worker thread.

use crate::{Delivery, EventStream, StreamError};
use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};
use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
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

/// Rows per multi-row statement, well under SQLite's limit of bound parameters.
const CHUNK: usize = 200;

pub struct EmbeddedStream {
    db: DatabaseConnection,
    write: Mutex<()>,
    /// Per stream: a publish wakes only the readers of its stream.
    published: std::sync::Mutex<HashMap<String, Arc<Notify>>>,
    max_len: u64,
    publishes: AtomicU64,
}

impl EmbeddedStream {
    /// Opens (creating if needed) the stream tables in `db`, a SQLite database.
    pub async fn open(db: DatabaseConnection, max_len: u64) -> Result<Self, StreamError> {
        for sql in SCHEMA {
            db.execute_unprepared(sql).await?;
        }
        Ok(Self { db, write: Mutex::new(()), published: Default::default(), max_len, publishes: AtomicU64::new(0) })
    }

    fn published(&self, stream: &str) -> Arc<Notify> {
        let mut map = self.published.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(stream.to_string()).or_default().clone()
    }

    /// Counts `n` publishes to `streams` and trims them every
    /// [`TRIM_EVERY`]. Trimming is housekeeping: the entries are stored, so a
    /// failed trim must not turn the publish into an error (the caller would
    /// publish again).
    async fn count_and_trim(&self, streams: &[&str], n: u64) {
        let before = self.publishes.fetch_add(n, Ordering::Relaxed);
        if before % TRIM_EVERY + n < TRIM_EVERY {
            return;
        }
        for stream in streams {
            if let Err(e) = self.trim(stream).await {
                tracing::warn!(stream, error = %e, "trimming the embedded stream failed");
            }
        }
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
        for row in rows {
            let id: i64 = row.try_get("", "id")?;
            out.push(Delivery { id: id.to_string(), payload: row.try_get("", "payload")? });
        }
        let now = now_ms();
        let ids = out.iter().map(|d| parse_id(&d.id)).collect::<Result<Vec<_>, _>>()?;
        for chunk in ids.chunks(CHUNK) {
            let mut values: Vec<Value> = vec![stream.into(), group.into(), consumer.into(), now.into()];
            values.extend(chunk.iter().map(|&id| Value::from(id)));
            let rows = (0..chunk.len()).map(|i| format!("(?1, ?2, ?{}, ?3, ?4)", i + 5)).collect::<Vec<_>>().join(", ");
            let sql = format!("INSERT OR REPLACE INTO stream_pending (stream, grp, id, consumer, delivered_ms) VALUES {rows}");
            txn.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)).await?;
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
            self.count_and_trim(&[stream], 1).await;
            result.last_insert_id()
        };
        self.published(stream).notify_waiters();
        Ok(id.to_string())
    }

    async fn publish_batch(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StreamError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut streams: Vec<&str> = entries.iter().map(|(s, _)| s.as_str()).collect();
        streams.sort_unstable();
        streams.dedup();
        {
            let _guard = self.write.lock().await;
            let txn = self.db.begin().await?;
            for chunk in entries.chunks(CHUNK) {
                let rows = (0..chunk.len()).map(|i| format!("(?{}, ?{})", 2 * i + 1, 2 * i + 2)).collect::<Vec<_>>().join(", ");
                let values = chunk.iter().flat_map(|(s, p)| [Value::from(s.as_str()), Value::from(p.clone())]).collect::<Vec<_>>();
                let sql = format!("INSERT INTO stream_entries (stream, payload) VALUES {rows}");
                txn.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)).await?;
            }
            txn.commit().await?;
            self.count_and_trim(&streams, entries.len() as u64).await;
        }
        for stream in streams {
            self.published(stream).notify_waiters();
        }
        Ok(())
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
            let published = self.published(stream);
            let woken = published.notified();
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
        let ids = ids.iter().map(|id| parse_id(id)).collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Ok(());
        }
        let _guard = self.write.lock().await;
        let txn = self.db.begin().await?;
        for chunk in ids.chunks(CHUNK) {
            let mut values: Vec<Value> = vec![stream.into(), group.into()];
            values.extend(chunk.iter().map(|&id| Value::from(id)));
            let list = (0..chunk.len()).map(|i| format!("?{}", i + 3)).collect::<Vec<_>>().join(", ");
            let sql = format!("DELETE FROM stream_pending WHERE stream = ?1 AND grp = ?2 AND id IN ({list})");
            txn.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)).await?;
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
