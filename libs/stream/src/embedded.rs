//! The embedded backend: a SQLite file (through sea-orm), durable across
//! restarts, for `paved up`. One process owns the file; every operation on a
//! group, and every write, is serialised by one mutex, and readers are woken
//! by a [`Notify`] per stream instead of polling. A publish of up to 200 rows
//! is one statement; every statement is a round trip to SQLite's worker
//! thread.
//!
//! A group stores one number: every entry of its stream up to `last_id` is
//! acked. What was delivered since and not acked (the pending entries) is
//! held in memory by the process that owns the file, so a read writes
//! nothing and an ack writes one row, only when that low-water mark moves.
//! After a restart, entries that were delivered and not acked are delivered
//! again at once, in order: at least once, as ever, without waiting for a
//! claim.

use crate::contract::{Delivery, EventStream, StreamError};
use async_trait::async_trait;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait, Value};
use std::{
    collections::{BTreeMap, HashMap},
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
    // last_id: every entry of the stream up to it is acked by the group.
    "CREATE TABLE IF NOT EXISTS stream_groups (
        stream TEXT NOT NULL,
        grp TEXT NOT NULL,
        last_id INTEGER NOT NULL,
        PRIMARY KEY (stream, grp))",
];

/// Files written before pending entries were held in memory kept them in
/// `stream_pending`, and `last_id` was the last entry delivered. Each group
/// then resumes before its oldest pending entry, so what was delivered and
/// not acked is delivered again.
const UPGRADE: &[&str] = &[
    "UPDATE stream_groups SET last_id = (
        SELECT MIN(p.id) - 1 FROM stream_pending p WHERE p.stream = stream_groups.stream AND p.grp = stream_groups.grp)
     WHERE EXISTS (SELECT 1 FROM stream_pending p WHERE p.stream = stream_groups.stream AND p.grp = stream_groups.grp)",
    "DROP TABLE stream_pending",
];

/// Trim a stream every this many publishes.
const TRIM_EVERY: u64 = 256;

/// Rows per multi-row statement, well under SQLite's limit of bound parameters.
const CHUNK: usize = 200;

pub struct EmbeddedStream {
    db: DatabaseConnection,
    /// Serialises writes and holds every group's place.
    groups: Mutex<HashMap<(String, String), Group>>,
    /// Per stream: a publish wakes only the readers of its stream.
    published: std::sync::Mutex<HashMap<String, Arc<Notify>>>,
    max_len: u64,
    publishes: AtomicU64,
}

/// A group's place in one stream.
struct Group {
    /// The last entry delivered to the group since the file was opened (at
    /// first, the stored mark).
    delivered: i64,
    /// As stored: every entry up to this one is acked.
    acked: i64,
    /// Delivered and not acked, by id: to which consumer, and when (ms).
    pending: BTreeMap<i64, (String, i64)>,
}

impl Group {
    /// The new low-water mark, if acks moved it: everything before the oldest
    /// pending entry, or everything delivered when nothing is pending.
    fn acked_up_to(&self) -> Option<i64> {
        let mark = self.pending.keys().next().map_or(self.delivered, |oldest| oldest - 1);
        (mark > self.acked).then_some(mark)
    }
}

impl EmbeddedStream {
    /// Opens (creating if needed) the stream tables in `db`, a SQLite database.
    pub async fn open(db: DatabaseConnection, max_len: u64) -> Result<Self, StreamError> {
        for sql in SCHEMA {
            db.execute_unprepared(sql).await?;
        }
        // Looked for inside the transaction: two openers of an old file
        // upgrade it once.
        let txn = db.begin().await?;
        let old =
            txn.query_one_raw(stmt("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1", ["stream_pending".into()])).await?;
        if old.is_some() {
            for sql in UPGRADE {
                txn.execute_unprepared(sql).await?;
            }
        }
        txn.commit().await?;
        Ok(Self { db, groups: Mutex::new(HashMap::new()), published: Default::default(), max_len, publishes: AtomicU64::new(0) })
    }

    fn published(&self, stream: &str) -> Arc<Notify> {
        let mut map = self.published.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(stream.to_string()).or_default().clone()
    }

    /// The group's place, read from the file the first time it is used.
    async fn group<'a>(
        &self,
        groups: &'a mut HashMap<(String, String), Group>,
        stream: &str,
        group: &str,
    ) -> Result<&'a mut Group, StreamError> {
        let key = (stream.to_string(), group.to_string());
        if !groups.contains_key(&key) {
            let stored = self
                .db
                .query_one_raw(stmt("SELECT last_id FROM stream_groups WHERE stream = ?1 AND grp = ?2", [stream.into(), group.into()]))
                .await?
                .ok_or_else(|| StreamError::NoGroup { stream: stream.to_string(), group: group.to_string() })?;
            let acked: i64 = stored.try_get("", "last_id")?;
            groups.insert(key.clone(), Group { delivered: acked, acked, pending: BTreeMap::new() });
        }
        Ok(groups.get_mut(&key).expect("inserted above"))
    }

    /// Stores the group's low-water mark if acks moved it.
    async fn store_acked(&self, stream: &str, group: &str, place: &mut Group) -> Result<(), StreamError> {
        if let Some(mark) = place.acked_up_to() {
            self.db
                .execute_raw(stmt(
                    "UPDATE stream_groups SET last_id = ?3 WHERE stream = ?1 AND grp = ?2",
                    [stream.into(), group.into(), mark.into()],
                ))
                .await?;
            place.acked = mark;
        }
        Ok(())
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

    /// Up to `count` entries after the last one delivered to the group, now
    /// pending for `consumer`: one query, nothing written.
    async fn deliver_new(&self, stream: &str, group: &str, consumer: &str, count: usize) -> Result<Vec<Delivery>, StreamError> {
        let mut groups = self.groups.lock().await;
        let place = self.group(&mut groups, stream, group).await?;
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT id, payload FROM stream_entries WHERE stream = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                [stream.into(), place.delivered.into(), (count as i64).into()],
            ))
            .await?;
        // All rows read before any is marked delivered: an error leaves the
        // group as it was.
        let entries = rows
            .iter()
            .map(|row| Ok((row.try_get::<i64>("", "id")?, row.try_get::<Vec<u8>>("", "payload")?)))
            .collect::<Result<Vec<_>, StreamError>>()?;
        let now = now_ms();
        let mut out = Vec::with_capacity(entries.len());
        for (id, payload) in entries {
            place.pending.insert(id, (consumer.to_string(), now));
            place.delivered = id;
            out.push(Delivery { id: id.to_string(), payload });
        }
        Ok(out)
    }
}

#[async_trait]
impl EventStream for EmbeddedStream {
    async fn publish(&self, stream: &str, payload: &[u8]) -> Result<String, StreamError> {
        let id = {
            let _writing = self.groups.lock().await;
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
            let _writing = self.groups.lock().await;
            let insert = |chunk: &[(String, Vec<u8>)]| {
                let rows = (0..chunk.len()).map(|i| format!("(?{}, ?{})", 2 * i + 1, 2 * i + 2)).collect::<Vec<_>>().join(", ");
                let values = chunk.iter().flat_map(|(s, p)| [Value::from(s.as_str()), Value::from(p.clone())]).collect::<Vec<_>>();
                Statement::from_sql_and_values(
                    DbBackend::Sqlite,
                    format!("INSERT INTO stream_entries (stream, payload) VALUES {rows}"),
                    values,
                )
            };
            // One statement is atomic by itself: a transaction would only add
            // two round trips.
            if entries.len() <= CHUNK {
                self.db.execute_raw(insert(entries)).await?;
            } else {
                let txn = self.db.begin().await?;
                for chunk in entries.chunks(CHUNK) {
                    txn.execute_raw(insert(chunk)).await?;
                }
                txn.commit().await?;
            }
            self.count_and_trim(&streams, entries.len() as u64).await;
        }
        for stream in streams {
            self.published(stream).notify_waiters();
        }
        Ok(())
    }

    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), StreamError> {
        let _writing = self.groups.lock().await;
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
        let mut groups = self.groups.lock().await;
        let place = self.group(&mut groups, stream, group).await?;
        for id in ids {
            place.pending.remove(&id);
        }
        self.store_acked(stream, group, place).await
    }

    async fn claim_stale(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Delivery>, StreamError> {
        let mut groups = self.groups.lock().await;
        let place = self.group(&mut groups, stream, group).await?;
        let now = now_ms();
        let idle_since = now - min_idle.as_millis() as i64;
        let stale: Vec<i64> = place.pending.iter().filter(|(_, (_, at))| *at <= idle_since).map(|(id, _)| *id).take(count).collect();
        if stale.is_empty() {
            return Ok(Vec::new());
        }
        let mut payloads = HashMap::with_capacity(stale.len());
        for chunk in stale.chunks(CHUNK) {
            let mut values: Vec<Value> = vec![stream.into()];
            values.extend(chunk.iter().map(|&id| Value::from(id)));
            let list = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect::<Vec<_>>().join(", ");
            let sql = format!("SELECT id, payload FROM stream_entries WHERE stream = ?1 AND id IN ({list})");
            for row in self.db.query_all_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)).await? {
                payloads.insert(row.try_get::<i64>("", "id")?, row.try_get::<Vec<u8>>("", "payload")?);
            }
        }
        let mut out = Vec::with_capacity(stale.len());
        for id in stale {
            match payloads.remove(&id) {
                Some(payload) => {
                    place.pending.insert(id, (consumer.to_string(), now));
                    out.push(Delivery { id: id.to_string(), payload });
                }
                // Trimmed while pending: like XAUTOCLAIM, drop it from the pending list.
                None => {
                    place.pending.remove(&id);
                }
            }
        }
        self.store_acked(stream, group, place).await?;
        Ok(out)
    }

    async fn pending(&self, stream: &str, group: &str) -> Result<Vec<String>, StreamError> {
        let mut groups = self.groups.lock().await;
        let place = self.group(&mut groups, stream, group).await?;
        Ok(place.pending.keys().map(i64::to_string).collect())
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
