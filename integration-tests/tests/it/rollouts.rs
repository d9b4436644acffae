//! Rollouts end to end: through `paved` against the platform in both modes
//! (embedded: SQLite and the embedded stream; self-hosted: PostgreSQL and
//! Redis), and the provisioner binary on PostgreSQL and Redis, SIGKILLed
//! mid-rollout.

use crate::services::try_http_get;
use paved::up::{Platform, SelfHosted, UpOptions};
use paved_grpc::client::AuthChannel;
use paved_integration_tests::{
    Load, authed, bin_dir, endpoint_in_status, eventually, paved_with, postgres_database, postgres_server, redis_namespace, start_broker,
    text, unique, up_options,
};
use paved_proto::audit::v1::{ListEntriesRequest, audit_service_client::AuditServiceClient};
use paved_proto::provisioner::v1::{
    ApplyWorkloadRequest, GetRolloutRequest, GetTrafficMetricsRequest, ListRevisionsRequest, ListRolloutsRequest, PowerReason,
    RollbackWorkloadRequest, RolloutState, SleepWorkloadRequest, provisioner_service_client::ProvisionerServiceClient,
};
use std::{path::Path, time::Duration};
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// `web`: hello with fast health checks and a short rollout.
fn spec(version: &str, error_rate: &str) -> String {
    format!(
        "name: web\ncommand: [\"hello\"]\nhealth:\n  period: 200ms\n  timeout: 200ms\nrollout:\n  steps: [20, 50, 100]\n  interval: 2s\n  max_error_rate: 0.05\nenv:\n  HELLO_VERSION: {version}\n  HELLO_ERROR_RATE: \"{error_rate}\"\n"
    )
}

/// The embedded platform in a temporary directory, and a folder for `web`'s spec.
pub(crate) async fn embedded() -> (tempfile::TempDir, Platform, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let platform = Platform::start(&up_options(dir.path().join("data"))).await.expect("paved up");
    platform.wait_ready(Duration::from_secs(30), |_| {}).await.expect("ready");
    let svc = dir.path().join("web");
    std::fs::create_dir_all(&svc).expect("mkdir");
    (dir, platform, svc)
}

/// `n` requests in a row, all answered by `version`.
pub(crate) async fn all_traffic_on(endpoint: &str, version: &str) {
    for _ in 0..20 {
        let body = try_http_get(endpoint, "/").await.unwrap_or_default();
        assert!(body.contains(&format!("hello from {version}")), "expected {version}, got {body:?}");
    }
}

pub(crate) async fn endpoint_of(endpoint: &str, token: &str, workload: &str) -> String {
    let out = paved_with(token, &["status", "--output", "json", "--endpoint", endpoint]).await;
    endpoint_in_status(&out.stdout, workload).unwrap_or_else(|| panic!("no endpoint of {workload} in {}", text(&out.stdout)))
}

#[tokio::test]
async fn rollouts_step_through_weights_roll_back_on_errors_and_on_command() {
    let (_dir, platform, svc) = embedded().await;
    steps_and_rollbacks(platform, svc).await;
}

/// The same, with the provisioner on PostgreSQL and Redis and the other
/// services deployed by the platform itself (production's shape).
#[tokio::test]
async fn rollouts_step_and_roll_back_on_postgres_and_redis() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = UpOptions {
        self_hosted: Some(SelfHosted {
            postgres_url: postgres_server(),
            redis_url: redis_namespace("it_rollouts").await,
            database_prefix: format!("{}_", unique("it_ro")),
        }),
        ..up_options(dir.path().join("data"))
    };
    let platform = Platform::start(&options).await.expect("paved up --self-hosted");
    platform.wait_ready(Duration::from_secs(90), |_| {}).await.expect("ready");
    let svc = dir.path().join("web");
    std::fs::create_dir_all(&svc).expect("mkdir");
    steps_and_rollbacks(platform, svc).await;
}

async fn steps_and_rollbacks(platform: Platform, svc: std::path::PathBuf) {
    let endpoint = platform.addr.to_string();
    let svc_dir = svc.to_str().expect("path");
    let deploy = |version: &'static str, error_rate: &'static str| {
        std::fs::write(svc.join("paved.yaml"), spec(version, error_rate)).expect("write spec");
        paved_with(&platform.root_token, &["deploy", svc_dir, "--env", "dev", "--endpoint", &endpoint])
    };

    // v1, a first revision: promoted as soon as it is healthy.
    let out = deploy("v1", "0").await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "revision 1 of web: promoted\n");
    let web = endpoint_of(&endpoint, &platform.root_token, "web").await;
    let load = Load::start(&web, 8);

    // v2 steps through 20%, 50%, 100% under load, then is promoted.
    let out = deploy("v2", "0").await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(text(&out.stdout), "revision 2 of web: promoted\n");
    for expected in ["step 1 of 3: 20% of traffic", "step 2 of 3: 50% of traffic", "step 3 of 3: 100% of traffic", "promoted: all traffic"]
    {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    assert!(stderr.contains("step 1 passed: ") && stderr.contains("5xx answers: 0 of "), "the analyzer judged traffic:\n{stderr}");
    assert!(load.seen("hello from v1") > 0 && load.seen("hello from v2") > 0, "both revisions served during the rollout");
    all_traffic_on(&web, "v2").await;

    // Per-revision metrics through the API.
    let channel = paved::client::connect_with(&endpoint, &platform.root_token).await.expect("connect");
    let mut client = ProvisionerServiceClient::new(channel.clone());
    let metrics = client
        .get_traffic_metrics(GetTrafficMetricsRequest { environment: "dev".into(), workload: "web".into() })
        .await
        .expect("traffic metrics")
        .into_inner();
    let v2 = metrics.revisions.iter().find(|r| r.weight == 100).expect("a revision with all traffic");
    assert!(v2.requests.get("2xx").copied().unwrap_or(0) > 0 && v2.p99_seconds > 0.0, "{v2:?}");
    assert!(metrics.revisions.len() >= 2, "the stable revision's traffic is kept too: {metrics:?}");
    // Revisions by number for people, by number and id for scripts.
    let out = paved_with(&platform.root_token, &["traffic", "web", "--env", "dev", "--endpoint", &endpoint]).await;
    let table = text(&out.stdout);
    assert!(table.starts_with("REVISION") && table.lines().any(|l| l.starts_with("2 ") && l.contains("100%")), "{table}");
    let out = paved_with(&platform.root_token, &["traffic", "web", "--env", "dev", "--output", "json", "--endpoint", &endpoint]).await;
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("traffic json");
    let v2 = rows.iter().find(|r| r["weight"] == 100).expect("a revision with all traffic");
    assert!(v2["revision"] == 2 && v2["revision_id"].as_str().is_some_and(|id| id.len() == 36), "{rows:?}");

    // v3 answers half its requests with 500: rolled back at its first step.
    let out = deploy("v3", "0.5").await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a rolled-back deploy fails:\n{stderr}");
    assert!(stderr.contains("revision 3 of web was not promoted") && stderr.contains("rolled_back"), "{stderr}");
    assert!(stderr.contains("step 1 (20% of traffic) failed: errors (5xx answers): "), "{stderr}");
    all_traffic_on(&web, "v2").await;
    drop(load);

    // Rollback on command: the standby (v1, kept running) takes all traffic.
    let out = paved_with(&platform.root_token, &["rollback", "web", "--env", "dev", "--endpoint", &endpoint]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("web in dev: all traffic on revision 1 ("), "{}", text(&out.stdout));
    all_traffic_on(&web, "v1").await;
    // And back again: the revision it replaced became the standby.
    let out = paved_with(&platform.root_token, &["rollback", "web", "--env", "dev", "--endpoint", &endpoint]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    all_traffic_on(&web, "v2").await;

    let out = paved_with(&platform.root_token, &["rollout", "list", "web", "--env", "dev", "--endpoint", &endpoint]).await;
    let table = text(&out.stdout);
    assert_eq!(table.lines().count(), 4, "three rollouts:\n{table}");
    assert!(table.contains("rolled_back") && table.contains("promoted"), "{table}");
    let out =
        paved_with(&platform.root_token, &["rollout", "list", "web", "--env", "dev", "--output", "json", "--endpoint", &endpoint]).await;
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("rollout list json");
    assert_eq!(rows.iter().map(|r| r["revision"].as_i64()).collect::<Vec<_>>(), [Some(3), Some(2), Some(1)], "newest first: {rows:?}");

    // Every transition and the rollbacks are facts in the audit log.
    let audit = AuditServiceClient::new(channel);
    let types = eventually("rollout events in the audit log", Duration::from_secs(20), || {
        let mut audit = audit.clone();
        async move {
            let entries = audit.list_entries(ListEntriesRequest { page_size: 1000, page_token: String::new() }).await.ok()?.into_inner();
            let types: Vec<String> = entries.entries.into_iter().map(|e| e.r#type).collect();
            (types.iter().filter(|t| t.ends_with("workload.rolled_back")).count() >= 3).then_some(types)
        }
    })
    .await;
    assert!(types.iter().filter(|t| t.ends_with("rollout.transitioned")).count() >= 15, "{types:?}");
    platform.stop().await.expect("stop");
}

#[tokio::test]
async fn rollouts_pause_resume_promote_and_abort_on_command() {
    let (_dir, platform, svc) = embedded().await;
    let endpoint = platform.addr.to_string();
    let svc_dir = svc.to_str().expect("path");
    let slow = |version: &str| spec(version, "0").replace("interval: 2s", "interval: 3s");

    std::fs::write(svc.join("paved.yaml"), slow("v1")).expect("write");
    assert!(paved_with(&platform.root_token, &["deploy", svc_dir, "--env", "dev", "--endpoint", &endpoint]).await.status.success());
    let web = endpoint_of(&endpoint, &platform.root_token, "web").await;

    std::fs::write(svc.join("paved.yaml"), slow("v2")).expect("write");
    let out = paved_with(&platform.root_token, &["deploy", svc_dir, "--env", "dev", "--detach", "--endpoint", &endpoint]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 36, "--detach prints the rollout id: {id:?}");
    let client = ProvisionerServiceClient::new(paved::client::connect_with(&endpoint, &platform.root_token).await.expect("connect"));
    let get = |client: &ProvisionerServiceClient<AuthChannel>| {
        let id = id.clone();
        let mut client = client.clone();
        async move { client.get_rollout(GetRolloutRequest { id }).await.expect("get rollout").into_inner().rollout.expect("rollout") }
    };
    eventually("the canary at its first step", Duration::from_secs(30), || async { (get(&client).await.weight == 20).then_some(()) }).await;

    // Paused: the step is held past its interval.
    let out = paved_with(&platform.root_token, &["rollout", "pause", &id, "--endpoint", &endpoint]).await;
    assert!(out.status.success() && text(&out.stdout).contains(": paused"), "{out:?}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let paused = get(&client).await;
    assert_eq!((paused.state, paused.weight), (RolloutState::Paused as i32, 20));
    let out = paved_with(&platform.root_token, &["rollout", "get", &id, "--endpoint", &endpoint]).await;
    let described = text(&out.stdout);
    assert!(described.contains("paused at stage step, 20% of traffic"), "{described}");
    assert!(described.contains("  revision   2\n  stable     1\n"), "revisions by number: {described}");

    // Resumed, then promoted at once.
    assert!(paved_with(&platform.root_token, &["rollout", "resume", &id, "--endpoint", &endpoint]).await.status.success());
    let out = paved_with(&platform.root_token, &["rollout", "promote", &id, "--endpoint", &endpoint]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = paved_with(&platform.root_token, &["rollout", "watch", &id, "--endpoint", &endpoint]).await;
    assert!(out.status.success() && text(&out.stdout).contains("promoted"), "{out:?}");
    all_traffic_on(&web, "v2").await;
    // An ended rollout cannot be paused: a precise error.
    let out = paved_with(&platform.root_token, &["rollout", "pause", &id, "--endpoint", &endpoint]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("has ended (promoted): it cannot be paused"), "{out:?}");

    // v3 aborted mid-rollout: all traffic back on v2.
    std::fs::write(svc.join("paved.yaml"), slow("v3")).expect("write");
    let out = paved_with(&platform.root_token, &["deploy", svc_dir, "--env", "dev", "--detach", "--endpoint", &endpoint]).await;
    let id3 = text(&out.stdout).trim().to_string();
    eventually("v3 at its first step", Duration::from_secs(30), || {
        let mut client = client.clone();
        let id = id3.clone();
        async move { (client.get_rollout(GetRolloutRequest { id }).await.ok()?.into_inner().rollout?.weight == 20).then_some(()) }
    })
    .await;
    let out = paved_with(&platform.root_token, &["rollout", "abort", &id3, "--endpoint", &endpoint]).await;
    assert!(out.status.success() && text(&out.stdout).contains(": aborted"), "{out:?}");
    all_traffic_on(&web, "v2").await;
    // Unknown rollouts: NOT_FOUND, said plainly.
    let out = paved_with(&platform.root_token, &["rollout", "get", "no-such-rollout", "--endpoint", &endpoint]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("no rollout no-such-rollout"), "{out:?}");
    let reason = |status: tonic::Status| (status.code(), status.get_details_error_info().map(|i| i.reason).unwrap_or_default());
    let unknown = client.clone().get_rollout(GetRolloutRequest { id: "no-such-rollout".into() }).await.expect_err("unknown");
    assert_eq!(reason(unknown), (tonic::Code::NotFound, "ROLLOUT_NOT_FOUND".to_string()));
    let rollback = RollbackWorkloadRequest { environment: "dev".into(), workload: "nowhere".into() };
    let unknown = client.clone().rollback_workload(rollback).await.expect_err("unknown");
    assert_eq!(reason(unknown), (tonic::Code::NotFound, "WORKLOAD_NOT_FOUND".to_string()));
    let list = ListRolloutsRequest { environment: "dev".into(), workload: "nowhere".into(), ..Default::default() };
    let unknown = client.clone().list_rollouts(list).await.expect_err("an unknown workload has no empty list");
    assert_eq!(reason(unknown), (tonic::Code::NotFound, "WORKLOAD_NOT_FOUND".to_string()));
    let list = ListRevisionsRequest { environment: "dev".into(), workload: "nowhere".into(), ..Default::default() };
    let unknown = client.clone().list_revisions(list).await.expect_err("an unknown workload has no empty list");
    assert_eq!(reason(unknown), (tonic::Code::NotFound, "WORKLOAD_NOT_FOUND".to_string()));
    let sleep = SleepWorkloadRequest {
        environment: "dev".into(),
        workload: "nowhere".into(),
        reason: PowerReason::Person.into(),
        ..Default::default()
    };
    let unknown = client.clone().sleep_workload(sleep).await.expect_err("unknown");
    assert_eq!(reason(unknown), (tonic::Code::NotFound, "WORKLOAD_NOT_FOUND".to_string()));
    platform.stop().await.expect("stop");
}

fn provisioner(listen: &str, broker: &str, database: &str, stream: &str, data: &Path) -> tokio::process::Child {
    tokio::process::Command::new(bin_dir().join("paved-provisioner"))
        .env("PAVED_LISTEN", listen)
        .env("PAVED_BROKER_URL", broker)
        .env("PAVED_DATABASE_URL", database)
        .env("PAVED_STREAM_URL", stream)
        .env("PAVED_DATA_DIR", data)
        // Longer than a restart takes on a loaded machine; ended by
        // `shut_down_data_plane`, or by itself should the test fail first.
        .env("PAVED_DATA_PLANE_GRACE_SECONDS", "60")
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start paved-provisioner")
}

/// The provisioner killed with SIGKILL mid-rollout, and again once it is
/// promoted (on PostgreSQL and Redis), under steady load: the workload's
/// traffic never notices (its proxy lives in the data plane's host), and
/// the restarted provisioner adopts the replicas the dead one left running
/// instead of starting them again, resumes the interrupted step on the
/// traffic the data plane counted meanwhile (its window is recorded), and
/// promotes.
#[tokio::test]
async fn a_rollout_survives_sigkill_of_the_provisioner() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = postgres_database("it_rollout").await;
    let stream = redis_namespace("it_rollout").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let listen = format!("127.0.0.1:{port}");
    let data = dir.path().join("provisioner");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (broker, token, broker_task) = start_broker(&stream, &shutdown).await;
    let broker = format!("http://{broker}");
    let mut child = provisioner(&listen, &broker, &database, &stream, &data);
    let connect = || async {
        // Serving: connected, and holding the broker's key set.
        let channel = eventually("the provisioner to serve", Duration::from_secs(30), || async {
            let channel = Channel::from_shared(format!("http://{listen}")).ok()?.connect().await.ok()?;
            let check = tonic_health::pb::HealthCheckRequest { service: String::new() };
            let status = tonic_health::pb::health_client::HealthClient::new(channel.clone()).check(check).await.ok()?.into_inner().status;
            (status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32).then_some(channel)
        })
        .await;
        authed(channel, &token)
    };
    let mut client = ProvisionerServiceClient::new(connect().await);
    let apply = |client: &mut ProvisionerServiceClient<AuthChannel>, version: &str| {
        let request = ApplyWorkloadRequest {
            environment: "qa".into(),
            spec_yaml: spec(version, "0").replace("interval: 2s", "interval: 3s"),
            spec_path: String::new(),
            request_id: String::new(),
            spec: None,
        };
        let mut client = client.clone();
        async move {
            let applied = client.apply_workload(request).await.expect("apply").into_inner();
            (applied.rollout.expect("a rollout").id, applied.workload.expect("the workload").endpoint)
        }
    };
    let rollout = |client: &ProvisionerServiceClient<AuthChannel>, id: String| {
        let mut client = client.clone();
        async move { client.get_rollout(GetRolloutRequest { id }).await.ok()?.into_inner().rollout }
    };
    let (first, endpoint) = apply(&mut client, "v1").await;
    eventually("v1 promoted", Duration::from_secs(30), || async {
        rollout(&client, first.clone()).await.filter(|r| r.state == RolloutState::Promoted as i32)
    })
    .await;
    let load = paved_integration_tests::Load::start(&endpoint, 8);
    eventually("v1 to serve the load", Duration::from_secs(10), || async { (load.seen("v1") > 0).then_some(()) }).await;
    let (id, _) = apply(&mut client, "v2").await;
    eventually("v2 at its second step", Duration::from_secs(30), || async {
        rollout(&client, id.clone()).await.filter(|r| r.weight == 50)
    })
    .await;
    // Killed well into the step, so that part of its interval is lost.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let replicas = || paved_integration_tests::recorded_replicas(&data.join("run"));
    let before = replicas();
    assert_eq!(before.len(), 2, "v1 and v2 run (no baseline without an analyzer): {before:?}");
    let canary = rollout(&client, id.clone()).await.expect("the rollout").revision_id;

    let pid = child.id().expect("running");
    assert!(std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("kill").success());
    let _ = child.wait().await;
    assert!(before.values().all(|pid| Path::new(&format!("/proc/{pid}")).exists()), "the workloads outlive a SIGKILLed provisioner");

    let answered = load.answered();
    let mut child = provisioner(&listen, &broker, &database, &stream, &data);
    let client = ProvisionerServiceClient::new(connect().await);
    let done = eventually("the rollout to finish after the restart", Duration::from_secs(60), || async {
        rollout(&client, id.clone()).await.filter(|r| r.state != RolloutState::Running as i32)
    })
    .await;
    assert_eq!(done.state, RolloutState::Promoted as i32, "{done:?}");
    let messages: Vec<&str> = done.history.iter().map(|t| t.message.as_str()).collect();
    assert!(messages.iter().any(|m| m.contains("step 2 resumed after a restart")), "{messages:?}");
    assert!(!messages.iter().any(|m| m.contains("held again")), "not held again in full: {messages:?}");
    // Each weight was committed once before the kill and not repeated after it.
    let weights: Vec<i32> = done.history.iter().map(|t| t.weight).collect();
    assert!(weights.windows(2).all(|w| w[0] <= w[1]), "weights only grow: {weights:?}");
    // Adopted, not started again: the promoted revision and the standby
    // (the old stable one) run in the processes they ran in before the kill.
    let after = replicas();
    assert_eq!(after, before, "every replica was adopted");
    assert!(after.values().all(|pid| Path::new(&format!("/proc/{pid}")).exists()), "and runs");
    assert!(after.contains_key(&format!("{canary}-0")));
    assert!(load.answered() > answered, "the load went on");
    assert_eq!(load.failed(), 0, "no request failed across the kill and the restart ({} answered)", load.answered());

    // Steady state: killed again, started again, nothing noticed.
    let pid = child.id().expect("running");
    assert!(std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("kill").success());
    let _ = child.wait().await;
    let answered = load.answered();
    let mut child = provisioner(&listen, &broker, &database, &stream, &data);
    let _client = connect().await;
    eventually("the load to go on", Duration::from_secs(10), || async { (load.answered() > answered + 100).then_some(()) }).await;
    assert_eq!(replicas(), before, "every replica adopted again");
    assert_eq!(load.failed(), 0, "no request failed across the second kill ({} answered)", load.answered());

    // An upgrade: the provisioner stopped as a service is (SIGTERM) lets its
    // workloads and their proxies run on; the next one adopts them.
    let pid = child.id().expect("running").to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let stopped = tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("stops in time").expect("wait");
    assert!(stopped.success(), "{stopped:?}");
    assert_eq!(replicas(), before, "nothing stopped with it");
    let answered = load.answered();
    let mut child = provisioner(&listen, &broker, &database, &stream, &data);
    let mut client = ProvisionerServiceClient::new(connect().await);
    eventually("the load to go on", Duration::from_secs(10), || async { (load.answered() > answered + 100).then_some(()) }).await;
    assert_eq!(replicas(), before, "every replica adopted by the new provisioner");
    assert_eq!(load.failed(), 0, "no request failed across the upgrade ({} answered)", load.answered());
    let listed = client.list_revisions(ListRevisionsRequest { environment: "qa".into(), workload: "web".into(), ..Default::default() });
    let states: Vec<i32> = listed.await.expect("revisions").into_inner().revisions.iter().map(|r| r.state).collect();
    assert!(!states.contains(&(paved_proto::provisioner::v1::RevisionState::Stopped as i32)), "none recorded stopped: {states:?}");
    drop(load);
    // The provisioner first: one that is running starts its host again.
    child.kill().await.expect("kill the provisioner");
    shut_down_data_plane(&data).await;
    shutdown.cancel();
    broker_task.await.expect("broker task").expect("broker stopped cleanly");
}

/// Stops the data plane a production provisioner left running (its
/// workloads and their proxies): it serves on without one, by design.
async fn shut_down_data_plane(data: &Path) {
    let mut host = paved_runtime::client::connect(&data.join("runtime.sock")).await.expect("the data plane's host");
    host.shutdown(paved_runtime::pb::ShutdownRequest {}).await.expect("shut down");
}

/// `paved plan`: exit 0 when nothing would change, 2 with the changes (or
/// drift), 1 on an error; nothing is applied. A workload process that hangs
/// outside the platform's control shows as drift and is replaced.
#[tokio::test]
async fn plan_exit_codes_and_drift_correction() {
    let (_dir, platform, svc) = embedded().await;
    let endpoint = platform.addr.to_string();
    let svc_dir = svc.to_str().expect("path");
    let plan = || paved_with(&platform.root_token, &["plan", svc_dir, "--env", "dev", "--endpoint", &endpoint]);

    std::fs::write(svc.join("paved.yaml"), spec("v1", "0")).expect("write");
    let out = plan().await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out.stdout).starts_with("web in dev: create\n") && text(&out.stdout).contains("  + name: \"web\"\n"), "{out:?}");
    assert!(paved_with(&platform.root_token, &["deploy", svc_dir, "--env", "dev", "--endpoint", &endpoint]).await.status.success());
    // Once the cost scheduler has read what runs (its first pass after
    // `paved up`), the plan prices the change.
    let out = eventually("a priced plan", Duration::from_secs(20), || async {
        let out = plan().await;
        text(&out.stdout).contains("  cost: 0.00").then_some(out)
    })
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let unchanged = "web in dev: no changes\n  cost: 0.00 -> 0.00 USD a month by request\n  ? policy warns: ";
    assert!(text(&out.stdout).starts_with(unchanged), "dev only warns, and nothing requested costs nothing: {out:?}");

    std::fs::write(svc.join("paved.yaml"), spec("v2", "0")).expect("write");
    let out = plan().await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stdout).starts_with(
            "web in dev: update (a new revision, rolled out)\n  ~ env.HELLO_VERSION: \"v1\" -> \"v2\"\n  cost: 0.00 -> 0.00 USD"
        ),
        "{out:?}"
    );
    let out = paved_with(&platform.root_token, &["plan", svc_dir, "--env", "dev", "--output", "json", "--endpoint", &endpoint]).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    assert_eq!((json["action"].as_str(), json["changes"][0]["path"].as_str()), (Some("update"), Some("env.HELLO_VERSION")));
    let web = endpoint_of(&endpoint, &platform.root_token, "web").await;
    all_traffic_on(&web, "v1").await;

    std::fs::write(svc.join("paved.yaml"), "name: web\ncommand: [hello]\nreplicas: many\n").expect("write");
    let out = plan().await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out.stderr).contains("paved.yaml:3:11: "), "{}", text(&out.stderr));
    let out = paved_with(&platform.root_token, &["plan", svc_dir, "--env", "Prod!", "--endpoint", &endpoint]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("invalid environment"), "{}", text(&out.stderr));

    // Drift: the workload's process hangs (SIGSTOP, outside the platform).
    std::fs::write(svc.join("paved.yaml"), spec("v1", "0")).expect("write");
    let pids =
        || -> Vec<i32> { paved_integration_tests::recorded_replicas(&_dir.path().join("data/provisioner/run")).into_values().collect() };
    let hung = pids();
    assert_eq!(hung.len(), 1, "{hung:?}");
    assert!(std::process::Command::new("kill").args(["-STOP", &hung[0].to_string()]).status().expect("kill").success());
    let out = eventually("plan to show the drift", Duration::from_secs(20), || async {
        let out = plan().await;
        (out.status.code() == Some(2)).then_some(out)
    })
    .await;
    assert!(text(&out.stdout).contains("! drift: revision 1 should be healthy but is unhealthy: health check failing"), "{out:?}");
    eventually("the hung process replaced and plan clean", Duration::from_secs(30), || async {
        (plan().await.status.code() == Some(0) && pids().first().is_some_and(|p| *p != hung[0])).then_some(())
    })
    .await;
    all_traffic_on(&web, "v1").await;
    platform.stop().await.expect("stop");
}

/// `paved preview open/close/list`: pr-42 from the base spec (with
/// `paved.preview.yaml`), and after close nothing of it is left: no
/// workload, no process, no proxy.
#[tokio::test]
async fn previews_open_and_close_leaving_nothing_behind() {
    let (dir, platform, svc) = embedded().await;
    let endpoint = platform.addr.to_string();
    let svc_dir = svc.to_str().expect("path");
    std::fs::write(svc.join("paved.yaml"), spec("base", "0")).expect("write");
    std::fs::write(svc.join("paved.preview.yaml"), "env:\n  HELLO_VERSION: preview\n").expect("write");
    assert!(paved_with(&platform.root_token, &["deploy", svc_dir, "--env", "dev", "--endpoint", &endpoint]).await.status.success());

    let out = paved_with(&platform.root_token, &["preview", "open", svc_dir, "--pr", "42", "--ttl", "2h", "--endpoint", &endpoint]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let url = text(&out.stdout);
    assert!(url.starts_with("web in pr-42: http://"), "{url}");
    let preview_endpoint = url.trim().rsplit_once("http://").expect("url").1.to_string();
    all_traffic_on(&preview_endpoint, "preview").await;
    let out = paved_with(&platform.root_token, &["preview", "list", "--endpoint", &endpoint]).await;
    assert!(text(&out.stdout).lines().any(|l| l.starts_with("pr-42") && l.contains("web")), "{}", text(&out.stdout));
    let out = paved_with(&platform.root_token, &["preview", "list", "--output", "json", "--endpoint", &endpoint]).await;
    let previews: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("preview list json");
    assert!(previews.iter().any(|p| p["pr"] == 42 && p["workloads"][0] == "web" && p["expire_time"].is_string()), "{previews:?}");
    let running = |root: &Path| std::fs::read_dir(root.join("data/provisioner/run")).expect("run dir").count();
    assert_eq!(running(dir.path()), 2, "dev and pr-42 each run one process");

    let out = paved_with(&platform.root_token, &["preview", "close", "--pr", "42", "--endpoint", &endpoint]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "closed pr-42: destroyed web\n");
    let status =
        paved::status::status(paved::client::connect_with(&endpoint, &platform.root_token).await.expect("connect")).await.expect("status");
    assert!(status.workloads.iter().all(|w| w.environment != "pr-42"), "{:?}", status.workloads);
    assert_eq!(running(dir.path()), 1, "only dev's process is left");
    assert!(tokio::net::TcpStream::connect(&preview_endpoint).await.is_err(), "the preview's proxy is closed");
    let out = paved_with(&platform.root_token, &["preview", "list", "--endpoint", &endpoint]).await;
    assert_eq!(text(&out.stdout), "PREVIEW  WORKLOADS  EXPIRES\n");
    let out = paved_with(&platform.root_token, &["preview", "close", "--pr", "42", "--endpoint", &endpoint]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("no preview pr-42"), "{out:?}");
    let out = paved_with(&platform.root_token, &["preview", "open", svc_dir, "--pr", "7", "--ttl", "90d", "--endpoint", &endpoint]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("at most 30d"), "{out:?}");

    // A preview whose time to live passes closes by itself.
    let out = paved_with(&platform.root_token, &["preview", "open", svc_dir, "--pr", "43", "--ttl", "3s", "--endpoint", &endpoint]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    eventually("pr-43 to expire", Duration::from_secs(20), || async {
        let out = paved_with(&platform.root_token, &["preview", "list", "--endpoint", &endpoint]).await;
        (!text(&out.stdout).contains("pr-43")).then_some(())
    })
    .await;
    // The listing hides a preview once it is closed; its process is stopped
    // right after (seen 1 run in 5 still running at the first look).
    eventually("the expired preview's process gone", Duration::from_secs(5), || async { (running(dir.path()) == 1).then_some(()) }).await;
    platform.stop().await.expect("stop");
}
