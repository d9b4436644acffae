//! Sleep and wake on the local runtime, as a user meets them: `paved sleep`
//! stops a workload's processes and keeps its endpoint; the first request
//! to it is held, wakes it and is served; a platform restarted while the
//! workload sleeps keeps it asleep, and a request still wakes it. Every
//! sleep and wake is in the audit log with its reason and who asked.

use crate::secrets::{paved_at, stop, up};
use crate::services::http_get;
use paved_integration_tests::{eventually, text};
use std::{path::Path, time::Duration};

const SPEC: &str =
    "name: nap\ncommand: [hello]\nhealth:\n  path: /healthz\nenv:\n  HELLO_VERSION: v1\nrollout:\n  steps: [100]\n  interval: 1s\n";

/// The workload's (state, endpoint, whole row) in `paved status --output json`.
async fn status(endpoint: &str, dir: &Path, token: &str) -> (String, String, serde_json::Value) {
    let out = paved_at(endpoint, dir, token, &["status", "--output", "json"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let row = status["workloads"].as_array().expect("workloads").iter().find(|w| w["name"] == "nap").expect("nap").clone();
    (row["state"].as_str().expect("state").to_string(), row["endpoint"].as_str().expect("endpoint").to_string(), row)
}

/// Workload processes the runtime has recorded as running.
fn processes(data: &Path) -> usize {
    let run = data.join("data/provisioner/run");
    std::fs::read_dir(&run).map_or(0, |d| d.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "pgid")).count())
}

/// A request while asleep is served once the workload woke; how long it took.
async fn woken_by_a_request(endpoint: &str) -> Duration {
    let started = std::time::Instant::now();
    assert_eq!(http_get(endpoint, "/").await, "hello from v1\n", "the held request is served");
    started.elapsed()
}

#[tokio::test]
async fn a_sleeping_workload_keeps_its_endpoint_and_wakes_on_a_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let spec_dir = path.join("nap");
    std::fs::create_dir_all(&spec_dir).expect("mkdir");
    std::fs::write(spec_dir.join("paved.yaml"), SPEC).expect("write");
    let first = up(&path, 0);
    let run = |args: &[&str]| paved_at(&first.endpoint, &path, &first.root, args, None);
    let out = run(&["deploy", spec_dir.to_str().expect("path"), "--env", "dev"]).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let (state, endpoint, _) = status(&first.endpoint, &path, &first.root).await;
    assert_eq!(state, "healthy");
    assert_eq!(processes(&path), 1, "one process runs before it sleeps");

    let out = run(&["sleep", "nap", "--env", "dev", "--for", "1h"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("nap in dev: asleep, held until "), "{}", text(&out.stdout));
    let (state, asleep_at, row) = status(&first.endpoint, &path, &first.root).await;
    assert_eq!((state.as_str(), asleep_at.as_str()), ("sleeping", endpoint.as_str()), "{row}");
    eventually("its process to stop", Duration::from_secs(20), || async { (processes(&path) == 0).then_some(()) }).await;
    let out = run(&["sleep", "nap", "--env", "dev"]).await;
    assert!(text(&out.stdout).starts_with("nap in dev: was asleep already"), "{}", text(&out.stdout));

    let took = woken_by_a_request(&endpoint).await;
    eprintln!("woken by a request and served in {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let (state, _, _) = status(&first.endpoint, &path, &first.root).await;
    assert_eq!(state, "healthy");
    assert_eq!(processes(&path), 1);
    let out = run(&["wake", "nap", "--env", "dev"]).await;
    assert_eq!(text(&out.stdout), "nap in dev: awake already\n", "{}", text(&out.stderr));

    // Asleep when the platform stops: asleep when it is back, and woken by
    // a request all the same.
    let out = run(&["sleep", "nap", "--env", "dev"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    stop(first);
    let second = up(&path, 1);
    let (state, after_restart, _) = status(&second.endpoint, &path, &second.root).await;
    assert_eq!((state.as_str(), after_restart.as_str()), ("sleeping", endpoint.as_str()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(processes(&path), 0, "nothing started for a sleeping workload");
    woken_by_a_request(&endpoint).await;

    // The log says who put it to sleep and what woke it.
    let key = text(&paved_at(&second.endpoint, &path, "", &["audit", "key"], None).await.stdout).trim().to_string();
    let query = ["audit", "query", "--workload", "nap", "--env", "dev", "--key", &key, "--output", "json"];
    let what: Vec<String> = eventually("the sleeps and wakes in the log", Duration::from_secs(30), || {
        let out = paved_at(&second.endpoint, &path, &second.root, &query, None);
        async move {
            let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.await.stdout).ok()?;
            let what: Vec<String> = rows
                .iter()
                .filter(|r| r["type"].as_str().is_some_and(|t| t.ends_with("workload.slept") || t.ends_with("workload.woke")))
                .map(|r| r["what"].as_str().unwrap_or_default().to_string())
                .collect();
            (what.len() >= 4).then_some(what)
        }
    })
    .await;
    assert_eq!(what.len(), 4, "{what:#?}");
    assert!(what[0].starts_with("went to sleep (person by sha256:"), "a person, as a commitment: {what:#?}");
    assert_eq!(what[1], "woke (request)");
    assert!(what[2].starts_with("went to sleep (person by sha256:"), "{what:#?}");
    assert_eq!(what[3], "woke (request)");
    stop(second);
}

/// The row of `name` in `paved status --output json`.
async fn row(endpoint: &str, dir: &Path, token: &str, name: &str) -> serde_json::Value {
    let out = paved_at(endpoint, dir, token, &["status", "--output", "json"], None).await;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    status["workloads"].as_array().expect("workloads").iter().find(|w| w["name"] == name).expect("the workload").clone()
}

async fn until_state(endpoint: &str, dir: &Path, token: &str, name: &str, state: &str) {
    eventually(&format!("{name} to be {state}"), Duration::from_secs(20), || async {
        (row(endpoint, dir, token, name).await["state"] == state).then_some(())
    })
    .await;
}

/// The cost scheduler acts on specs' schedules: a workload outside its
/// hours sleeps once deployed, a request wakes it and is served, and left
/// alone for its `idle_after` it sleeps again; a person's `paved wake --for`
/// keeps it up; a workload with only `idle_after` sleeps after that long
/// without a request. The log says why each time.
#[tokio::test]
async fn schedules_and_idleness_put_workloads_to_sleep() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let specs = [("night", "schedule:\n  uptime: never\n  idle_after: 2s\n"), ("lazy", "schedule:\n  idle_after: 2s\n")];
    for (name, schedule) in specs {
        std::fs::create_dir_all(path.join(name)).expect("mkdir");
        std::fs::write(path.join(name).join("paved.yaml"), SPEC.replace("name: nap", &format!("name: {name}")) + schedule).expect("write");
    }
    let up = up(&path, 0);
    let run = |args: &[&str]| paved_at(&up.endpoint, &path, &up.root, args, None);
    for (name, _) in specs {
        let out = run(&["deploy", path.join(name).to_str().expect("path"), "--env", "dev"]).await;
        assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    }
    until_state(&up.endpoint, &path, &up.root, "night", "sleeping").await;
    until_state(&up.endpoint, &path, &up.root, "lazy", "sleeping").await;
    assert_eq!(processes(&path), 0, "nothing runs");

    let night = row(&up.endpoint, &path, &up.root, "night").await;
    let endpoint = night["endpoint"].as_str().expect("endpoint").to_string();
    woken_by_a_request(&endpoint).await;
    assert_eq!(row(&up.endpoint, &path, &up.root, "night").await["state"], "healthy");
    until_state(&up.endpoint, &path, &up.root, "night", "sleeping").await;

    let out = run(&["wake", "night", "--env", "dev", "--for", "1h"]).await;
    assert!(text(&out.stdout).starts_with("night in dev: waking, held until "), "{}{}", text(&out.stdout), text(&out.stderr));
    until_state(&up.endpoint, &path, &up.root, "night", "healthy").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(row(&up.endpoint, &path, &up.root, "night").await["state"], "healthy", "held up past its idle_after");

    let key = text(&paved_at(&up.endpoint, &path, "", &["audit", "key"], None).await.stdout).trim().to_string();
    let reasons = |name: &'static str| {
        let query = ["audit", "query", "--workload", name, "--env", "dev", "--key", &key, "--output", "json"];
        let out = paved_at(&up.endpoint, &path, &up.root, &query, None);
        async move {
            let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.await.stdout).unwrap_or_default();
            rows.iter()
                .filter(|r| r["type"].as_str().is_some_and(|t| t.ends_with("workload.slept") || t.ends_with("workload.woke")))
                .map(|r| r["what"].as_str().unwrap_or_default().split(" by ").next().unwrap_or_default().to_string())
                .collect::<Vec<String>>()
        }
    };
    let night: Vec<String> = eventually("night's sleeps and wakes in the log", Duration::from_secs(30), || async {
        let r = reasons("night").await;
        (r.len() >= 4).then_some(r)
    })
    .await;
    assert_eq!(
        night.iter().map(|w| w.split(':').next().unwrap_or_default().trim_end_matches(')')).collect::<Vec<_>>(),
        ["went to sleep (schedule", "woke (request", "went to sleep (schedule", "woke (person"],
        "{night:#?}"
    );
    let lazy = reasons("lazy").await;
    assert!(lazy.first().is_some_and(|w| w.starts_with("went to sleep (idle")), "{lazy:#?}");
    stop(up);
}

/// The operator's default schedules (`paved up --schedule-defaults`) apply
/// to specs without one: in `dev` an idle workload sleeps, in `qa` one
/// outside the default hours sleeps and says when it wakes, and its plan is
/// priced at those hours; `uat` has no default, and a spec's own schedule
/// wins over the default.
#[tokio::test]
async fn an_operators_default_schedules_apply_to_specs_without_one() {
    use chrono::{Timelike, Utc};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    // qa is up one hour a day, twelve hours from now.
    let now = Utc::now();
    let hour = (now.hour() + 12) % 24;
    let end = if hour == 23 { "24:00".to_string() } else { format!("{:02}:00", hour + 1) };
    let defaults = format!("dev:\n  idle_after: 2s\nqa:\n  uptime: \"Mon-Sun {hour:02}:00-{end} UTC\"\n");
    std::fs::write(path.join("schedules.yaml"), defaults).expect("write the defaults");
    let cost = paved::up::CostOptions { schedule_defaults: Some(path.join("schedules.yaml")), ..Default::default() };
    let options = paved::up::UpOptions { cost, ..paved_integration_tests::up_options(path.join("data")) };
    let platform = paved_integration_tests::ready(&options).await;
    let run = |args: &[&str]| paved_integration_tests::paved_on(&platform, args);
    let deploys = [("idle", "", "dev"), ("night", "", "qa"), ("idle", "", "uat"), ("keep", "schedule:\n  uptime: always\n", "dev")];
    for (name, schedule, env) in deploys {
        let svc = path.join(format!("{name}-{env}"));
        std::fs::create_dir_all(&svc).expect("mkdir");
        let spec = SPEC.replace("name: nap", &format!("name: {name}\nteam: demo")) + schedule;
        std::fs::write(svc.join("paved.yaml"), spec).expect("write");
        let out = run(&["deploy", svc.to_str().expect("path"), "--env", env]).await;
        assert!(out.status.success(), "{name} in {env}: {}{}", text(&out.stdout), text(&out.stderr));
    }
    let row = |name: &'static str, env: &'static str| {
        let out = run(&["status", "--output", "json"]);
        async move {
            let status: serde_json::Value = serde_json::from_slice(&out.await.stdout).expect("status json");
            let rows = status["workloads"].as_array().expect("workloads").clone();
            rows.into_iter().find(|w| w["name"] == name && w["environment"] == env).unwrap_or_else(|| panic!("{name} in {env}"))
        }
    };
    for (name, env) in [("idle", "dev"), ("night", "qa")] {
        eventually(&format!("{name} in {env} asleep"), Duration::from_secs(20), || async {
            (row(name, env).await["state"] == "sleeping").then_some(())
        })
        .await;
    }
    let night = row("night", "qa").await;
    let wakes = chrono::DateTime::parse_from_rfc3339(night["wakes_at"].as_str().expect("wakes_at")).expect("a time");
    let today = now.date_naive().and_hms_opt(hour, 0, 0).expect("an hour").and_utc();
    let expected = if today > now { today } else { today + chrono::Duration::days(1) };
    assert_eq!(wakes, expected, "{night}");
    // Past dev's idle_after, what has no default or its own schedule is up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(row("idle", "uat").await["state"], "healthy");
    assert_eq!(row("keep", "dev").await["state"], "healthy");

    // A change to night is priced at qa's hours: one in 24.
    let svc = path.join("night-qa");
    let spec = std::fs::read_to_string(svc.join("paved.yaml")).expect("read").replace("v1", "v2");
    std::fs::write(svc.join("paved.yaml"), spec).expect("write");
    let share = eventually("a priced plan", Duration::from_secs(20), || async {
        let out = run(&["plan", svc.to_str().expect("path"), "--env", "qa", "--output", "json"]).await;
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan json");
        plan["cost"]["awake_share"].as_f64()
    })
    .await;
    assert!((share - 1.0 / 24.0).abs() < 1e-9, "{share}");
    platform.stop().await.expect("stop");
}
