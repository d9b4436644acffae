//! Redis Streams backend: XADD with approximate MAXLEN, XREADGROUP, XACK and
//! XAUTOCLAIM.

use crate::contract::{Delivery, EventStream, StreamError};
use async_trait::async_trait;
use redis::{AsyncConnectionConfig, Client, Value, aio::ConnectionManager, aio::MultiplexedConnection};
use std::{collections::HashMap, time::Duration};
use tokio::sync::Mutex;

/// Field under which an entry's payload is stored.
const FIELD: &str = "e";

pub struct RedisStream {
    client: Client,
    /// Shared, reconnecting connection for non-blocking commands.
    conn: ConnectionManager,
    /// Blocking reads get a connection of their own per (stream, consumer):
    /// Redis serves one connection's commands in order, so an XREADGROUP BLOCK
    /// on the shared connection would stall every publish behind it.
    readers: Mutex<HashMap<(String, String), MultiplexedConnection>>,
    max_len: u64,
    /// Prefix of every key, so several platforms (or test runs) can share one Redis.
    namespace: String,
}

impl RedisStream {
    /// `url` may carry `?paved_namespace=<ns>`: every stream key is then
    /// prefixed with `<ns>:`.
    pub async fn connect(url: &str, max_len: u64) -> Result<Self, StreamError> {
        let (url, namespace) = split_namespace(url);
        let client = Client::open(url.as_str())?;
        let conn = ConnectionManager::new(client.clone()).await?;
        Ok(Self { client, conn, readers: Mutex::new(HashMap::new()), max_len, namespace })
    }

    fn key(&self, stream: &str) -> String {
        if self.namespace.is_empty() { stream.to_string() } else { format!("{}:{stream}", self.namespace) }
    }

    async fn reader(&self, stream: &str, consumer: &str, block: Duration) -> Result<MultiplexedConnection, StreamError> {
        let key = (stream.to_string(), consumer.to_string());
        let mut readers = self.readers.lock().await;
        if let Some(conn) = readers.get(&key) {
            return Ok(conn.clone());
        }
        let config = AsyncConnectionConfig::new().set_response_timeout(Some(block + Duration::from_secs(5)));
        let conn = self.client.get_multiplexed_async_connection_with_config(&config).await?;
        readers.insert(key, conn.clone());
        Ok(conn)
    }

    async fn forget_reader(&self, stream: &str, consumer: &str) {
        self.readers.lock().await.remove(&(stream.to_string(), consumer.to_string()));
    }
}

#[async_trait]
impl EventStream for RedisStream {
    async fn publish(&self, stream: &str, payload: &[u8]) -> Result<String, StreamError> {
        let mut conn = self.conn.clone();
        let id: String = redis::cmd("XADD")
            .arg(self.key(stream))
            .arg("MAXLEN")
            .arg("~")
            .arg(self.max_len)
            .arg("*")
            .arg(FIELD)
            .arg(payload)
            .query_async(&mut conn)
            .await?;
        Ok(id)
    }

    async fn publish_batch(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StreamError> {
        if entries.is_empty() {
            return Ok(());
        }
        // One round trip; a pipeline (not a transaction) keeps the order.
        let mut pipe = redis::pipe();
        for (stream, payload) in entries {
            pipe.cmd("XADD").arg(self.key(stream)).arg("MAXLEN").arg("~").arg(self.max_len).arg("*").arg(FIELD).arg(payload).ignore();
        }
        let mut conn = self.conn.clone();
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    async fn ensure_group(&self, stream: &str, group: &str) -> Result<(), StreamError> {
        let mut conn = self.conn.clone();
        let created: Result<(), redis::RedisError> =
            redis::cmd("XGROUP").arg("CREATE").arg(self.key(stream)).arg(group).arg("0").arg("MKSTREAM").query_async(&mut conn).await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => Ok(other?),
        }
    }

    async fn read(&self, stream: &str, group: &str, consumer: &str, count: usize, block: Duration) -> Result<Vec<Delivery>, StreamError> {
        let mut conn = self.reader(stream, consumer, block).await?;
        let reply: Result<Value, _> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(self.key(stream))
            .arg(">")
            .query_async(&mut conn)
            .await;
        let reply = match reply {
            Ok(v) => v,
            Err(e) => {
                // A broken dedicated connection is not retried by redis-rs; drop it.
                self.forget_reader(stream, consumer).await;
                return Err(e.into());
            }
        };
        // Nil on timeout; else [[stream, [[id, [field, value, ...]], ...]]].
        let Value::Array(streams) = reply else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for s in streams {
            let Value::Array(mut parts) = s else { continue };
            if parts.len() == 2 {
                out.extend(parse_entries(parts.remove(1))?);
            }
        }
        Ok(out)
    }

    async fn ack(&self, stream: &str, group: &str, ids: &[String]) -> Result<(), StreamError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("XACK").arg(self.key(stream)).arg(group).arg(ids).query_async(&mut conn).await?;
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
        let mut conn = self.conn.clone();
        let reply: Value = redis::cmd("XAUTOCLAIM")
            .arg(self.key(stream))
            .arg(group)
            .arg(consumer)
            .arg(min_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut conn)
            .await?;
        // [next-start, [[id, fields], ...], [deleted ids]]
        let Value::Array(mut parts) = reply else {
            return Ok(Vec::new());
        };
        if parts.len() < 2 {
            return Ok(Vec::new());
        }
        parse_entries(parts.remove(1))
    }

    async fn pending(&self, stream: &str, group: &str) -> Result<Vec<String>, StreamError> {
        let mut conn = self.conn.clone();
        let reply: Vec<(String, String, u64, u64)> =
            redis::cmd("XPENDING").arg(self.key(stream)).arg(group).arg("-").arg("+").arg(10_000).query_async(&mut conn).await?;
        Ok(reply.into_iter().map(|(id, ..)| id).collect())
    }
}

/// Splits `?paved_namespace=<ns>` off a Redis URL.
fn split_namespace(url: &str) -> (String, String) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), String::new());
    };
    let mut namespace = String::new();
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("paved_namespace=") {
            Some(ns) => {
                namespace = ns.to_string();
                false
            }
            None => !kv.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    (url, namespace)
}

/// Parses `[[id, [field, value, ...]], ...]`. Entries trimmed while pending come
/// back with nil fields; they carry no payload and are skipped.
fn parse_entries(value: Value) -> Result<Vec<Delivery>, StreamError> {
    let Value::Array(entries) = value else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Array(mut pair) = entry else {
            continue;
        };
        if pair.len() != 2 {
            continue;
        }
        let fields = pair.pop();
        let id = match pair.pop() {
            Some(Value::BulkString(id)) => String::from_utf8_lossy(&id).into_owned(),
            Some(Value::SimpleString(id)) => id,
            other => {
                return Err(StreamError::Malformed { id: format!("{other:?}"), reason: "entry id is not a string".into() });
            }
        };
        let Some(Value::Array(fields)) = fields else {
            continue;
        };
        let mut payload = None;
        for kv in fields.chunks(2) {
            if let [Value::BulkString(k), Value::BulkString(v)] = kv
                && k.as_slice() == FIELD.as_bytes()
            {
                payload = Some(v.clone());
            }
        }
        // An entry without our field was not written by Paved: hand it on
        // empty so the consumer dead-letters it instead of stalling on it.
        out.push(Delivery { id, payload: payload.unwrap_or_default() });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_namespace() {
        assert_eq!(super::split_namespace("redis://h:1/?paved_namespace=t1"), ("redis://h:1/".into(), "t1".into()));
        assert_eq!(super::split_namespace("redis://h:1/0?a=b&paved_namespace=x"), ("redis://h:1/0?a=b".into(), "x".into()));
        assert_eq!(super::split_namespace("redis://h:1"), ("redis://h:1".into(), String::new()));
    }
}
