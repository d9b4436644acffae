//! `cargo xtask bench cost`: the cost scheduler's targets (issue #24), each
//! against a baseline measured in the same run.
//!
//! - Wake from zero: a request to a sleeping `hello` until the first byte
//!   of its answer (target < 1 s, and within 1.5× of the baseline: `hello`
//!   spawned alone until its health check answers), and what a sleeping
//!   workload holds meanwhile (no process; the proxy's socket).
//! - Schedules: one evaluation pass (`decide`) over 10,000 workloads with
//!   their schedules (target < 100 ms), against a pass that only reads the
//!   same workloads' fields. The provisioner's listing is not in it.
//! - Attribution: a report by team from 1,000,000 usage samples (target
//!   < 1 s), on PostgreSQL and the embedded SQLite, against one scan of the
//!   same samples.

use crate::{
    measure::{hello_alone, median, ms},
    pipeline::{Platform, deploy_version, percentile},
};
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use paved_cost_scheduler::{
    attribute::GroupBy,
    decide::{Seen, decide},
    prices::PriceSheet,
    report,
};
use paved_proto::provisioner::v1::{GetWorkloadRequest, PowerReason, SleepWorkloadRequest};
use sea_orm::ConnectionTrait;
use std::{
    path::Path,
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAKES: usize = 15;

pub fn run(bin: &Path) -> anyhow::Result<()> {
    schedules()?;
    attribution()?;
    wake(bin)
}

fn wake(bin: &Path) -> anyhow::Result<()> {
    let platform = Platform::start(bin, "cost")?;
    let (mut woken, mut alone) = (Vec::new(), Vec::new());
    tokio::runtime::Runtime::new()?.block_on(async {
        let mut client = platform.client().await?;
        let endpoint = deploy_version(&mut client, "nap", "v1", "").await?;
        for run in 0..WAKES {
            let sleep = SleepWorkloadRequest {
                environment: "bench".into(),
                workload: "nap".into(),
                reason: PowerReason::Person as i32,
                note: "bench".into(),
                ..Default::default()
            };
            client.sleep_workload(sleep).await?;
            // Asleep: nothing runs but the proxy, which still listens.
            let pids = processes("nap")?;
            if !pids.is_empty() {
                bail!("a sleeping workload still runs processes {pids:?}");
            }
            tokio::net::TcpStream::connect(&endpoint).await.context("the sleeping workload's proxy listens")?;
            if run == 0 {
                let w = client.get_workload(GetWorkloadRequest { environment: "bench".into(), name: "nap".into() }).await?.into_inner();
                println!(
                    "bench cost: asleep, nap has no process (none with PAVED_WORKLOAD=nap in /proc) and its proxy listens on {} (sleeping: {})",
                    endpoint,
                    w.workload.is_some_and(|w| w.sleeping)
                );
            }
            alone.push(hello_alone(bin)?);
            woken.push(first_byte(&endpoint).await?);
        }
        Ok::<(), anyhow::Error>(())
    })?;
    let (p50, p99, max) = (percentile(&mut woken, 0.5), percentile(&mut woken, 0.99), woken.iter().max().copied().unwrap_or_default());
    let baseline = median(alone);
    let ratio = ms(p50) / ms(baseline);
    println!("bench cost: wake from zero, {WAKES} times: a request to sleeping hello → first byte of its answer");
    println!("  p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target < 1000 ms)", ms(p50), ms(p99), ms(max));
    println!("  baseline: hello spawned alone until healthy: median {:.1} ms; p50 / baseline {ratio:.2}× (target ≤ 1.5×)", ms(baseline));
    if max >= Duration::from_secs(1) {
        bail!("a wake took {max:?}, over the 1 s target");
    }
    if ratio > 1.5 {
        bail!("a wake takes {ratio:.2}× starting hello alone, over the 1.5× target");
    }
    Ok(())
}

/// The time from sending a request to the first byte of the answer.
async fn first_byte(addr: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await?;
    let mut first = [0u8; 1];
    s.read_exact(&mut first).await.context("an answer")?;
    let took = start.elapsed();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await?;
    let answer = String::from_utf8_lossy(&rest);
    if !answer.starts_with("TTP/1.1 200") || !answer.ends_with("hello from v1\n") {
        bail!("the woken workload answered {answer:?}");
    }
    Ok(took)
}

/// Processes whose environment names the workload (the runtime sets
/// `PAVED_WORKLOAD`).
fn processes(workload: &str) -> anyhow::Result<Vec<u32>> {
    let needle = format!("PAVED_WORKLOAD={workload}\0");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")?.filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if String::from_utf8_lossy(&environ).contains(&needle) {
            found.push(pid);
        }
    }
    Ok(found)
}

const WORKLOADS: usize = 10_000;
const PASSES: usize = 20;

fn schedules() -> anyhow::Result<()> {
    let shapes = [
        "  uptime: \"Mon-Fri 07:30-20:30 Europe/Berlin\"\n  idle_after: 30m\n",
        "  downtime: \"Sat-Sun 00:00-24:00 America/New_York, Mon-Fri 22:00-06:00 America/New_York\"\n",
        "  uptime: [\"Mon-Fri 08:00-12:00 Asia/Tokyo\", \"Mon-Fri 13:00-18:00 Asia/Tokyo\"]\n  exclude: [\"2026-12-24\", \"2026-12-25\", \"2026-12-31\"]\n",
        "  idle_after: 15m\n",
    ];
    let now: DateTime<Utc> = Utc::now();
    let workloads: Vec<_> = (0..WORKLOADS)
        .map(|i| {
            let yaml = format!("name: w{i}\ncommand: [hello]\nschedule:\n{}", shapes[i % shapes.len()]);
            let schedule = paved_spec::parse(&yaml, "paved.yaml").map(|s| s.schedule.context("a schedule"));
            let seen = Seen {
                sleeping: i % 3 == 0,
                sleep_reason: if i % 3 == 0 { "schedule".into() } else { String::new() },
                hold_until_ms: (i % 50 == 0).then(|| now.timestamp_millis() + 3_600_000),
                last_request_ms: (i % 2 == 0).then(|| now.timestamp_millis() - (i as i64 % 3_600) * 1000),
                awake_since_ms: now.timestamp_millis() - 7_200_000,
            };
            Ok::<_, anyhow::Error>((schedule??, seen))
        })
        .collect::<Result<_, _>>()?;
    let (mut passes, mut reads) = (Vec::new(), Vec::new());
    let mut acts = 0;
    for _ in 0..PASSES {
        let start = Instant::now();
        let mut touched = 0usize;
        for (_, seen) in &workloads {
            touched += usize::from(std::hint::black_box(seen).sleeping) + std::hint::black_box(seen).sleep_reason.len();
        }
        std::hint::black_box(touched);
        reads.push(start.elapsed());
        let start = Instant::now();
        acts = workloads.iter().filter(|(schedule, seen)| decide(Utc::now(), schedule, seen).is_some()).count();
        passes.push(start.elapsed());
    }
    let (pass, read) = (median(passes.clone()), median(reads));
    let max = passes.iter().max().copied().unwrap_or_default();
    println!("bench cost: one schedule pass over {WORKLOADS} workloads ({acts} commands to send), {PASSES} passes");
    println!("  median {:.2} ms, max {:.2} ms (target < 100 ms)", ms(pass), ms(max));
    println!("  baseline: reading the same workloads' fields: median {:.3} ms; pass / baseline {:.0}×", ms(read), ms(pass) / ms(read));
    if max >= Duration::from_millis(100) {
        bail!("a schedule pass took {max:?}, over the 100 ms target");
    }
    Ok(())
}

const SAMPLES: i64 = 1_000_000;
const REVISIONS: i64 = 1_000;
/// Samples are 15 s apart per replica, as the sampler takes them.
const SAMPLE_MS: i64 = 15_000;
const REPORTS: usize = 5;

/// A report from 1,000,000 samples of 1,000 revisions (20 teams, 3
/// environments), on PostgreSQL and on the embedded SQLite, against one
/// scan of the same samples (`COUNT` and `SUM` over the window) — the
/// least any report must read.
fn attribution() -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(async {
        let server = std::env::var("PAVED_BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        let pg = format!("{server}/paved_bench_cost_{suffix}");
        let dir = std::env::temp_dir().join(format!("paved-bench-cost-{suffix}"));
        std::fs::create_dir_all(&dir)?;
        let result = async {
            println!("bench cost: a report (by team) from {SAMPLES} usage samples of {REVISIONS} revisions, {REPORTS} reports each");
            let mut missed = Vec::new();
            for (name, url) in [("PostgreSQL", pg.clone()), ("SQLite (embedded)", paved_store::sqlite_url(&dir.join("cost.db")))] {
                let db = paved_store::connect_and_migrate::<paved_cost_scheduler::migration::Migrator>(&url).await?;
                let (start, end) = fill(&db).await?;
                let (mut reports, mut scans) = (Vec::new(), Vec::new());
                for _ in 0..REPORTS {
                    let t = Instant::now();
                    let scan =
                        format!("SELECT COUNT(*) AS n, SUM(cpu_ms) AS cpu FROM usage_samples WHERE at_ms > {start} AND at_ms <= {end}");
                    db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), scan)).await?.context("a count")?;
                    scans.push(t.elapsed());
                    let t = Instant::now();
                    let r = report::report(&db, &PriceSheet::default(), GroupBy::Team, start, end).await?;
                    reports.push(t.elapsed());
                    anyhow::ensure!(r.total.samples == SAMPLES as u64, "the report counted {} samples", r.total.samples);
                    anyhow::ensure!(r.lines.len() == 20, "{} teams", r.lines.len());
                }
                let (report, scan) = (median(reports.clone()), median(scans));
                let max = reports.iter().max().copied().unwrap_or_default();
                println!(
                    "  {name}: median {:.0} ms, max {:.0} ms (target < 1,000 ms); one scan of the samples {:.0} ms ({:.2}×)",
                    ms(report),
                    ms(max),
                    ms(scan),
                    ms(report) / ms(scan)
                );
                if max >= Duration::from_secs(1) {
                    missed.push(format!("{name}: {max:?}"));
                }
            }
            anyhow::ensure!(missed.is_empty(), "a report over 1 s: {}", missed.join("; "));
            Ok(())
        }
        .await;
        if let Ok(postgres) = paved_store::connect(&format!("{server}/postgres")).await {
            let _ = postgres.execute_unprepared(&format!("DROP DATABASE IF EXISTS paved_bench_cost_{suffix} WITH (FORCE)")).await;
        }
        let _ = std::fs::remove_dir_all(&dir);
        result
    })
}

/// Revisions, their running intervals and the samples, written by the
/// database itself (one recursive query each: both PostgreSQL and SQLite
/// run it); returns the window that holds every sample.
async fn fill(db: &sea_orm::DatabaseConnection) -> anyhow::Result<(i64, i64)> {
    let start = Utc::now().timestamp_millis() - 48 * 3_600_000;
    let end = start + (SAMPLES / REVISIONS + 1) * SAMPLE_MS;
    let numbers = |n: i64| format!("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {})", n - 1);
    for statement in [
        format!(
            "{} INSERT INTO revision_costs (revision_id, environment, workload, team, replicas, cpu_request, memory_request) \
             SELECT 'rev-' || i, 'env-' || (i % 3), 'w-' || i, 'team-' || (i % 20), 1 + i % 3, 0.25, 134217728.0 FROM n",
            numbers(REVISIONS)
        ),
        format!("{} INSERT INTO running_intervals (revision_id, from_ms) SELECT 'rev-' || i, {start} FROM n", numbers(REVISIONS)),
        format!(
            "{} INSERT INTO usage_samples (at_ms, revision_id, instance, interval_ms, cpu_ms, memory_bytes, memory_peak_bytes) \
             SELECT {start} + (i / {REVISIONS} + 1) * {SAMPLE_MS}, 'rev-' || (i % {REVISIONS}), 0, {SAMPLE_MS}, i % 500, \
             50000000 + i % 1000, 60000000 FROM n",
            numbers(SAMPLES)
        ),
    ] {
        db.execute_unprepared(&statement).await?;
    }
    Ok((start, end))
}
