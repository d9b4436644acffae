//! Under fire (`cargo xtask chaos [--minutes N] [--seed S]`): compose.yaml's
//! platform as processes, five services on PostgreSQL and Redis over mTLS
//! (see `compose`; here a PostgreSQL and a Redis of the run's own, see
//! `backends` and `OwnRedis`, and every service, PostgreSQL and Redis reached through a
//! link the run can cut, see `link`), as on a machine or under systemd with
//! `KillMode=process`: the data plane is a process of its own that outlives
//! the provisioner (in compose's containers it shares the provisioner's, see
//! docs/limits.md). A workload under steady load is never rolled,
//! and another rolled forward (good canaries) and back (bad ones, 50% of
//! answers 5xx) one rollout after another under load of its own. Meanwhile
//! faults come at seeded random moments (see `faults`): services killed
//! with SIGKILL (the provisioner mid-step included) and started again as
//! compose's `restart: unless-stopped` would, PostgreSQL crashed and
//! started again, Redis killed and started again, the network to one of them cut for
//! seconds. Then each invariant is one line, `PASS` or `FAIL`:
//! - no request to the steady workload failed or hung, and it was served
//!   all along (the data plane serves whatever happens to the control
//!   plane);
//! - every rollout ended, promoted or rolled back, none stuck, and they
//!   went both ways;
//! - no bad canary was promoted;
//! - no service exited but by the faults;
//! - the event flow (see `invariants`): every outbox drained, every
//!   consumer group through every stream, every event in the audit log,
//!   which verifies;
//! - revoked tokens refused everywhere in time (see `tokens`), and no
//!   leased database role outliving its lease (see `leases`).
//!
//! The seed replays the faults (which service, when, for how long), not
//! what the platform was doing at each moment.
//!
//! `PAVED_CHAOS_SECONDS` (60 by default, as the suite runs it) and
//! `PAVED_CHAOS_SEED` (random by default, and printed: a failing seed
//! replays the same faults at the same moments) set the run.

mod backends;
mod faults;
mod invariants;
mod leases;
mod link;
mod tokens;

use crate::{
    compose::{Platform, Wiring, compose_file},
    prometheus::free_port,
};
use backends::Postgres;
use faults::{Schedule, Targets};
use invariants::Checks;
use link::Link;
use paved_integration_tests::{Load, OwnRedis, endpoint_in_status, eventually, paved_env};
use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;

const STEADY: &str = "name: steady\ncommand: [hello]\nhealth:\n  path: /healthz\nenv:\n  HELLO_VERSION: v1\n";

/// `churn` at `version`; a bad one answers half its requests 5xx.
fn churn(version: u32, bad: bool) -> String {
    let errors = if bad { "0.5" } else { "0" };
    format!(
        "name: churn\ncommand: [hello]\nhealth:\n  path: /healthz\nrollout:\n  steps: [50, 100]\n  interval: 2s\nenv:\n  HELLO_VERSION: v{version}\n  HELLO_ERROR_RATE: \"{errors}\"\n"
    )
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

/// The `paved` CLI as an operator runs it against this platform.
#[derive(Clone)]
struct Operator {
    env: Vec<(&'static str, String)>,
    endpoint: String,
}

impl Operator {
    async fn run(&self, args: &[&str]) -> std::process::Output {
        self.at(&self.endpoint, args).await
    }

    /// `paved` against another service's endpoint.
    async fn at(&self, endpoint: &str, args: &[&str]) -> std::process::Output {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        paved_env(&env, &[args, &["--endpoint", endpoint]].concat()).await
    }

    /// `paved deploy --detach` until the provisioner takes it (it may be
    /// down); the rollout's id. A deploy it took but did not answer (killed
    /// in between) is unchanged when sent again: its rollout is the newest.
    async fn deploy(&self, dir: &Path, workload: &str) -> String {
        let dir = dir.to_str().expect("path");
        eventually("the provisioner to take a deploy", Duration::from_secs(60), || async {
            let out = self.run(&["deploy", dir, "--env", "dev", "--detach", "--output", "json"]).await;
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            match json["rollout_id"].as_str() {
                Some(id) if !id.is_empty() => Some(id.to_string()),
                _ => {
                    let out = self.run(&["rollout", "list", workload, "--env", "dev", "--output", "json"]).await;
                    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
                    listed.as_array()?.first()?["id"].as_str().map(str::to_string)
                }
            }
        })
        .await
    }

    /// A rollout's state (`promoted`, `rolled_back`, …); None while the
    /// provisioner cannot say.
    async fn state(&self, id: &str) -> Option<String> {
        self.rollout(id).await.and_then(|json| json["state"].as_str().map(str::to_string))
    }

    /// `paved rollout get` as JSON; None while the provisioner cannot say.
    async fn rollout(&self, id: &str) -> Option<serde_json::Value> {
        let out = self.run(&["rollout", "get", id, "--output", "json"]).await;
        serde_json::from_slice(&out.stdout).ok()
    }

    /// A workload's endpoint, from `paved status`.
    async fn endpoint(&self, name: &str) -> String {
        eventually(&format!("{name}'s endpoint"), Duration::from_secs(60), || async {
            endpoint_in_status(&self.run(&["status", "--output", "json"]).await.stdout, name)
        })
        .await
    }
}

#[tokio::test]
async fn under_fire_the_platform_keeps_its_invariants() {
    let seconds = setting("PAVED_CHAOS_SECONDS", 60);
    let seed = setting("PAVED_CHAOS_SEED", rand::random::<u32>().into());
    println!("chaos: seed {seed}, faults for {seconds} s (PAVED_CHAOS_SEED={seed} replays them)");
    let dir = tempfile::tempdir().expect("temp dir");
    let root_key = hex::encode(rand::random::<[u8; 32]>());
    let postgres = Postgres::start(free_port()).await;
    let redis_dir = dir.path().join("redis");
    std::fs::create_dir(&redis_dir).expect("mkdir");
    let redis_port = free_port();
    let mut redis = Some(OwnRedis::start(redis_port, Some(redis_dir.clone())).await);
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let mut links = BTreeMap::from([("postgres".to_string(), Link::open(postgres.port)), ("redis".to_string(), Link::open(redis_port))]);
    let mut service_links = BTreeMap::new();
    let wiring = Wiring {
        postgres: format!("postgres://postgres@127.0.0.1:{}", links["postgres"].port),
        redis: format!("redis://127.0.0.1:{}", links["redis"].port),
        reach: &mut |name, port| {
            let link = Link::open(port);
            let reach = link.port;
            service_links.insert(name.to_string(), link);
            reach
        },
    };
    let mut platform = Platform::start_wired(dir.path(), &compose_file(&root_key), wiring).await;
    links.append(&mut service_links);
    platform.enrolled().await;
    let bundle = platform.bundle().await;
    for name in platform.ports.keys() {
        platform.serving(name, &bundle).await;
    }
    let root = platform.root_token(&root_key).await;
    let operator = Operator {
        env: vec![("PAVED_TOKEN", root.clone()), ("PAVED_CA_BUNDLE", platform.volumes.join("trust/bundle.pem").display().to_string())],
        endpoint: format!("https://127.0.0.1:{}", platform.ports["provisioner"]),
    };

    // The log's key as a verifier keeps it from before: the log is checked
    // against it after the faults.
    let audit = format!("https://127.0.0.1:{}", platform.ports["audit"]);
    let out = operator.at(&audit, &["audit", "key"]).await;
    assert!(out.status.success(), "paved audit key: {}", String::from_utf8_lossy(&out.stderr));
    let log_key = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let (steady_dir, churn_dir) = (dir.path().join("steady"), dir.path().join("churn"));
    for (spec_dir, spec) in [(&steady_dir, STEADY.to_string()), (&churn_dir, churn(1, false))] {
        std::fs::create_dir_all(spec_dir).expect("mkdir");
        std::fs::write(spec_dir.join("paved.yaml"), spec).expect("spec");
        let name = spec_dir.file_name().and_then(|n| n.to_str()).expect("name");
        let first = operator.deploy(spec_dir, name).await;
        eventually("the first revision promoted", Duration::from_secs(60), || async {
            (operator.state(&first).await.as_deref() == Some("promoted")).then_some(())
        })
        .await;
    }
    let steady = Load::start(&operator.endpoint("steady").await, 8);
    let churning = Load::start(&operator.endpoint("churn").await, 4);
    eventually("the load to be served", Duration::from_secs(30), || async { (steady.answered() > 100).then_some(()) }).await;

    // Rollouts one after another (a deploy during one would supersede it).
    let stop = CancellationToken::new();
    let rollouts = tokio::spawn({
        let (operator, stop, churn_dir) = (operator.clone(), stop.clone(), churn_dir.clone());
        async move {
            let mut started = Vec::new();
            let mut version = 2;
            while !stop.is_cancelled() {
                let bad = version % 3 == 0;
                std::fs::write(churn_dir.join("paved.yaml"), churn(version, bad)).expect("spec");
                let id = operator.deploy(&churn_dir, "churn").await;
                started.push((id.clone(), bad));
                // Until it ends (or the run does: then the check waits for it).
                while !stop.is_cancelled() && !matches!(operator.state(&id).await.as_deref(), Some(s) if s != "running") {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                version += 1;
            }
            started
        }
    });

    // The faults, at seeded random moments.
    let services: Vec<String> = platform.ports.keys().cloned().collect();
    let mut schedule = Schedule::new(seed, services.clone(), links.keys().cloned().collect());
    let begun = Instant::now();
    let mut faults: BTreeMap<String, u32> = BTreeMap::new();
    let mut exited = Vec::new();
    let served_before = steady.answered();
    let channels: BTreeMap<String, tonic::transport::Channel> =
        platform.ports.keys().map(|name| (name.clone(), platform.channel(name, &bundle))).collect();
    let (direct, through) =
        (format!("postgres://postgres@127.0.0.1:{}", postgres.port), format!("postgres://postgres@127.0.0.1:{}", links["postgres"].port));
    leases::configure(channels["secrets-broker"].clone(), &root, &direct, &through).await;
    let watched = CancellationToken::new();
    let watching = tokio::spawn(leases::watch_roles(direct.clone(), watched.clone()));
    let leasing = tokio::spawn(leases::lease_all_along(channels["secrets-broker"].clone(), root.clone(), stop.clone()));
    // Two minutes after the faults for a revocation still unseen somewhere.
    let revoking = tokio::spawn(tokens::issue_and_revoke(channels.clone(), root.clone(), stop.clone(), Duration::from_secs(120)));
    let mut windows = Vec::new();
    let mut targets =
        Targets { platform: &mut platform, postgres: &postgres, redis: &mut redis, redis_dir: &redis_dir, links: &links, bundle: &bundle };
    while begun.elapsed() < Duration::from_secs(seconds) {
        let (pause, fault, lasting) = schedule.next();
        tokio::time::sleep(pause).await;
        println!("chaos: {:>6.1} s  {fault} for {lasting:?}", begun.elapsed().as_secs_f64());
        let began = Instant::now();
        targets.inflict(&fault, lasting, &mut exited).await;
        windows.push((began, Instant::now()));
        *faults.entry(fault.to_string()).or_default() += 1;
    }
    stop.cancel();
    let served_during = steady.answered() - served_before;
    for name in platform.ports.keys() {
        platform.serving(name, &bundle).await;
    }
    let started = rollouts.await.expect("rollouts");
    let revocations = revoking.await.expect("revocations");
    let leased = leasing.await.expect("leases");
    let (waited, target) = (Instant::now(), leases::target(&direct).await);
    while leases::any_left(&target, &leased).await && waited.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let left = leases::any_left(&target, &leased).await;
    watched.cancel();
    let seen = watching.await.expect("the roles seen");

    // The invariants.
    let mut checks = Checks::default();
    let mut check = |ok: bool, line: String| checks.check(ok, line);
    let mut ended = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for (id, bad) in &started {
        let state = loop {
            match operator.state(id).await {
                Some(state) if state != "running" => break state,
                _ if Instant::now() > deadline => break "still running 120 s after the faults".to_string(),
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        };
        ended.push((id.clone(), *bad, state));
    }
    // Not an invariant (a fault may leave a step without the evidence to
    // pass it), but worth reading: why good canaries were rolled back.
    for (id, _, _) in ended.iter().filter(|(_, bad, s)| !bad && s == "rolled_back") {
        let rollout = operator.rollout(id).await;
        let message = rollout.as_ref().and_then(|json| json["message"].as_str()).unwrap_or_default();
        println!("chaos: a good canary rolled back: {id}: {message}");
    }
    let stuck: Vec<&(String, bool, String)> = ended.iter().filter(|(_, _, s)| s != "promoted" && s != "rolled_back").collect();
    let promoted = ended.iter().filter(|(_, _, s)| s == "promoted").count();
    let rolled_back = ended.iter().filter(|(_, _, s)| s == "rolled_back").count();
    let bad_promoted: Vec<&String> = ended.iter().filter(|(_, bad, s)| *bad && s == "promoted").map(|(id, _, _)| id).collect();
    check(stuck.is_empty(), format!("every rollout ended promoted or rolled back: {} ended, others {stuck:?}", ended.len()));
    check(promoted > 0 && rolled_back > 0, format!("rollouts went both ways: {promoted} promoted, {rolled_back} rolled back"));
    check(
        steady.failed() == 0 && served_during > 0,
        format!(
            "no request to the steady workload failed or hung: {} of {} answered, {served_during} during the faults",
            steady.answered() - steady.failed(),
            steady.answered()
        ),
    );
    for (name, running) in platform.running.iter_mut().filter(|(name, _)| services.contains(name)) {
        if let Ok(Some(status)) = running.child.try_wait() {
            exited.push(format!("{name} ({status})"));
        }
    }
    check(exited.is_empty(), format!("no service exited but by the faults: {exited:?}"));
    let bad = ended.iter().filter(|(_, bad, _)| *bad).count();
    check(bad_promoted.is_empty(), format!("no bad canary promoted: {} of {bad} bad {bad_promoted:?}", bad_promoted.len()));
    invariants::outboxes_drained(&platform, &mut checks).await;
    invariants::groups_through(&redis_url, &mut checks).await;
    invariants::audit_holds_every_event(&platform, &redis_url, &mut checks).await;
    let out = operator.at(&audit, &["audit", "verify", "--key", &log_key]).await;
    let said = String::from_utf8_lossy(if out.status.success() { &out.stdout } else { &out.stderr }).trim().to_string();
    checks.check(
        out.status.success(),
        format!("the audit log verifies against its key from before the faults (`paved audit verify`): {said}"),
    );
    invariants::leases_ended(&leased, &seen, left, &windows, &mut checks);
    invariants::revocations_held(&revocations, &channels, &windows, begun, &mut checks).await;
    println!("chaos: faults {faults:?}; churn answered {} ({} failed, the bad canaries' included)", churning.answered(), churning.failed());
    drop((steady, churning));
    for running in platform.running.values_mut() {
        let _ = running.child.start_kill();
    }
    if let Ok(mut host) = paved_runtime::client::connect(&platform.provisioner_data().join("runtime.sock")).await {
        let _ = host.shutdown(paved_runtime::pb::ShutdownRequest {}).await;
    }
    if !checks.failed.is_empty() {
        // The services' logs, for whoever reads the failure.
        let kept = dir.keep();
        panic!("chaos seed {seed}: {:?}; the services' logs are kept in {}", checks.failed, kept.display());
    }
}
