//! The transactional outbox: events committed with a state change reach the
//! stream even when the relay dies at the worst moments, and consumers absorb
//! the duplicates a relay crash can cause.

use async_trait::async_trait;
use paved_integration_tests::{postgres_database, unique};
use paved_proto::events::v1::envelope::Payload;
use paved_proto::provisioner::v1::WorkloadRegistered;
use paved_stream::{Delivery, EventStream, SharedStream, StreamError, event, outbox};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

/// A database with an outbox table (the provisioner's schema has one).
async fn outbox_db(url: &str) -> DatabaseConnection {
    paved_store::connect_and_migrate::<paved_provisioner::migration::Migrator>(url).await.expect("migrate")
}

fn registered(n: usize) -> paved_stream::Envelope {
    event::envelope(
        "provisioner",
        "test.registered",
        format!("w{n}"),
        Payload::WorkloadRegistered(WorkloadRegistered { workload: format!("w{n}"), environment: "dev".into() }),
    )
}

/// A stream that fails every publish after the first `ok` ones: a relay that
/// dies mid-batch.
struct Faulty {
    inner: SharedStream,
    ok: usize,
    published: AtomicUsize,
}

#[async_trait]
impl EventStream for Faulty {
    async fn publish(&self, stream: &str, payload: &[u8]) -> Result<String, StreamError> {
        if self.published.fetch_add(1, Ordering::SeqCst) >= self.ok {
            return Err(StreamError::Malformed { id: "-".into(), reason: "injected crash".into() });
        }
        self.inner.publish(stream, payload).await
    }
    async fn ensure_group(&self, s: &str, g: &str) -> Result<(), StreamError> {
        self.inner.ensure_group(s, g).await
    }
    async fn read(&self, s: &str, g: &str, c: &str, n: usize, b: Duration) -> Result<Vec<Delivery>, StreamError> {
        self.inner.read(s, g, c, n, b).await
    }
    async fn ack(&self, s: &str, g: &str, ids: &[String]) -> Result<(), StreamError> {
        self.inner.ack(s, g, ids).await
    }
    async fn claim_stale(&self, s: &str, g: &str, c: &str, i: Duration, n: usize) -> Result<Vec<Delivery>, StreamError> {
        self.inner.claim_stale(s, g, c, i, n).await
    }
    async fn pending(&self, s: &str, g: &str) -> Result<Vec<String>, StreamError> {
        self.inner.pending(s, g).await
    }
}

async fn nothing_lost(db_url: &str, audit_url: &str) {
    let db = outbox_db(db_url).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let stream = paved_stream::open(&paved_store::sqlite_url(&dir.path().join("s.db")), 1000).await.expect("stream");
    let name = unique("events");
    stream.ensure_group(&name, "audit").await.expect("group");

    // Three state changes commit their events; the relay is down (crashed
    // between commit and publish).
    for n in 0..3 {
        let txn = db.begin().await.expect("begin");
        txn.execute_unprepared("SELECT 1").await.expect("the state change");
        outbox::enqueue(&txn, &name, &registered(n)).await.expect("enqueue");
        txn.commit().await.expect("commit");
    }
    // A rolled-back change leaves no event behind.
    let txn = db.begin().await.expect("begin");
    outbox::enqueue(&txn, &name, &registered(99)).await.expect("enqueue");
    txn.rollback().await.expect("rollback");

    // A relay that dies after publishing the first event, before deleting anything.
    let faulty: SharedStream = Arc::new(Faulty { inner: stream.clone(), ok: 1, published: AtomicUsize::new(0) });
    assert!(outbox::Relay::new(db.clone(), faulty).relay_once().await.is_err());
    // A healthy relay takes over: everything goes out, the first event twice.
    let relay = outbox::Relay::new(db.clone(), stream.clone());
    assert_eq!(relay.relay_once().await.expect("relay"), 3);
    assert_eq!(relay.relay_once().await.expect("relay"), 0, "published rows are gone from the outbox");

    let got = stream.read(&name, "audit", "c", 100, Duration::from_millis(100)).await.expect("read");
    let ids: Vec<String> = got.iter().map(|d| event::decode(&d.payload).expect("envelope").subject).collect();
    assert_eq!(ids, ["w0", "w0", "w1", "w2"], "at-least-once: every committed event, in order, none of the rolled back");

    // The audit service's consumer keeps each event exactly once: taken as
    // a batch (the duplicate inside it too), then redelivered one by one.
    let audit = paved_store::connect_and_migrate::<paved_audit::migration::Migrator>(audit_url).await.expect("audit db");
    let recorder = paved_audit::Recorder { log: std::sync::Arc::new(paved_audit::log::append::Log::new(audit.clone())) };
    let events: Vec<_> = got.iter().map(|d| event::decode(&d.payload).expect("envelope")).collect();
    use paved_stream::consumer::Handler;
    assert!(recorder.handle_all(&name, &events).await.expect("record a batch"), "the recorder takes batches");
    for event in &events {
        recorder.handle(&name, event).await.expect("record");
    }
    let count = audit
        .query_one_raw(sea_orm::Statement::from_string(audit.get_database_backend(), "SELECT COUNT(*) AS n FROM audit_entries"))
        .await
        .expect("count")
        .expect("row");
    assert_eq!(count.try_get::<i64>("", "n").expect("n"), 3);
    let leaves = audit
        .query_one_raw(sea_orm::Statement::from_string(audit.get_database_backend(), "SELECT COUNT(*) AS n FROM log_leaves"))
        .await
        .expect("count")
        .expect("row");
    assert_eq!(leaves.try_get::<i64>("", "n").expect("n"), 3, "each event one leaf of the log");
}

#[tokio::test]
async fn outbox_loses_nothing_on_postgres() {
    nothing_lost(&postgres_database("it_outbox").await, &postgres_database("it_outbox_audit").await).await;
}

#[tokio::test]
async fn outbox_loses_nothing_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    nothing_lost(&paved_store::sqlite_url(&dir.path().join("p.db")), &paved_store::sqlite_url(&dir.path().join("audit.db"))).await;
}
