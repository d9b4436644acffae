//! `paved delete` (DeleteWorkload): a workload with a rollout under way is
//! destroyed — its rollout gone, its proxy's port given up, its records
//! gone, an event in the audit log, its cost no longer counted — only with
//! its deploy scope, never one of the platform's own services; its name
//! deployed again starts afresh.

use crate::rollouts::{all_traffic_on, embedded, endpoint_of};
use paved_integration_tests::{authed, eventually, paved_with, text};
use paved_proto::audit::v1::{ListEntriesRequest, audit_service_client::AuditServiceClient};
use std::time::Duration;

fn spec(version: &str) -> String {
    format!(
        "name: web\ncommand: [\"hello\"]\nhealth:\n  period: 200ms\n  timeout: 200ms\nrollout:\n  steps: [50, 100]\n  interval: 60s\nenv:\n  HELLO_VERSION: {version}\n"
    )
}

#[tokio::test]
async fn a_deleted_workload_is_gone_with_its_rollout_processes_and_port() {
    let (_dir, platform, svc) = embedded().await;
    let (endpoint, root) = (platform.addr.to_string(), platform.root_token.clone());
    let paved = |token: &str, args: &[&str]| {
        let args: Vec<&str> = args.iter().copied().chain(["--endpoint", &endpoint]).collect();
        paved_with(token, &args)
    };
    let svc_dir = svc.to_str().expect("path").to_string();
    std::fs::write(svc.join("paved.yaml"), spec("v1")).expect("write");
    let out = paved(&root, &["deploy", &svc_dir, "--env", "dev"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let web = endpoint_of(&endpoint, &root, "web").await;
    all_traffic_on(&web, "v1").await;
    // A second revision, its rollout held at its first step for a minute.
    std::fs::write(svc.join("paved.yaml"), spec("v2")).expect("write");
    let out = paved(&root, &["deploy", &svc_dir, "--env", "dev", "--detach"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rollout = text(&out.stdout).trim().to_string();

    // Only with the workload's deploy scope.
    let args = ["token", "issue", "--subject", "spiffe://paved/dev/someone", "--scope", "write:provisioner", "--scope", "deploy:dev/other"];
    let other = paved(&root, &args).await;
    let other = text(&other.stdout).trim().to_string();
    let out = paved(&other, &["delete", "web", "--env", "dev"]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("deploy:dev/web"), "{}", text(&out.stderr));
    // Never one of the platform's own services.
    let out = paved(&root, &["delete", "audit", "--env", "platform"]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("one of the platform's own services"), "{}", text(&out.stderr));

    // Both revisions run processes (the canary, and its baseline).
    let got = paved(&root, &["rollout", "get", &rollout, "--output", "json"]).await;
    let got: serde_json::Value = serde_json::from_slice(&got.stdout).expect("rollout JSON");
    let revisions: Vec<String> =
        ["revision_id", "stable_revision_id"].iter().map(|k| got[k].as_str().expect("a revision id").to_string()).collect();
    eventually("both revisions' processes", Duration::from_secs(20), || async {
        revisions.iter().all(|r| !processes_of(std::slice::from_ref(r)).is_empty()).then_some(())
    })
    .await;

    let out = paved(&root, &["delete", "web", "--env", "dev", "--output", "json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let left = processes_of(&revisions);
    assert!(left.is_empty(), "processes outlived the delete: {left:?}");
    let deleted: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!((deleted["workload"].as_str(), deleted["revisions"].as_u64()), (Some("web"), Some(2)), "{deleted}");
    assert_eq!(deleted["endpoint"].as_str(), Some(web.trim_start_matches("http://")), "{deleted}");

    // Gone: from the status, its rollout, its port (free to bind again:
    // the proxy closed), and a second delete finds nothing.
    let out = paved(&root, &["status", "--output", "json"]).await;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert!(status["workloads"].as_array().expect("workloads").iter().all(|w| w["name"] != "web"), "{status}");
    let out = paved(&root, &["rollout", "get", &rollout]).await;
    assert!(!out.status.success(), "the rollout is gone: {}", text(&out.stdout));
    let port = web.trim_start_matches("http://");
    eventually("the proxy's port free", Duration::from_secs(5), || async { std::net::TcpListener::bind(port).ok() }).await;
    let out = paved(&root, &["delete", "web", "--env", "dev"]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("no workload web in environment dev"), "{}", text(&out.stderr));

    // Recorded; and the name deployed again is a new workload.
    let channel = paved::client::channel(&endpoint).await.expect("channel");
    let audit = AuditServiceClient::new(authed(channel, &root));
    eventually("workload.deleted in the audit log", Duration::from_secs(20), || {
        let mut audit = audit.clone();
        async move {
            let entries = audit.list_entries(ListEntriesRequest { page_size: 1000, page_token: String::new() }).await.ok()?.into_inner();
            entries.entries.iter().any(|e| e.r#type == "paved.provisioner.v1.workload.deleted").then_some(())
        }
    })
    .await;
    // Billed no more: its running time stopped with its processes (the
    // total: deleted before its first usage sample, its line comes with the
    // sampler's next pass).
    let hours = || {
        let report = paved(&root, &["cost", "report", "--by", "workload", "--since", "1h", "--output", "json"]);
        async move {
            let report: serde_json::Value = serde_json::from_slice(&report.await.stdout).ok()?;
            report["total"]["replica_hours"].as_f64()
        }
    };
    eventually("web's running time to stop growing", Duration::from_secs(20), || async {
        let before = hours().await?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        (before > 0.0 && hours().await? == before).then_some(())
    })
    .await;
    std::fs::write(svc.join("paved.yaml"), spec("v3")).expect("write");
    let out = paved(&root, &["deploy", &svc_dir, "--env", "dev", "--output", "json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(again["revision"], 1, "{again}");
    all_traffic_on(&endpoint_of(&endpoint, &root, "web").await, "v3").await;
    platform.stop().await.expect("stop");
}

/// The processes whose environment names one of `revisions` (the runtime
/// gives each `PAVED_REVISION`).
fn processes_of(revisions: &[String]) -> Vec<u32> {
    let wanted: Vec<String> = revisions.iter().map(|r| format!("PAVED_REVISION={r}")).collect();
    let entries = std::fs::read_dir("/proc").expect("/proc").flatten();
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            environ.split(|b| *b == 0).any(|var| wanted.iter().any(|w| var == w.as_bytes())).then_some(pid)
        })
        .collect()
}
