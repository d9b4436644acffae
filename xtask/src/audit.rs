//! `cargo xtask bench audit`: the audit log (see `paved_audit::log`).
//!
//! - Durable appends, on PostgreSQL and on SQLite (embedded mode): 100,000
//!   events in the consumer's batches of 128, each batch one transaction of
//!   leaves, tiles, tree state and query rows, as the service appends them.
//!   Baseline, same run: plain inserts of the same rows (query rows and
//!   leaves, one transaction per batch), with no tree. Target ≥ 20,000/s.
//! - Append → covered by a signed checkpoint, at a steady 5,000 events/s
//!   for 10 s on PostgreSQL: target p99 < 2 s. (From the append's start;
//!   the stream's own publish → consume hop is `bench stream`'s.)
//! - Inclusion and consistency proofs in a 10,000,000-entry tree on
//!   PostgreSQL, server side: target p99 < 1 ms.
//! - `paved audit verify --offline`'s check of 1,000,000 entries in a
//!   directory: target < 10 s; baseline, hashing the same entries alone.

use paved_audit::log::{
    append::Log,
    chains, entry,
    note::LogKey,
    store,
    tiles::{Edge, TileRef, WIDTH},
    verify,
};
use paved_proto::{events::v1::envelope::Payload, provisioner::v1::RevisionDeployed};
use paved_stream::Envelope;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

const EVENTS: usize = 100_000;
const BATCH: usize = 128;

pub fn run() -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let server = std::env::var("PAVED_BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        let dir = crate::measure::work_dir("audit")?;
        let mut databases = Vec::new();
        let result = async {
            let events: Vec<Envelope> = (0..EVENTS).map(event).collect();
            println!("bench audit: durable appends of {EVENTS} events in batches of {BATCH}");
            let mut failed = Vec::new();
            for (name, sqlite) in [("PostgreSQL", false), ("SQLite (embedded)", true)] {
                let url = |what: &str| {
                    if sqlite {
                        paved_store::sqlite_url(&dir.join(format!("{what}.db")))
                    } else {
                        format!("{server}/paved_bench_audit_{what}_{suffix}")
                    }
                };
                let (log_url, plain_url) = (url("log"), url("plain"));
                databases.extend([log_url.clone(), plain_url.clone()]);
                let plain = paved_store::connect_and_migrate::<paved_audit::migration::Migrator>(&plain_url).await?;
                let log = paved_store::connect_and_migrate::<paved_audit::migration::Migrator>(&log_url).await?;
                let base = rate(plain_inserts(&plain, &events).await?);
                let appended = rate(log_appends(&log, &events).await?);
                println!(
                    "  {name}: the log {appended:.0}/s; plain inserts of the same rows {base:.0}/s ({:.0}%) (target ≥ 20,000/s)",
                    100.0 * appended / base
                );
                if appended < 20_000.0 {
                    failed.push(format!("{name} appends at {appended:.0}/s"));
                }
            }
            let db = paved_store::connect_and_migrate::<paved_audit::migration::Migrator>(&format!(
                "{server}/paved_bench_audit_latency_{suffix}"
            ))
            .await?;
            databases.push(format!("{server}/paved_bench_audit_latency_{suffix}"));
            let p99 = checkpoint_latency(db).await?;
            println!("  append → signed checkpoint at 5,000 events/s for 10 s: p99 {:.0} ms (target < 2,000 ms)", p99.as_secs_f64() * 1e3);
            if p99 >= Duration::from_secs(2) {
                failed.push(format!("checkpoint p99 {p99:?}"));
            }
            let url = format!("{server}/paved_bench_audit_proofs_{suffix}");
            databases.push(url.clone());
            let (inclusion, consistency) = proofs(&url, 10_000_000).await?;
            println!(
                "  proofs in a tree of 10,000,000, server side: inclusion p99 {:.3} ms, consistency p99 {:.3} ms (target < 1 ms)",
                inclusion.as_secs_f64() * 1e3,
                consistency.as_secs_f64() * 1e3
            );
            if inclusion >= Duration::from_millis(1) || consistency >= Duration::from_millis(1) {
                failed.push("proof p99 over 1 ms".to_string());
            }
            let (checked, hashed) = offline(&dir.join("copy"), 1_000_000).await?;
            println!(
                "  verify --offline of 1,000,000 entries: {:.2} s; hashing the same entries alone {:.2} s ({:.1}×) (target < 10 s)",
                checked.as_secs_f64(),
                hashed.as_secs_f64(),
                checked.as_secs_f64() / hashed.as_secs_f64()
            );
            if checked >= Duration::from_secs(10) {
                failed.push(format!("offline verify {checked:?}"));
            }
            anyhow::ensure!(failed.is_empty(), "missed: {}", failed.join("; "));
            Ok(())
        }
        .await;
        for url in databases.iter().filter(|u| u.starts_with("postgres")) {
            let (base, name) = url.rsplit_once('/').unwrap_or_default();
            if let Ok(postgres) = paved_store::connect(&format!("{base}/postgres")).await {
                let _ = postgres.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        result
    })
}

fn rate(d: Duration) -> f64 {
    EVENTS as f64 / d.as_secs_f64()
}

/// An event the size of a real deployment's.
fn event(i: usize) -> Envelope {
    let payload = Payload::RevisionDeployed(RevisionDeployed {
        workload: format!("shop-{}", i % 50),
        environment: "prod".into(),
        revision_id: uuid::Uuid::new_v4().to_string(),
        number: i as i64,
        spec_digest: format!("sha256:{i:064x}"),
    });
    paved_stream::event::envelope(
        "provisioner",
        "paved.provisioner.v1.revision.deployed",
        format!("environments/prod/workloads/shop-{}", i % 50),
        payload,
    )
}

async fn log_appends(db: &DatabaseConnection, events: &[Envelope]) -> anyhow::Result<Duration> {
    let log = Log::new(db.clone());
    let start = Instant::now();
    for batch in events.chunks(BATCH) {
        log.append("paved.provisioner", batch).await?;
    }
    Ok(start.elapsed())
}

async fn plain_inserts(db: &DatabaseConnection, events: &[Envelope]) -> anyhow::Result<Duration> {
    use prost::Message;
    let start = Instant::now();
    for (n, batch) in events.chunks(BATCH).enumerate() {
        let txn = db.begin().await?;
        let ids: Vec<&str> = batch.iter().map(|e| e.id.as_str()).collect();
        // The same rows the log writes, without the tree, the dedupe and
        // the chains' heads.
        let first = (n * BATCH) as u64;
        let now = chrono::Utc::now().timestamp_millis();
        let events: Vec<&Envelope> = batch.iter().collect();
        let built = entry::leaves(
            &events,
            "paved.provisioner",
            paved_proto::timestamp_from_millis(now),
            first,
            &Default::default(),
            &mut Default::default(),
        );
        let leaves: Vec<Vec<u8>> = built.iter().map(|l| l.entry.encode_to_vec()).collect();
        store::insert_leaves(&txn, first, &ids, &leaves).await?;
        txn.execute(&chains::rows("paved.provisioner", first, &built, now)).await?;
        txn.commit().await?;
    }
    Ok(start.elapsed())
}

/// p99 of append start → the first signed checkpoint covering it.
async fn checkpoint_latency(db: DatabaseConnection) -> anyhow::Result<Duration> {
    let log = Arc::new(Log::new(db.clone()));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let signer = tokio::spawn(log.clone().run(paved_seal::RootKey::from_bytes(&rand::random()), "bench/audit".into(), shutdown.clone()));
    let appended = Arc::new(std::sync::Mutex::new(Vec::<(u64, Instant)>::new()));
    let seen = {
        let (db, shutdown) = (db.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !shutdown.is_cancelled() {
                if let Ok(Some((size, _, _))) = store::latest_checkpoint(&db).await
                    && seen.last().is_none_or(|(s, _)| *s < size)
                {
                    seen.push((size, Instant::now()));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen
        })
    };
    // 50 events every 10 ms.
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut size = 0u64;
    for n in 0..1_000 {
        tick.tick().await;
        let batch: Vec<Envelope> = (n * 50..n * 50 + 50).map(event).collect();
        let start = Instant::now();
        size += log.append("paved.provisioner", &batch).await? as u64;
        appended.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push((size, start));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    shutdown.cancel();
    let seen = seen.await?;
    signer.await?;
    let appended = appended.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let mut latencies: Vec<Duration> = Vec::new();
    for (size, start) in appended {
        let (_, at) = seen.iter().find(|(s, _)| *s >= size).ok_or_else(|| anyhow::anyhow!("no checkpoint covers {size}"))?;
        latencies.push(at.saturating_duration_since(start));
    }
    Ok(p99(latencies))
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

/// Builds a tree of `size` leaves (tiles only), then times proofs.
async fn proofs(url: &str, size: u64) -> anyhow::Result<(Duration, Duration)> {
    let db = paved_store::connect_and_migrate::<paved_audit::migration::Migrator>(url).await?;
    let started = Instant::now();
    let mut edge = Edge::default();
    let mut pending = Vec::new();
    let mut root = tlog_tiles::EMPTY_HASH;
    for start in (0..size).step_by(65_536) {
        let leaves: Vec<Vec<u8>> = (start..(start + 65_536).min(size)).map(|i| i.to_be_bytes().to_vec()).collect();
        let appended = edge.append(&leaves).map_err(|e| anyhow::anyhow!("{e}"))?;
        root = appended.root;
        pending.extend(appended.tiles);
        if pending.len() > 2_000 {
            store::put_tiles(&db, &pending).await?;
            pending.clear();
        }
    }
    store::put_tiles(&db, &pending).await?;
    store::set_state(&db, store::State { size, root }).await?;
    println!("  (a tree of {size} built and stored in {:.0} s)", started.elapsed().as_secs_f64());
    let log = Log::new(db);
    let (mut inclusion, mut consistency) = (Vec::new(), Vec::new());
    for _ in 0..1_000 {
        let index = rand::random::<u64>() % size;
        let start = Instant::now();
        std::hint::black_box(log.inclusion(index, size).await?);
        inclusion.push(start.elapsed());
        let from = 1 + rand::random::<u64>() % (size - 1);
        let start = Instant::now();
        std::hint::black_box(log.consistency(from, size).await?);
        consistency.push(start.elapsed());
    }
    Ok((p99(inclusion), p99(consistency)))
}

/// A log of `size` entries written to `dir` as `paved audit fetch` would,
/// then checked: (the check, hashing the entries alone).
async fn offline(dir: &std::path::Path, size: u64) -> anyhow::Result<(Duration, Duration)> {
    let key = LogKey::new("bench/audit", &rand::random()).map_err(anyhow::Error::msg)?;
    let mut edge = Edge::default();
    let mut root = tlog_tiles::EMPTY_HASH;
    let entry = |i: u64| -> Vec<u8> { prost::Message::encode_to_vec(&event(i as usize)) };
    for n in 0..size.div_ceil(WIDTH) {
        let entries: Vec<Vec<u8>> = (n * WIDTH..((n + 1) * WIDTH).min(size)).map(entry).collect();
        let bundle = verify::bundle(&entries).ok_or_else(|| anyhow::anyhow!("an entry over 64 KiB"))?;
        write(dir, &TileRef { level: None, index: n, width: entries.len() as u32 }.path(), &bundle)?;
        let appended = edge.append(&entries).map_err(|e| anyhow::anyhow!("{e}"))?;
        root = appended.root;
        for (level, index, data) in appended.tiles {
            write(dir, &TileRef { level: Some(level), index, width: (data.len() / 32) as u32 }.path(), &data)?;
        }
    }
    write(dir, "checkpoint", key.checkpoint(size, root).map_err(anyhow::Error::msg)?.as_bytes())?;
    let started = Instant::now();
    let outcome = verify::verify(&verify::Directory(dir.to_path_buf()), &[key.verifier_key()], &[]).await?;
    let checked = started.elapsed();
    anyhow::ensure!(outcome.as_ref().is_ok_and(|v| v.size == size), "the copy did not verify: {outcome:?}");
    let started = Instant::now();
    for n in 0..size.div_ceil(WIDTH) {
        let bundle = std::fs::read(dir.join(TileRef { level: None, index: n, width: (size - n * WIDTH).min(WIDTH) as u32 }.path()))?;
        for e in verify::bundle_entries(&bundle).unwrap_or_default() {
            std::hint::black_box(tlog_tiles::record_hash(&e));
        }
    }
    Ok((checked, started.elapsed()))
}

fn write(dir: &std::path::Path, path: &str, data: &[u8]) -> anyhow::Result<()> {
    let file = dir.join(path);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(file, data)?;
    Ok(())
}
