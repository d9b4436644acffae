//! The log's count invariant under faults: after a run in which the audit
//! service is killed, Redis is killed and restarted, the network to
//! PostgreSQL is cut and its connections are dropped, events are replayed
//! and entries that are no event arrive, the log's leaves are exactly the
//! distinct events the producers committed, and the entries that were no
//! event are in the dead-letter stream, not lost without a trace.

use crate::audit_log::{AuditProcess, checkpoint_of, leaves_once_all_in};
use paved_integration_tests::{
    Cuttable, OwnRedis, authed, eventually, paved_with, postgres_database, postgres_server, start_broker, text, unique,
};
use paved_proto::audit::v1::audit_service_client::AuditServiceClient;
use paved_proto::events::v1::envelope::Payload;
use paved_proto::provisioner::v1::WorkloadRegistered;
use paved_stream::{SharedStream, event, outbox};
use rand::{
    Rng, SeedableRng,
    rngs::StdRng,
    seq::{IndexedRandom, SliceRandom},
};
use sea_orm::{ConnectionTrait, TransactionTrait};
use std::{collections::HashSet, net::SocketAddr, time::Duration};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// The faults, each injected once per run, in an order and at moments the
/// seed decides.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `kill -9` of the audit service, started again at once.
    KillAudit,
    /// `kill -9` of Redis, started again on its files.
    RestartRedis,
    /// The network to PostgreSQL cut for two seconds.
    CutPostgres,
    /// Every connection of the audit service to its database ended by the
    /// server, as a PostgreSQL restart ends them.
    DropConnections,
    /// Entries that are no event (not an envelope; an envelope without an
    /// id), and committed events published a second time, as a relay that
    /// died between its publish and its delete publishes them.
    Replay,
}

const FAULTS: [Fault; 6] =
    [Fault::KillAudit, Fault::RestartRedis, Fault::CutPostgres, Fault::DropConnections, Fault::Replay, Fault::KillAudit];

/// The run's seed: `PAVED_SEED` to reproduce one, else a new one (printed).
fn seed() -> u64 {
    let seed = std::env::var("PAVED_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("audit faults: PAVED_SEED={seed}");
    seed
}

/// Publishes `payload`, retrying while Redis is away (a fault may be on).
async fn publish(stream: &SharedStream, name: &str, payload: &[u8]) {
    eventually("a publish to go through", Duration::from_secs(30), || async { stream.publish(name, payload).await.ok() }).await;
}

fn registered(n: usize) -> paved_stream::Envelope {
    event::envelope("provisioner", "test.registered", format!("w{n}"), Payload::WorkloadRegistered(WorkloadRegistered::default()))
}

#[tokio::test]
async fn leaves_are_the_distinct_committed_events_after_faults_of_every_kind() {
    let mut rng = StdRng::seed_from_u64(seed());
    let redis_dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let redis = Mutex::new(Some(OwnRedis::start(port, Some(redis_dir.path().to_path_buf())).await));
    let stream_url = format!("redis://127.0.0.1:{port}/?paved_namespace={}", unique("faults"));
    let stream = paved_stream::open(&stream_url, 1_000_000).await.expect("stream");
    let name = paved_stream::stream_name("provisioner");

    let database = postgres_database("it_audit_faults").await;
    let database_name = database.rsplit('/').next().expect("a database name").to_string();
    let pg = Mutex::new(Cuttable::start("127.0.0.1:5432".parse().expect("addr")).await);
    let via_cut = database.replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", pg.lock().await.port), 1);
    assert_ne!(via_cut, database, "the test database URL points at 127.0.0.1:5432");
    let admin = paved_store::connect(&format!("{}/postgres", postgres_server())).await.expect("postgres");

    // The producer: a database with an outbox, and its relay.
    let producer_db =
        paved_store::connect_and_migrate::<paved_provisioner::migration::Migrator>(&postgres_database("it_audit_faults_src").await)
            .await
            .expect("migrate");
    let shutdown = CancellationToken::new();
    let relay = outbox::Relay::new(producer_db.clone(), stream.clone());
    let relay_task = tokio::spawn(relay.clone().run(std::sync::Arc::new(|_| {}), shutdown.clone()));

    let (broker, token, broker_task) = start_broker(&paved_integration_tests::redis_namespace("it_audit_faults").await, &shutdown).await;
    let addr: SocketAddr =
        format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port())
            .parse()
            .expect("addr");
    let mut audit = AuditProcess::spawn(addr, &via_cut, &stream_url, broker);

    // 2,000 events committed in 80 transactions over about 8 s.
    let committed = Mutex::new(Vec::<paved_stream::Envelope>::new());
    let produce = async {
        for batch in 0..80 {
            let events: Vec<_> = (batch * 25..(batch + 1) * 25).map(registered).collect();
            let txn = producer_db.begin().await.expect("begin");
            txn.execute_unprepared("SELECT 1").await.expect("the state change");
            outbox::enqueue_all(&txn, &name, &events).await.expect("enqueue");
            txn.commit().await.expect("commit");
            relay.wake();
            committed.lock().await.extend(events);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let mut faults = FAULTS.to_vec();
    faults.shuffle(&mut rng);
    let delays: Vec<u64> = faults.iter().map(|_| rng.random_range(300..1_300)).collect();
    let mut refused = Vec::new();
    let inject = async {
        for (fault, delay) in faults.iter().zip(&delays) {
            tokio::time::sleep(Duration::from_millis(*delay)).await;
            eprintln!("audit faults: {fault:?} after {delay} ms");
            match fault {
                Fault::KillAudit => audit.kill_and_restart().await,
                Fault::RestartRedis => {
                    let own = redis.lock().await.take().expect("redis");
                    *redis.lock().await = Some(own.restart().await);
                }
                Fault::CutPostgres => {
                    pg.lock().await.cut();
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    pg.lock().await.restore().await;
                }
                Fault::DropConnections => {
                    let ended = admin
                        .query_all_raw(sea_orm::Statement::from_string(
                            sea_orm::DbBackend::Postgres,
                            format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database_name}'"),
                        ))
                        .await
                        .expect("terminate");
                    eprintln!("audit faults: {} connections ended", ended.len());
                }
                Fault::Replay => {
                    let again: Vec<_> = committed.lock().await.choose_multiple(&mut rng, 50).cloned().collect();
                    for envelope in &again {
                        publish(&stream, &name, &event::encode(envelope)).await;
                    }
                    let no_id = paved_stream::Envelope { id: String::new(), ..registered(9_999) };
                    for payload in [b"\x00 not an envelope".to_vec(), event::encode(&no_id)] {
                        publish(&stream, &name, &payload).await;
                        refused.push(payload);
                    }
                }
            }
        }
    };
    tokio::join!(produce, inject);
    let committed: Vec<String> = committed.into_inner().into_iter().map(|e| e.id).collect();
    let expected: HashSet<&String> = committed.iter().collect();
    assert_eq!(expected.len(), 2_000, "the producer committed 2,000 distinct events");

    let channel = eventually("paved-audit to listen", Duration::from_secs(30), || async {
        Channel::from_shared(format!("http://{addr}")).ok()?.connect().await.ok()
    })
    .await;
    let client = AuditServiceClient::new(authed(channel, &token));
    // Every leaf, once every committed event is in (a killed consumer's
    // batch comes back after its claim interval).
    let leaves = leaves_once_all_in(&client, &committed, Duration::from_secs(90)).await;
    // Anything appended late would show up here: wait for a second, then count.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let size = checkpoint_of(addr, leaves.len() as u64).await.1.size();
    assert_eq!(size, leaves.len() as u64, "nothing was appended after the committed events");
    let distinct: HashSet<&String> = leaves.iter().collect();
    assert_eq!(distinct.len(), leaves.len(), "no event is two leaves");
    assert_eq!(distinct, expected, "the leaves are exactly the committed events");

    // What was no event was refused into the dead-letter stream. A batch the
    // killed service held comes back only after its claim interval (30 s),
    // later than newer events: wait until the group has nothing pending.
    eventually("the audit group to have handled every entry", Duration::from_secs(90), || async {
        stream.pending(&name, "audit").await.ok().filter(|p| p.is_empty())
    })
    .await;
    let dead = format!("{name}.dead");
    stream.ensure_group(&dead, "check").await.expect("group");
    let parked = stream.read(&dead, "check", "check", 100, Duration::from_millis(100)).await.expect("read the dead letters");
    let parked: HashSet<Vec<u8>> = parked.into_iter().map(|d| d.payload).collect();
    // A set: a service killed between its copy to the dead-letter stream and
    // its ack copies that entry again when the entry comes back.
    assert_eq!(parked, refused.into_iter().collect::<HashSet<_>>(), "the refused entries, and nothing else, are dead letters");
    assert_eq!(checkpoint_of(addr, size).await.1.size(), size, "and still nothing more in the log");

    let key = text(&paved_with("", &["audit", "key", "--endpoint", &addr.to_string()]).await.stdout).trim().to_string();
    let out = paved_with(&token, &["audit", "verify", "--endpoint", &addr.to_string(), "--key", &key]).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));

    audit.child.start_kill().expect("stop");
    shutdown.cancel();
    relay_task.await.expect("relay");
    broker_task.await.expect("broker").expect("clean stop");
}
