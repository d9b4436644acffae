//! `paved up`: the embedded platform on an empty data directory, its restart,
//! and the self-hosted mode where the platform deploys its own services.

use crate::services::http_get;
use paved::up::{Platform, SelfHosted, UpOptions};
use paved_integration_tests::{bin_dir, postgres_server, redis_namespace, unique};
use paved_proto::audit::v1::{ListEntriesRequest, audit_service_client::AuditServiceClient};
use paved_proto::provisioner::v1::{ListRevisionsRequest, provisioner_service_client::ProvisionerServiceClient};
use std::time::Duration;

fn options(data_dir: &std::path::Path) -> UpOptions {
    UpOptions {
        data_dir: data_dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        example: true,
        self_hosted: None,
        bin_dirs: vec![bin_dir()],
        trusted_keys: Default::default(),
        prometheus_url: None,
        cost: Default::default(),
        data_plane_grace_seconds: paved::up::DATA_PLANE_GRACE_SECONDS,
    }
}

#[tokio::test]
async fn embedded_up_is_healthy_and_restarts_to_the_same_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    let platform = Platform::start(&options(dir.path())).await.expect("paved up");
    platform.wait_ready(Duration::from_secs(30), |_| {}).await.expect("all five services and hello healthy");
    // One platform per data directory: a second refuses, naming the first
    // (released when it stops: it starts again below).
    let second = Platform::start(&options(dir.path())).await.err().expect("a second platform on the same data directory");
    let why = format!("{second:#}");
    assert!(why.contains(&format!("is in use by another `paved up` (process {})", std::process::id())), "{why}");

    let status =
        paved::status::status(paved::client::connect_with(&platform.addr.to_string(), &platform.root_token).await.expect("connect"))
            .await
            .expect("status");
    assert_eq!(status.services.len(), 5);
    assert!(status.services.iter().all(|s| s.state == "serving"), "{:?}", status.services);
    assert_eq!(status.workloads.len(), 1);
    let hello = &status.workloads[0];
    assert_eq!((hello.name.as_str(), hello.environment.as_str(), hello.state.as_str(), hello.revision), ("hello", "dev", "healthy", 1));
    assert_eq!(http_get(&hello.endpoint, "/").await, "hello from v1\n");
    let endpoint = hello.endpoint.clone();

    // The proxy counted that request against hello's revision.
    let metrics = http_get(&platform.addr.to_string(), "/metrics").await;
    let series = format!("paved_proxy_requests_total{{workload=\"dev/hello\",revision=\"{}\",class=\"2xx\"}} ", hello.revision_id);
    let count: u64 = metrics.lines().find_map(|l| l.strip_prefix(&series)).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    assert!(count >= 1, "no {series} in:\n{metrics}");
    assert!(
        metrics
            .contains(&format!("paved_proxy_request_duration_seconds_count{{workload=\"dev/hello\",revision=\"{}\"}}", hello.revision_id))
    );

    // The audit log: its key from `paved audit key` (no token), its
    // checkpoint over plain HTTP on the platform's port, verified by it.
    let key = audit_key(&platform.addr.to_string()).await;
    // The platform's own events (hello deployed, tokens issued) are in it.
    let (size, _) = verified_checkpoint(&platform.addr.to_string(), &key, 1).await;

    platform.stop().await.expect("stop");
    assert!(tokio::net::TcpStream::connect(&endpoint).await.is_err(), "Ctrl-C stops every process it started");

    // Same data directory: same workloads, same revision, same endpoint.
    let platform = Platform::start(&options(dir.path())).await.expect("paved up again");
    platform.wait_ready(Duration::from_secs(30), |_| {}).await.expect("healthy again");
    let status =
        paved::status::status(paved::client::connect_with(&platform.addr.to_string(), &platform.root_token).await.expect("connect"))
            .await
            .expect("status");
    assert_eq!(status.workloads.len(), 1, "hello is not deployed twice");
    let hello = &status.workloads[0];
    assert_eq!((hello.revision, hello.state.as_str(), hello.endpoint.as_str()), (1, "healthy", endpoint.as_str()));
    assert_eq!(http_get(&hello.endpoint, "/").await, "hello from v1\n");
    // The log kept its key (sealed under the root key beside the data) and
    // its tree: the new checkpoint is at least as large.
    assert_eq!(audit_key(&platform.addr.to_string()).await, key, "the log keeps its key across a restart");
    verified_checkpoint(&platform.addr.to_string(), &key, size).await;
    platform.stop().await.expect("stop");
}

async fn audit_key(endpoint: &str) -> String {
    let out = paved_integration_tests::paved(&["audit", "key", "--endpoint", endpoint]).await;
    assert!(out.status.success(), "{}", paved_integration_tests::text(&out.stderr));
    let key = paved_integration_tests::text(&out.stdout).trim().to_string();
    assert!(key.starts_with("paved/audit+"), "{key}");
    key
}

/// The first checkpoint at `/audit/log/checkpoint` of at least `size`
/// entries (waited for), each verified with `key`: (size, note).
async fn verified_checkpoint(endpoint: &str, key: &str, size: u64) -> (u64, String) {
    paved_integration_tests::eventually(&format!("a signed checkpoint of {size} entries"), Duration::from_secs(30), || async {
        let (status, _, body) = paved_integration_tests::http_get(&format!("http://{endpoint}/audit/log/checkpoint")).await;
        let note = status.is_success().then(|| String::from_utf8(body).expect("text"))?;
        let verifiers = signed_note::VerifierList::new(vec![Box::new(signed_note::StandardVerifier::new(key).expect("a verifier key"))]);
        let parsed = signed_note::Note::from_bytes(note.as_bytes()).expect("a signed note");
        parsed.verify(&verifiers).expect("the checkpoint verifies with `paved audit key`");
        let signed = tlog_tiles::Checkpoint::from_bytes(parsed.text()).expect("a checkpoint").size();
        (signed >= size).then_some((signed, note))
    })
    .await
}

#[tokio::test]
async fn self_hosted_platform_deploys_its_own_services() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = options(dir.path());
    options.example = false;
    options.self_hosted = Some(SelfHosted {
        postgres_url: postgres_server(),
        redis_url: redis_namespace("it_selfhosted").await,
        database_prefix: format!("{}_", unique("it_sh")),
    });
    let platform = Platform::start(&options).await.expect("paved up --self-hosted");
    platform.wait_ready(Duration::from_secs(90), |_| {}).await.expect("the four deployed services healthy");

    let status =
        paved::status::status(paved::client::connect_with(&platform.addr.to_string(), &platform.root_token).await.expect("connect"))
            .await
            .expect("status");
    assert!(status.services.iter().all(|s| s.state == "serving"), "{:?}", status.services);
    let mut deployed: Vec<(&str, &str, &str)> =
        status.workloads.iter().map(|w| (w.name.as_str(), w.environment.as_str(), w.state.as_str())).collect();
    deployed.sort();
    assert_eq!(
        deployed,
        [
            ("audit", "platform", "healthy"),
            ("canary-analyzer", "platform", "healthy"),
            ("cost-scheduler", "platform", "healthy"),
            ("secrets-broker", "platform", "healthy"),
        ]
    );

    // Through the one address: the deployed audit service answers, and it has
    // recorded the provisioner's events about deploying it.
    let mut audit =
        AuditServiceClient::new(paved::client::connect_with(&platform.addr.to_string(), &platform.root_token).await.expect("connect"));
    let entries = paved_integration_tests::eventually("audit entries through the forwarder", Duration::from_secs(30), || {
        let mut audit = audit.clone();
        async move {
            let entries =
                audit.list_entries(ListEntriesRequest { page_size: 100, page_token: String::new() }).await.ok()?.into_inner().entries;
            entries.iter().any(|e| e.subject == "environments/platform/workloads/audit").then_some(entries)
        }
    })
    .await;
    assert!(entries.iter().any(|e| e.r#type == "paved.provisioner.v1.workload.registered"));
    let status = audit.list_entries(ListEntriesRequest { page_size: -1, page_token: String::new() }).await.expect_err("bad page size");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "errors pass through the forwarder");
    // The servers' URLs reach the services through the runtime, never
    // through their specs, which the API serves back.
    let mut provisioner = ProvisionerServiceClient::new(
        paved::client::connect_with(&platform.addr.to_string(), &platform.root_token).await.expect("connect"),
    );
    let revisions = provisioner
        .list_revisions(ListRevisionsRequest {
            environment: "platform".into(),
            workload: "audit".into(),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .expect("revisions")
        .into_inner()
        .revisions;
    assert!(!revisions.is_empty());
    assert!(revisions.iter().all(|r| !r.spec_yaml.contains("postgres://") && !r.spec_yaml.contains("redis://")), "{revisions:?}");
    platform.stop().await.expect("stop");
}
