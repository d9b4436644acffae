//! The event-stream contract, run against both backends: Redis Streams on the
//! real Redis, and the embedded SQLite backend.

use paved_integration_tests::{eventually, redis_namespace, unique};
use paved_stream::{Delivery, SharedStream};
use std::time::Duration;

async fn redis(max_len: u64) -> SharedStream {
    let url = redis_namespace("contract").await;
    paved_stream::open(&url, max_len).await.expect("open redis stream")
}

async fn embedded(max_len: u64) -> (SharedStream, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = paved_store::sqlite_url(&dir.path().join("stream.db"));
    (paved_stream::open(&url, max_len).await.expect("open embedded stream"), dir)
}

/// Runs one contract check against both backends.
macro_rules! contract {
    ($name:ident, $max_len:expr, $check:ident) => {
        mod $name {
            #[tokio::test]
            async fn redis() {
                super::$check(super::redis($max_len).await).await;
            }
            #[tokio::test]
            async fn embedded() {
                let (stream, _dir) = super::embedded($max_len).await;
                super::$check(stream).await;
            }
        }
    };
}

contract!(delivers_in_order_once_per_group, 1000, delivers_in_order);
contract!(ack_clears_pending, 1000, ack_clears_pending_check);
contract!(dead_consumer_is_taken_over, 1000, dead_consumer_check);
contract!(blocking_read_wakes_on_publish, 1000, blocking_read_check);
contract!(retention_is_bounded, 50, retention_check);
contract!(batches_keep_order_across_streams, 1000, batch_check);

fn payloads(deliveries: &[Delivery]) -> Vec<Vec<u8>> {
    deliveries.iter().map(|d| d.payload.clone()).collect()
}

async fn publish_n(stream: &SharedStream, name: &str, n: usize) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    for i in 0..n {
        let payload = format!("event-{i}").into_bytes();
        stream.publish(name, &payload).await.expect("publish");
        sent.push(payload);
    }
    sent
}

async fn delivers_in_order(stream: SharedStream) {
    let name = unique("s");
    stream.ensure_group(&name, "a").await.expect("group a");
    stream.ensure_group(&name, "a").await.expect("creating a group twice is fine");
    stream.ensure_group(&name, "b").await.expect("group b");
    let sent = publish_n(&stream, &name, 20).await;
    let got_a = stream.read(&name, "a", "c1", 100, Duration::from_millis(100)).await.expect("read a");
    assert_eq!(payloads(&got_a), sent, "group a gets every entry in publish order");
    let got_b = stream.read(&name, "b", "c1", 100, Duration::from_millis(100)).await.expect("read b");
    assert_eq!(payloads(&got_b), sent, "group b gets them too, independently");
    let again = stream.read(&name, "a", "c2", 100, Duration::from_millis(50)).await.expect("read a again");
    assert!(again.is_empty(), "an entry goes to one consumer of a group: {again:?}");
}

async fn ack_clears_pending_check(stream: SharedStream) {
    let name = unique("s");
    stream.ensure_group(&name, "g").await.expect("group");
    publish_n(&stream, &name, 5).await;
    let got = stream.read(&name, "g", "c", 10, Duration::from_millis(100)).await.expect("read");
    assert_eq!(stream.pending(&name, "g").await.expect("pending").len(), 5);
    let ids: Vec<String> = got.iter().take(3).map(|d| d.id.clone()).collect();
    stream.ack(&name, "g", &ids).await.expect("ack");
    let pending = stream.pending(&name, "g").await.expect("pending");
    assert_eq!(pending, vec![got[3].id.clone(), got[4].id.clone()]);
}

/// A consumer reads a batch and dies before acking: another consumer of the
/// group claims the batch once it has been idle long enough, and nothing is lost.
async fn dead_consumer_check(stream: SharedStream) {
    let name = unique("s");
    stream.ensure_group(&name, "g").await.expect("group");
    let sent = publish_n(&stream, &name, 8).await;
    let batch = stream.read(&name, "g", "doomed", 5, Duration::from_millis(100)).await.expect("read");
    assert_eq!(batch.len(), 5);
    // "doomed" is killed here, mid-batch, without acking.
    let fresh = stream.read(&name, "g", "survivor", 10, Duration::from_millis(100)).await.expect("survivor reads new");
    assert_eq!(payloads(&fresh), sent[5..].to_vec(), "the survivor gets only what was never delivered");
    let fresh_ids: Vec<String> = fresh.iter().map(|d| d.id.clone()).collect();
    stream.ack(&name, "g", &fresh_ids).await.expect("survivor acks its own");
    let early = stream.claim_stale(&name, "g", "survivor", Duration::from_secs(60), 10).await.expect("claim");
    assert!(early.is_empty(), "entries are not taken from a consumer that may still be working");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let claimed = stream.claim_stale(&name, "g", "survivor", Duration::from_millis(100), 10).await.expect("claim");
    assert_eq!(payloads(&claimed), sent[..5].to_vec(), "the dead consumer's batch is redelivered, in order");
    let ids: Vec<String> = claimed.iter().map(|d| d.id.clone()).collect();
    stream.ack(&name, "g", &ids).await.expect("ack");
    assert!(stream.pending(&name, "g").await.expect("pending").is_empty());
}

/// A reader of group `g` blocked on `name` (for up to 5 s); it returns what
/// it got and how long it waited.
async fn blocked_reader(stream: &SharedStream, name: &str) -> tokio::task::JoinHandle<(Vec<Delivery>, Duration)> {
    let (stream, name) = (stream.clone(), name.to_string());
    let reader = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        let got = stream.read(&name, "g", "c", 1000, Duration::from_secs(5)).await.expect("read");
        (got, start.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    reader
}

async fn blocking_read_check(stream: SharedStream) {
    let name = unique("s");
    stream.ensure_group(&name, "g").await.expect("group");
    let reader = blocked_reader(&stream, &name).await;
    stream.publish(&name, b"wake").await.expect("publish");
    let (got, waited) = reader.await.expect("reader");
    assert_eq!(payloads(&got), vec![b"wake".to_vec()]);
    assert!(waited < Duration::from_secs(2), "the read returned {waited:?} after it began, not at its timeout");
    let empty = stream.read(&name, "g", "c", 10, Duration::from_millis(100)).await.expect("read");
    assert!(empty.is_empty(), "a read with nothing new waits out its block time and returns empty");
}

/// A batch spanning two streams (larger than one statement's worth of rows
/// on the embedded backend) lands in order on each, wakes a blocked
/// reader, and its entries are acked in one call.
async fn batch_check(stream: SharedStream) {
    let (a, b) = (unique("s"), unique("s"));
    for name in [&a, &b] {
        stream.ensure_group(name, "g").await.expect("group");
    }
    let reader = blocked_reader(&stream, &b).await;
    let entries: Vec<(String, Vec<u8>)> =
        (0..450).map(|i| (if i % 3 == 0 { b.clone() } else { a.clone() }, format!("event-{i}").into_bytes())).collect();
    stream.publish_batch(&entries).await.expect("publish a batch");
    let sent = |name: &str| entries.iter().filter(|(s, _)| s == name).map(|(_, p)| p.clone()).collect::<Vec<_>>();
    let (mut got_b, waited) = reader.await.expect("reader");
    assert!(!got_b.is_empty() && waited < Duration::from_secs(2), "the blocked reader of {b} woke after {waited:?}");
    got_b.extend(stream.read(&b, "g", "c", 1000, Duration::from_millis(100)).await.expect("read the rest of b"));
    assert_eq!(payloads(&got_b), sent(&b), "stream b has its share of the batch, in order");
    let got_a = stream.read(&a, "g", "c", 1000, Duration::from_millis(100)).await.expect("read a");
    assert_eq!(payloads(&got_a), sent(&a), "stream a has its share of the batch, in order");
    let ids: Vec<String> = got_a.iter().map(|d| d.id.clone()).collect();
    assert_eq!(stream.pending(&a, "g").await.expect("pending").len(), 300);
    stream.ack(&a, "g", &ids).await.expect("ack 300 entries at once");
    assert!(stream.pending(&a, "g").await.expect("pending").is_empty());
}

async fn retention_check(stream: SharedStream) {
    let name = unique("s");
    publish_n(&stream, &name, 2000).await;
    stream.ensure_group(&name, "late").await.expect("group");
    let kept = eventually("a full read", Duration::from_secs(5), || async {
        let got = stream.read(&name, "late", "c", 5000, Duration::from_millis(100)).await.ok()?;
        Some(got)
    })
    .await;
    // Redis trims approximately (whole macro nodes), the embedded backend in
    // steps of its trim interval: bounded, not exact.
    assert!(kept.len() >= 50 && kept.len() < 600, "kept {} of 2000 entries with max_len 50", kept.len());
    assert_eq!(kept.last().map(|d| d.payload.clone()), Some(b"event-1999".to_vec()), "the newest entries are kept");
}

/// The embedded backend keeps each group's place in the file: after a
/// restart, what was acked up to the oldest unacked entry is not delivered
/// again; from that entry on, everything is (at least once, in order), even
/// what was acked after it.
#[tokio::test]
async fn embedded_stream_survives_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = paved_store::sqlite_url(&dir.path().join("stream.db"));
    {
        let stream = paved_stream::open(&url, 1000).await.expect("open");
        stream.ensure_group("s", "g").await.expect("group");
        publish_n(&stream, "s", 5).await;
        let got = stream.read("s", "g", "c", 4, Duration::from_millis(50)).await.expect("read");
        assert_eq!(payloads(&got), (0..4).map(|i| format!("event-{i}").into_bytes()).collect::<Vec<_>>());
        // Out of order: 0, then 2 and 3; 1 is still being handled.
        stream.ack("s", "g", &[got[0].id.clone(), got[2].id.clone(), got[3].id.clone()]).await.expect("ack");
        assert_eq!(stream.pending("s", "g").await.expect("pending"), vec![got[1].id.clone()]);
    }
    let stream = paved_stream::open(&url, 1000).await.expect("reopen");
    assert!(stream.pending("s", "g").await.expect("pending").is_empty(), "the stopped process's consumers hold nothing now");
    let rest = stream.read("s", "g", "c", 10, Duration::from_millis(50)).await.expect("read");
    let expected: Vec<Vec<u8>> = (1..5).map(|i| format!("event-{i}").into_bytes()).collect();
    assert_eq!(payloads(&rest), expected, "from the oldest unacked entry on, in order");
    let ids: Vec<String> = rest.iter().map(|d| d.id.clone()).collect();
    stream.ack("s", "g", &ids).await.expect("ack");
    drop(stream);
    let stream = paved_stream::open(&url, 1000).await.expect("reopen again");
    assert!(stream.read("s", "g", "c", 10, Duration::from_millis(50)).await.expect("read").is_empty(), "all acked: nothing again");
    let missing = stream.read("s", "nobody", "c", 10, Duration::from_millis(50)).await;
    assert!(matches!(missing, Err(paved_stream::StreamError::NoGroup { .. })), "a group never created: {missing:?}");
}

/// A file written when pending entries were stored row by row: each group
/// resumes before its oldest pending entry, and the old table is gone.
#[tokio::test]
async fn embedded_stream_upgrades_stored_pending_entries() {
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = paved_store::sqlite_url(&dir.path().join("stream.db"));
    {
        let db = sea_orm::Database::connect(&url).await.expect("connect");
        for sql in [
            "CREATE TABLE stream_entries (id INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, payload BLOB NOT NULL)",
            "CREATE TABLE stream_groups (stream TEXT NOT NULL, grp TEXT NOT NULL, last_id INTEGER NOT NULL, PRIMARY KEY (stream, grp))",
            "CREATE TABLE stream_pending (stream TEXT NOT NULL, grp TEXT NOT NULL, id INTEGER NOT NULL, consumer TEXT NOT NULL,
                delivered_ms INTEGER NOT NULL, PRIMARY KEY (stream, grp, id))",
            "INSERT INTO stream_entries (stream, payload) VALUES ('s', x'30'), ('s', x'31'), ('s', x'32'), ('s', x'33')",
            // Group a: 1 acked, 2 and 3 delivered and pending. Group b: 1 and 2 acked.
            "INSERT INTO stream_groups VALUES ('s', 'a', 3), ('s', 'b', 2)",
            "INSERT INTO stream_pending VALUES ('s', 'a', 2, 'c', 0), ('s', 'a', 3, 'c', 0)",
        ] {
            db.execute_unprepared(sql).await.expect(sql);
        }
        db.close().await.expect("close");
    }
    let stream = paved_stream::open(&url, 1000).await.expect("open an old file");
    let a = stream.read("s", "a", "c", 10, Duration::from_millis(50)).await.expect("read a");
    assert_eq!(payloads(&a), vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()], "a: what was pending, then the rest");
    let b = stream.read("s", "b", "c", 10, Duration::from_millis(50)).await.expect("read b");
    assert_eq!(payloads(&b), vec![b"2".to_vec(), b"3".to_vec()], "b: where it stopped");
    drop(stream);
    let db = sea_orm::Database::connect(&url).await.expect("connect");
    let tables = db
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT name FROM sqlite_master WHERE name = 'stream_pending'",
        ))
        .await
        .expect("tables");
    assert!(tables.is_empty(), "the old table is dropped");
    let reopened = paved_stream::open(&url, 1000).await.expect("open again");
    assert!(reopened.read("s", "b", "c", 10, Duration::from_millis(50)).await.expect("read b").len() == 2, "an upgraded file opens again");
}

/// A handler that fails on chosen events a number of times, recording what
/// it handled; with `batches`, it also takes whole batches (all or none).
struct Flaky {
    fail: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    handled: std::sync::Mutex<Vec<String>>,
    batches: Option<std::sync::Mutex<Vec<Vec<String>>>>,
}

impl Flaky {
    fn new(fail: &[(&str, u32)], batches: bool) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            fail: std::sync::Mutex::new(fail.iter().map(|(s, n)| (s.to_string(), *n)).collect()),
            handled: Default::default(),
            batches: batches.then(Default::default),
        })
    }
}

#[async_trait::async_trait]
impl paved_stream::consumer::Handler for Flaky {
    async fn handle(&self, _stream: &str, event: &paved_stream::Envelope) -> anyhow::Result<()> {
        let mut fail = self.fail.lock().expect("lock");
        if let Some(left) = fail.get_mut(&event.subject).filter(|n| **n > 0) {
            *left -= 1;
            anyhow::bail!("injected failure");
        }
        self.handled.lock().expect("lock").push(event.subject.clone());
        Ok(())
    }

    async fn handle_all(&self, _stream: &str, events: &[paved_stream::Envelope]) -> anyhow::Result<bool> {
        let Some(batches) = &self.batches else {
            return Ok(false);
        };
        let fail = self.fail.lock().expect("lock");
        anyhow::ensure!(!events.iter().any(|e| fail.get(&e.subject).is_some_and(|n| *n > 0)), "injected failure in the batch");
        let subjects: Vec<String> = events.iter().map(|e| e.subject.clone()).collect();
        self.handled.lock().expect("lock").extend(subjects.iter().cloned());
        batches.lock().expect("lock").push(subjects);
        Ok(true)
    }
}

fn publish_subjects<'a>(stream: &'a SharedStream, name: &'a str, subjects: &'a [&str]) -> impl std::future::Future<Output = ()> + 'a {
    use paved_proto::events::v1::envelope::Payload;
    use paved_proto::provisioner::v1::WorkloadRegistered;
    async move {
        for subject in subjects {
            let envelope =
                paved_stream::event::envelope("test", "t", subject.to_string(), Payload::WorkloadRegistered(WorkloadRegistered::default()));
            stream.publish(name, &paved_stream::event::encode(&envelope)).await.expect("publish");
        }
    }
}

/// A handler failure is retried at once, before newer events and in order; an
/// event that keeps failing goes to the dead-letter stream, and the rest flow.
async fn consumer_retries_in_order(stream: SharedStream) {
    for batches in [false, true] {
        retries_in_order(&stream, batches).await;
    }
}

/// With `batches`, the handler takes whole batches: one holding a failing
/// event (or an entry that is no envelope) is handled one by one, with the
/// same outcome; a clean batch later is taken at once.
async fn retries_in_order(stream: &SharedStream, batches: bool) {
    let name = unique("s");
    publish_subjects(stream, &name, &["a", "b", "poison", "c"]).await;
    stream.publish(&name, b"not an envelope").await.expect("publish");
    let flaky = Flaky::new(&[("b", 2), ("poison", u32::MAX)], batches);
    let mut config = paved_stream::consumer::ConsumerConfig::for_service("g", "c".into(), &[]);
    config.streams = vec![name.clone()];
    config.block = Duration::from_millis(100);
    let consume = |flaky: std::sync::Arc<Flaky>| {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let run = paved_stream::consumer::run(stream.clone(), config.clone(), flaky, std::sync::Arc::new(|_| {}), shutdown.clone());
        (shutdown, tokio::spawn(run))
    };
    let (shutdown, task) = consume(flaky.clone());
    eventually("a, b and c handled", Duration::from_secs(20), || async { (flaky.handled.lock().expect("lock").len() == 3).then_some(()) })
        .await;
    assert_eq!(*flaky.handled.lock().expect("lock"), ["a", "b", "c"], "retried in order, poison skipped");
    let dead = eventually("the poison event dead-lettered", Duration::from_secs(5), || async {
        stream.ensure_group(&format!("{name}.dead"), "inspect").await.ok()?;
        let got = stream.read(&format!("{name}.dead"), "inspect", "i", 10, Duration::from_millis(50)).await.ok()?;
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(paved_stream::event::decode(&dead[0].payload).expect("envelope").subject, "poison");
    eventually("nothing pending", Duration::from_secs(5), || async { stream.pending(&name, "g").await.ok()?.is_empty().then_some(()) })
        .await;
    // Idle reads (100 ms each) give the handler nothing, not empty batches.
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    task.await.expect("consumer task");
    // A read the consumer left blocked at the server (Redis) ends within its
    // 100 ms block; until then it would take what is published.
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some(taken) = &flaky.batches {
        assert!(taken.lock().expect("lock").is_empty(), "the batch holding `poison` was never taken whole: {taken:?}");
        // Published while no consumer reads, so the next one reads them as
        // one batch, taken whole.
        let more: Vec<(String, Vec<u8>)> = ["d", "e", "f"]
            .iter()
            .map(|s| {
                let payload = paved_proto::events::v1::envelope::Payload::WorkloadRegistered(Default::default());
                (name.clone(), paved_stream::event::encode(&paved_stream::event::envelope("test", "t", s.to_string(), payload)))
            })
            .collect();
        stream.publish_batch(&more).await.expect("publish a batch");
        let (shutdown, task) = consume(flaky.clone());
        eventually("d, e and f handled", Duration::from_secs(10), || async {
            (flaky.handled.lock().expect("lock").len() == 6).then_some(())
        })
        .await;
        assert_eq!(*flaky.handled.lock().expect("lock"), ["a", "b", "c", "d", "e", "f"]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(*taken.lock().expect("lock"), [["d", "e", "f"]], "one batch, in order, and no empty ones");
        shutdown.cancel();
        task.await.expect("consumer task");
    }
}

contract!(consumer_retries_failures_in_order, 1000, consumer_retries_in_order);

/// A handler whose database is out of reach `left` more times.
struct Outage {
    left: std::sync::Mutex<u32>,
    handled: std::sync::Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl paved_stream::consumer::Handler for Outage {
    async fn handle(&self, _stream: &str, event: &paved_stream::Envelope) -> anyhow::Result<()> {
        let mut left = self.left.lock().expect("lock");
        if *left > 0 {
            *left -= 1;
            return Err(sea_orm::DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout).into());
        }
        self.handled.lock().expect("lock").push(event.subject.clone());
        Ok(())
    }
}

/// A database down for longer than the attempts an event gets: its events
/// wait for it (retried with backoff), none is dead-lettered.
async fn outage_dead_letters_nothing(stream: SharedStream) {
    let name = unique("s");
    publish_subjects(&stream, &name, &["during-outage"]).await;
    let outage = std::sync::Arc::new(Outage { left: std::sync::Mutex::new(6), handled: Default::default() });
    let mut config = paved_stream::consumer::ConsumerConfig::for_service("g", "c".into(), &[]);
    config.streams = vec![name.clone()];
    config.block = Duration::from_millis(100);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task =
        tokio::spawn(paved_stream::consumer::run(stream.clone(), config, outage.clone(), std::sync::Arc::new(|_| {}), shutdown.clone()));
    // Six failures back off 0.1 + 0.2 + … + 3.2 s (with jitter).
    eventually("the event handled once the database is back", Duration::from_secs(20), || async {
        (!outage.handled.lock().expect("lock").is_empty()).then_some(())
    })
    .await;
    assert_eq!(*outage.handled.lock().expect("lock"), ["during-outage"]);
    stream.ensure_group(&format!("{name}.dead"), "inspect").await.expect("group");
    let dead = stream.read(&format!("{name}.dead"), "inspect", "i", 10, Duration::from_millis(100)).await.expect("read");
    assert!(dead.is_empty(), "nothing dead-lettered: {} entries", dead.len());
    shutdown.cancel();
    task.await.expect("consumer task");
}

contract!(an_outage_dead_letters_nothing, 1000, outage_dead_letters_nothing);
