//! An inconclusive step is extended, and rolled back once its extensions
//! run out, across a SIGKILL of `paved up` (the canary analyzer judging):
//! the restarted platform resumes the step's recorded window, so the
//! extension taken before the kill counts and none is taken twice.

use crate::secrets::{kill, paved_at, stop, up_on};
use paved_integration_tests::{authed, eventually, text};
use paved_proto::provisioner::v1::{
    GetRolloutRequest, ListRolloutsRequest, Rollout, RolloutState, provisioner_service_client::ProvisionerServiceClient,
};
use std::time::Duration;

/// `idle`: no load reaches it, and a step without requests is
/// inconclusive; two extensions of a 3 s interval at most.
fn spec(version: &str) -> String {
    format!(
        "name: idle\ncommand: [hello]\nhealth:\n  path: /healthz\n  period: 200ms\n  timeout: 200ms\nrollout:\n  steps: [50, 100]\n  interval: 3s\nanalysis:\n  max_extensions: 2\n  require_traffic: true\nenv:\n  HELLO_VERSION: {version}\n"
    )
}

async fn rollout(endpoint: &str, token: &str, id: &str) -> Option<Rollout> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{endpoint}")).ok()?.connect().await.ok()?;
    let mut client = ProvisionerServiceClient::new(authed(channel, token));
    client.get_rollout(GetRolloutRequest { id: id.to_string() }).await.ok()?.into_inner().rollout
}

fn messages(r: &Rollout) -> Vec<String> {
    r.history.iter().map(|t| t.message.clone()).collect()
}

#[tokio::test]
async fn an_extended_step_keeps_its_extensions_across_a_sigkill_and_is_rolled_back_when_they_run_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path();
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let env = [("PAVED_DATA_PLANE_GRACE_SECONDS", "60")];
    let first = up_on(path, 0, port, &[], &env);
    let spec_dir = path.join("idle");
    std::fs::create_dir_all(&spec_dir).expect("mkdir");
    let deploy = |version: &str, extra: &[&str]| {
        std::fs::write(spec_dir.join("paved.yaml"), spec(version)).expect("write spec");
        let args = [&["deploy", spec_dir.to_str().expect("path"), "--env", "dev"][..], extra].concat();
        paved_at(&first.endpoint, path, &first.root, &args, None)
    };
    let out = deploy("v1", &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = deploy("v2", &["--detach"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", first.endpoint)).expect("uri").connect().await.expect("connect");
    let mut client = ProvisionerServiceClient::new(authed(channel, &first.root));
    let list = ListRolloutsRequest { environment: "dev".into(), workload: "idle".into(), ..Default::default() };
    let listed = client.list_rollouts(list).await.expect("rollouts").into_inner().rollouts;
    let id = listed.iter().find(|r| r.state == RolloutState::Running as i32).expect("v2's rollout").id.clone();

    let (endpoint, root) = (first.endpoint.clone(), first.root.clone());
    let extended = eventually("the first extension", Duration::from_secs(30), || async {
        rollout(&endpoint, &root, &id).await.filter(|r| messages(r).iter().any(|m| m.contains("extended by 3s (1 of 2)")))
    })
    .await;
    assert!(messages(&extended).iter().any(|m| m.contains("no requests reached the canary")), "{:?}", messages(&extended));
    kill(first);

    let second = up_on(path, 1, port, &[], &env);
    let done = eventually("the rollout to end after the restart", Duration::from_secs(60), || async {
        rollout(&second.endpoint, &second.root, &id).await.filter(|r| r.state != RolloutState::Running as i32)
    })
    .await;
    let said = messages(&done);
    assert_eq!(done.state, RolloutState::RolledBack as i32, "{said:?}");
    let count = |needle: &str| said.iter().filter(|m| m.contains(needle)).count();
    assert_eq!(count("(1 of 2)"), 1, "the first extension is not taken again: {said:?}");
    assert_eq!(count("step 1 resumed after a restart"), 1, "{said:?}");
    assert_eq!(count("(2 of 2)"), 1, "{said:?}");
    assert_eq!(count("step 1 (50% of traffic) inconclusive after 2 extensions"), 1, "{said:?}");
    assert_eq!(count("held again"), 0, "not held again in full: {said:?}");
    // Rolled back: v1 serves everything.
    let out = paved_at(&second.endpoint, path, &second.root, &["status", "--output", "json"], None).await;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let row = status["workloads"].as_array().expect("workloads").iter().find(|w| w["name"] == "idle").expect("idle").clone();
    let served = crate::services::try_http_get(row["endpoint"].as_str().expect("endpoint"), "/").await.expect("served");
    assert!(served.contains("v1"), "{served}");
    stop(second);
}
