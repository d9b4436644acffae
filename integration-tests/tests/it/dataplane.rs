//! The data plane of `paved up` outlives the platform for its grace period,
//! as an operator meets it: a workload under steady load while `paved up`
//! (embedded, and `--self-hosted` on PostgreSQL and Redis) is killed with
//! SIGKILL and started again within it loses no request and keeps its
//! processes; killed and left alone, its workloads and their proxies stop
//! after the grace period. Started again with a new build of the data
//! plane's host installed, the new host takes the proxies over from the old
//! one, again without a failed request.

use crate::secrets::{Up, kill, paved_at, stop, up_from, up_on};
use paved_integration_tests::{
    Load, bin_dir, endpoint_in_status, eventually, postgres_server, process_gone, recorded_replicas, redis_namespace, text, unique,
};
use paved_runtime::pb::GetHostRequest;
use std::{path::Path, time::Duration};

const SPEC: &str = "name: steady\ncommand: [hello]\nhealth:\n  path: /healthz\nenv:\n  HELLO_VERSION: v1\n";

/// The pids of the workload processes recorded in the run directory.
fn recorded(path: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = recorded_replicas(&path.join("data/provisioner/run")).into_values().collect();
    pids.sort();
    pids
}

/// `steady` deployed to dev on `up`; its endpoint.
async fn deploy(up: &Up, path: &Path) -> String {
    let spec_dir = path.join("steady");
    std::fs::create_dir_all(&spec_dir).expect("mkdir");
    std::fs::write(spec_dir.join("paved.yaml"), SPEC).expect("write");
    let out = paved_at(&up.endpoint, path, &up.root, &["deploy", spec_dir.to_str().expect("path"), "--env", "dev"], None).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let out = paved_at(&up.endpoint, path, &up.root, &["status", "--output", "json"], None).await;
    endpoint_in_status(&out.stdout, "steady").unwrap_or_else(|| panic!("no endpoint of steady in {}", text(&out.stdout)))
}

/// Killed under load and started again within the grace period: no request
/// fails, and every workload process (the platform's own services too, when
/// self-hosted) is the one that ran before. The platform that came back.
async fn killed_and_started_again(path: &Path, port: u16, args: &[&str], env: &[(&str, &str)]) -> (Up, Load, String, Vec<i32>) {
    let first = up_on(path, 0, port, args, env);
    let endpoint = deploy(&first, path).await;
    let pids = recorded(path);
    assert!(!pids.is_empty());
    let load = Load::start(&endpoint, 8);
    eventually("the load to be served", Duration::from_secs(10), || async { (load.answered() > 100).then_some(()) }).await;
    kill(first);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let served_while_down = load.answered();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(load.answered() > served_while_down, "served while no platform runs");

    let second = up_on(path, 1, port, args, env);
    let answered = load.answered();
    eventually("the load to go on", Duration::from_secs(20), || async { (load.answered() > answered + 100).then_some(()) }).await;
    assert_eq!(recorded(path), pids, "every workload runs in the process it ran in");
    assert_eq!(load.failed(), 0, "no request failed across the kill and the restart ({} answered)", load.answered());
    (second, load, endpoint, pids)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

#[tokio::test]
async fn paved_up_killed_keeps_serving_for_its_grace_period_and_adopts_when_started_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let port = free_port();
    let (second, load, endpoint, pids) = killed_and_started_again(&path, port, &[], &[]).await;

    // Killed and left alone: the workload and its proxy stop after the grace period.
    kill(second);
    let killed = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(Path::new(&format!("/proc/{}", pids[0])).exists(), "still running within the grace period");
    eventually("the workload to stop after the grace period", Duration::from_secs(20), || async {
        let gone = process_gone(pids[0]);
        (gone && tokio::net::TcpStream::connect(&endpoint).await.is_err()).then_some(())
    })
    .await;
    let waited = killed.elapsed();
    eprintln!("stopped {waited:?} after the kill");
    assert!(waited >= Duration::from_secs(9), "not before the grace period: {waited:?}");
    drop(load);

    // A platform started after that starts it anew, and stops it with itself.
    let third = up_on(&path, 2, port, &[], &[]);
    eventually("the workload to serve again", Duration::from_secs(20), || async {
        crate::services::try_http_get(&endpoint, "/").await.filter(|body| body.contains("v1"))
    })
    .await;
    stop(third);
    eventually("the data plane to stop with the platform", Duration::from_secs(10), || async {
        (!path.join("data/provisioner/runtime.sock").exists()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn paved_up_self_hosted_killed_and_started_again_loses_no_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let redis = redis_namespace("it_dataplane").await;
    let prefix = format!("{}_", unique("it_dp"));
    let postgres = postgres_server();
    // Longer than a self-hosted start takes on a loaded machine.
    let env = [
        ("PAVED_POSTGRES_URL", postgres.as_str()),
        ("PAVED_REDIS_URL", redis.as_str()),
        ("PAVED_DATABASE_PREFIX", prefix.as_str()),
        ("PAVED_DATA_PLANE_GRACE_SECONDS", "60"),
    ];
    let (second, load, _, pids) = killed_and_started_again(&path, free_port(), &["--self-hosted"], &env).await;
    assert!(pids.len() >= 5, "the platform's four services and steady: {pids:?}");
    drop(load);
    stop(second);
    assert!(pids.iter().all(|pid| process_gone(*pid)), "stopped with the platform");
}

/// Installed as an operator installs it: `paved up`, the data plane's host
/// and the workload's command in a directory of their own (hard links to
/// the build). Killed under load, a new build of `paved-runtime` installed
/// there, and started again: the running host hands its proxies to one of
/// the new build, no request fails, and no workload process restarts.
#[tokio::test]
async fn paved_up_started_again_with_a_new_data_plane_build_hands_the_proxies_over_without_a_failed_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let install = path.join("bin");
    std::fs::create_dir_all(&install).expect("mkdir");
    for binary in ["paved", "paved-runtime", "hello"] {
        std::fs::hard_link(bin_dir().join(binary), install.join(binary)).expect("install");
    }
    let paved = install.join("paved");
    let (port, env) = (free_port(), [("PAVED_DATA_PLANE_GRACE_SECONDS", "60")]);
    let first = up_from(&paved, &path, 0, port, &[], &env);
    let endpoint = deploy(&first, &path).await;
    let pids = recorded(&path);
    let socket = path.join("data/provisioner/runtime.sock");
    let host = paved_runtime::client::connect(&socket).await.expect("the data plane's host");
    let old = host.clone().get_host(GetHostRequest {}).await.expect("host").into_inner();
    let load = Load::start(&endpoint, 8);
    eventually("the load to be served", Duration::from_secs(10), || async { (load.answered() > 100).then_some(()) }).await;
    kill(first);

    // The new build: another file where the old one was.
    std::fs::remove_file(install.join("paved-runtime")).expect("uninstall");
    std::fs::copy(bin_dir().join("paved-runtime"), install.join("paved-runtime")).expect("install the new build");
    let build = paved_runtime::build_of(&install.join("paved-runtime")).expect("build");
    assert_ne!(build, old.build);
    let second = up_from(&paved, &path, 1, port, &[], &env);
    let new = eventually("a new host to serve, reached through the same channel", Duration::from_secs(30), || {
        let mut host = host.clone();
        async move { host.get_host(GetHostRequest {}).await.ok().map(|h| h.into_inner()).filter(|h| h.pid != old.pid) }
    })
    .await;
    assert_eq!(new.build, build, "the new build serves the proxies");
    eventually("the old host to drain and exit", Duration::from_secs(20), || async { process_gone(old.pid as i32).then_some(()) }).await;
    let answered = load.answered();
    eventually("the load to go on", Duration::from_secs(20), || async { (load.answered() > answered + 100).then_some(()) }).await;
    assert_eq!(recorded(&path), pids, "every workload runs in the process it ran in");
    assert_eq!(load.failed(), 0, "no request failed across the kill and the hand-over ({} answered)", load.answered());
    drop(load);
    stop(second);
    eventually("the data plane to stop with the platform", Duration::from_secs(10), || async { (!socket.exists()).then_some(()) }).await;
}
