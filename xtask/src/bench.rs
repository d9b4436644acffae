//! Rerunnable benchmarks; each reports its numbers against a baseline
//! measured in the same run.
//!
//! - `up`: `paved up` on an empty data directory until every service and
//!   `hello` are healthy (target < 3 s), against starting `hello` alone.
//! - `stream`: the Redis Streams backend. Throughput of `publish` against
//!   `redis-benchmark` running the same XADD (target ≥ 50%), and
//!   publish → consume latency at a steady 5,000 events/s (target p99 < 5 ms).
//!
//! - `deploy`, `rollback`, `proxy`, `policy`: the deployment pipeline; see
//!   `pipeline.rs`. They run release binaries (`PAVED_BENCH_DEBUG=1` for debug).
//!
//! The measuring side is always an optimised build: started unoptimised (as
//! `cargo xtask bench` is), this tool runs itself again with `--release`.
//!
//! - `looks`: one look's judgement at look 10 and at look 5,000 of a
//!   rollout (see `looks.rs`).
//! - `audit`: the audit log's appends, checkpoints, proofs and offline
//!   check (see `audit.rs`; needs PostgreSQL on 127.0.0.1:5432).
//! - `tokens`, `broker`, `dbcreds`: the secrets broker; see `tokens.rs` and
//!   `dbcreds.rs` (`dbcreds` needs PostgreSQL on 127.0.0.1:5432).
//! - `cost`: wake from zero and schedule passes (see `cost.rs`).
//! - `load`: 1,000 gRPC clients and 10,000 proxy connections at once on
//!   `paved up` and on production mode (the `under_load` integration tests at
//!   that size, optimised).
//! - `switch`: 1,000,000 requests through 50 rollouts and rollbacks on
//!   `paved up`, none dropped (the `switch` integration test at that size).
//!
//! `cargo xtask bench [up|stream|deploy|rollback|proxy|policy|canary|looks|audit|tokens|broker|dbcreds|cost|init|load|switch]` (all by default). Needs Redis on
//! 127.0.0.1:6379 (or `PAVED_BENCH_REDIS_URL`) and `redis-benchmark`.

use crate::measure::{free_port, hello_alone, median, ms};
use anyhow::{Context, bail};
use paved_stream::SharedStream;
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let all = [
        "up", "stream", "deploy", "rollback", "proxy", "policy", "canary", "looks", "audit", "tokens", "broker", "dbcreds", "cost", "init",
        "load", "switch",
    ];
    let which: Vec<&str> = if args.is_empty() { all.to_vec() } else { args.iter().map(String::as_str).collect() };
    let release = std::env::var_os("PAVED_BENCH_DEBUG").is_none();
    // Every benchmark measures from this process too (the token-verifying
    // clients of `broker` and `dbcreds`, the load and timers of `deploy`,
    // `rollback` and `proxy`): `cargo xtask` builds it unoptimised, so it
    // runs again as an optimised build, whichever way it was started.
    if cfg!(debug_assertions) && release {
        let mut again = super::cargo();
        again.args(["run", "--release", "--quiet", "--package", "xtask", "--", "bench"]).args(args);
        return super::run(&mut again);
    }
    // Binaries built elsewhere (`PAVED_BENCH_BIN_DIR`) are used as they are.
    let bins = |release| match std::env::var_os("PAVED_BENCH_BIN_DIR") {
        Some(dir) => Ok(std::path::PathBuf::from(dir)),
        None => super::build_bins(release),
    };
    for bench in which {
        match bench {
            "up" => up()?,
            "stream" => tokio::runtime::Runtime::new()?.block_on(stream())?,
            "deploy" => crate::pipeline::deploy(&bins(release)?)?,
            "rollback" => crate::pipeline::rollback(&bins(release)?)?,
            "proxy" => crate::pipeline::proxy(&bins(release)?)?,
            "broker" => crate::tokens::grpc(&bins(release)?)?,
            "dbcreds" => crate::dbcreds::run(&bins(release)?)?,
            "cost" => crate::cost::run(&bins(release)?)?,
            "init" => crate::init::run(&bins(release)?)?,
            "load" => suite_test(
                release,
                super::UNDER_LOAD,
                &[("PAVED_LOAD_CLIENTS", "1000"), ("PAVED_LOAD_SECONDS", "60"), ("PAVED_LOAD_CONNECTIONS", "10000")],
            )?,
            "switch" => suite_test(false, SWITCH, &[("PAVED_SWITCH_ROLLOUTS", "50"), ("PAVED_SWITCH_REQUESTS", "1000000")])?,
            "policy" => crate::pipeline::policy()?,
            "canary" => crate::canary::run()?,
            "looks" => crate::looks::run()?,
            "audit" => crate::audit::run()?,
            "tokens" => crate::tokens::run()?,
            other => bail!("unknown benchmark {other:?}: expected one of {}", all.join(", ")),
        }
    }
    Ok(())
}

const RUNS: usize = 5;

/// Integration tests (those `filter` names) at the size: the
/// settings `sizes` gives, unless set already. Each fails on what the
/// issue's target forbids. `switch` runs in a debug build, as the suite
/// runs it (its target is a count, not a speed); `load` optimised, unless
/// `PAVED_BENCH_DEBUG`.
fn suite_test(release: bool, filter: &str, sizes: &[(&str, &str)]) -> anyhow::Result<()> {
    super::build_bins(release)?;
    let mut test = super::cargo();
    test.arg("test");
    if release {
        test.arg("--release");
    }
    test.args(["-p", "paved-integration-tests", "--test", "it", "--", filter, "--nocapture", "--test-threads=1"]);
    for (name, size) in sizes.iter().filter(|(name, _)| std::env::var_os(name).is_none()) {
        test.env(name, size);
    }
    super::run(&mut test)
}

const SWITCH: &str = "switch::no_request_is_dropped_through_rollouts_and_rollbacks";

fn up() -> anyhow::Result<()> {
    let bin = super::build_bins(false)?;
    let mut baseline = Vec::new();
    let mut platform = Vec::new();
    for run in 0..RUNS {
        baseline.push(hello_alone(&bin)?);
        let t = up_once(&bin)?;
        eprintln!("bench up: run {}: paved up {:.0} ms", run + 1, t.as_secs_f64() * 1000.0);
        platform.push(t);
    }
    let (b, p) = (median(baseline), median(platform.clone()));
    let max = platform.iter().max().copied().unwrap_or_default();
    println!("bench up: paved up on an empty data directory → 5 services + hello healthy");
    println!("  median {:.0} ms, max {:.0} ms over {RUNS} runs (target < 3000 ms)", p.as_secs_f64() * 1000.0, max.as_secs_f64() * 1000.0);
    println!(
        "  baseline: hello alone, spawn → healthy: median {:.1} ms; ratio {:.1}×",
        b.as_secs_f64() * 1000.0,
        p.as_secs_f64() / b.as_secs_f64()
    );
    if max >= Duration::from_secs(3) {
        bail!("paved up took {max:?}, over the 3 s target");
    }
    Ok(())
}

/// Spawns `paved up` on a fresh data directory and times it until it prints
/// that everything is healthy.
fn up_once(bin: &Path) -> anyhow::Result<Duration> {
    let dir = std::env::temp_dir().join(format!("paved-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let start = Instant::now();
    let mut child = Command::new(bin.join("paved"))
        .args(["up", "--data-dir"])
        .arg(&dir)
        .args(["--listen", &format!("127.0.0.1:{}", free_port()?)])
        .env("RUST_LOG", "warn")
        .env("PAVED_CONFIG_DIR", dir.join("cli"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("start paved up")?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut elapsed = None;
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        if line?.starts_with("Paved is up") {
            elapsed = Some(start.elapsed());
            break;
        }
    }
    // Keep reading: paved prints more, and a closed pipe would fail it.
    let drain = std::thread::spawn(move || lines.count());
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let status = child.wait()?;
    let _ = drain.join();
    let _ = std::fs::remove_dir_all(&dir);
    match elapsed {
        Some(t) if status.success() => Ok(t),
        Some(_) => bail!("paved up exited with {status} on SIGTERM"),
        None => bail!("paved up exited ({status}) before reporting that it was up"),
    }
}

const PAYLOAD: usize = 256;
const TOTAL: usize = 200_000;
const CLIENTS: usize = 50;

async fn stream() -> anyhow::Result<()> {
    let url = std::env::var("PAVED_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let (host, port) = host_port(&url)?;
    let namespace = format!("bench{}", std::process::id());
    let stream = paved_stream::open(&format!("{url}/?paved_namespace={namespace}"), 100_000).await.context("connect to Redis")?;

    // Baseline: redis-benchmark doing the XADD publish does, same payload size,
    // same number of clients, no pipelining.
    let payload = "x".repeat(PAYLOAD);
    let key = format!("{namespace}:baseline");
    let out = Command::new("redis-benchmark")
        .args(["-h", &host, "-p", &port, "-n", &TOTAL.to_string(), "-c", &CLIENTS.to_string(), "-q", "--csv"])
        .args(["XADD", &key, "MAXLEN", "~", "100000", "*", "e", &payload])
        .output()
        .context("run redis-benchmark (Debian package redis-tools)")?;
    let baseline = parse_rps(&String::from_utf8_lossy(&out.stdout)).context("read redis-benchmark's result")?;

    let name = "throughput";
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let stream = stream.clone();
        let payload = payload.clone().into_bytes();
        tasks.spawn(async move {
            for _ in 0..TOTAL / CLIENTS {
                stream.publish(name, &payload).await?;
            }
            Ok::<_, paved_stream::StreamError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let ours = TOTAL as f64 / start.elapsed().as_secs_f64();
    println!("bench stream: publish throughput ({TOTAL} events of {PAYLOAD} B, {CLIENTS} concurrent publishers)");
    println!("  paved-stream {ours:.0}/s, redis-benchmark XADD {baseline:.0}/s: {:.0}% (target ≥ 50%)", 100.0 * ours / baseline);

    let (p50, p99, max, n) = latency(stream.clone(), 5_000, Duration::from_secs(5)).await?;
    println!("bench stream: publish → consume latency at 5,000 events/s for 5 s ({n} events)");
    println!("  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 < 5 ms)", ms(p50), ms(p99), ms(max));
    let _ = Command::new("redis-cli")
        .args(["-h", &host, "-p", &port, "DEL", &key, &format!("{namespace}:{name}"), &format!("{namespace}:latency")])
        .output();
    if ours < baseline * 0.5 || p99 >= Duration::from_millis(5) {
        bail!("a stream target was missed");
    }
    Ok(())
}

fn host_port(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url.strip_prefix("redis://").context("PAVED_BENCH_REDIS_URL must be redis://host:port")?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "6379"));
    Ok((host.to_string(), port.to_string()))
}

/// redis-benchmark --csv prints `"test","rps",...` then one row per test.
fn parse_rps(csv: &str) -> Option<f64> {
    let row = csv.lines().find(|l| !l.starts_with("\"test\"") && l.contains(','))?;
    row.split(',').nth(1)?.trim_matches('"').parse().ok()
}

/// Publishes at `rate` per second for `duration` while a consumer group reads;
/// returns (p50, p99, max, count) of publish → delivery time.
async fn latency(stream: SharedStream, rate: u64, duration: Duration) -> anyhow::Result<(Duration, Duration, Duration, usize)> {
    let name = "latency";
    stream.ensure_group(name, "bench").await?;
    let origin = Instant::now();
    let total = (rate * duration.as_secs()) as usize;
    let consumer = {
        let stream = stream.clone();
        tokio::spawn(async move {
            let mut samples = Vec::with_capacity(total);
            while samples.len() < total {
                let batch = stream.read(name, "bench", "c", 1000, Duration::from_secs(2)).await?;
                if batch.is_empty() {
                    break;
                }
                let now = origin.elapsed();
                let mut ids = Vec::with_capacity(batch.len());
                for d in batch {
                    let sent = u64::from_le_bytes(d.payload[..8].try_into().unwrap_or_default());
                    samples.push(now.saturating_sub(Duration::from_nanos(sent)));
                    ids.push(d.id);
                }
                stream.ack(name, "bench", &ids).await?;
            }
            Ok::<_, paved_stream::StreamError>(samples)
        })
    };
    let publisher = Arc::new(stream);
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut inflight = tokio::task::JoinSet::new();
    for _ in 0..total {
        ticker.tick().await;
        let mut payload = (origin.elapsed().as_nanos() as u64).to_le_bytes().to_vec();
        payload.resize(PAYLOAD, b'x');
        let publisher = publisher.clone();
        inflight.spawn(async move { publisher.publish(name, &payload).await });
    }
    while let Some(r) = inflight.join_next().await {
        r??;
    }
    let mut samples = consumer.await??;
    if samples.len() < total {
        bail!("only {} of {total} events were consumed", samples.len());
    }
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Ok((p(0.50), p(0.99), samples[samples.len() - 1], samples.len()))
}
