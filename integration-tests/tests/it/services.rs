//! The services in production mode: each started with its own `run` on
//! 127.0.0.1:0, on the real PostgreSQL (a fresh database each) and the real
//! Redis (a fresh namespace), talking over gRPC and the event stream.

use paved_integration_tests::{OwnRedis, authed, eventually, postgres_database, redis_namespace, start_broker};
use paved_proto::audit::v1::{ListEntriesRequest, audit_service_client::AuditServiceClient};
use paved_proto::provisioner::v1::{
    ApplyWorkloadRequest, GetRevisionRequest, GetWorkloadRequest, ListWorkloadsRequest, RevisionState,
    provisioner_service_client::ProvisionerServiceClient,
};
use paved_proto::secrets_broker::v1::{ListIdentitiesRequest, secrets_broker_service_client::SecretsBrokerServiceClient};
use paved_service::{BasicConfig, Common, run_consumer};
use std::{net::SocketAddr, time::Duration};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_types::StatusExt;

const HELLO: &str = "name: hello\ncommand: [\"hello\"]\nhealth:\n  path: /healthz\nenv:\n  HELLO_VERSION: v7\n";

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    (l, addr)
}

async fn channel(addr: SocketAddr) -> Channel {
    eventually("the service to accept connections", Duration::from_secs(30), || async {
        Channel::from_shared(format!("http://{addr}")).ok()?.connect().await.ok()
    })
    .await
}

fn common(listen: SocketAddr, broker: SocketAddr, database_url: String, stream_url: &str) -> Common {
    paved_integration_tests::service_common(listen, broker, &database_url, stream_url)
}

/// Waits (bounded) until `service` reports SERVING, or NOT_SERVING when
/// `serving` is false. A lost database shows once a query gives up, after
/// the pool's 10 s acquire timeout, and maybe a few (measured alone: 1.7 to
/// 11.7 s; once past 30 s with the whole suite on two cores): a minute.
async fn wait_for_health(ch: &Channel, service: &str, want: bool) {
    let what = format!("{service} to be {}", if want { "SERVING" } else { "NOT_SERVING" });
    eventually(&what, Duration::from_secs(60), || async { (serving(ch.clone(), service).await == want).then_some(()) }).await;
}

async fn serving(channel: Channel, service: &str) -> bool {
    let mut health = HealthClient::new(channel);
    matches!(health.check(HealthCheckRequest { service: service.into() }).await, Ok(r) if r.get_ref().status() == ServingStatus::Serving)
}

struct Stack {
    provisioner: SocketAddr,
    audit: SocketAddr,
    broker: SocketAddr,
    token: String,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _data: tempfile::TempDir,
}

async fn start_stack() -> Stack {
    let stream = redis_namespace("it_services").await;
    let shutdown = CancellationToken::new();
    let data = tempfile::tempdir().expect("temp dir");
    let (broker, token, task) = start_broker(&stream, &shutdown).await;
    let mut tasks = vec![task];

    let (l, provisioner) = listener().await;
    let config = paved_provisioner::Config {
        common: common(provisioner, broker, postgres_database("it_prov").await, &stream),
        options: paved_integration_tests::provisioner_options(data.path().to_path_buf()),
    };
    tasks.push(tokio::spawn(paved_provisioner::run(config, l, shutdown.clone())));

    let (l, audit) = listener().await;
    let config = BasicConfig {
        common: common(audit, broker, postgres_database("it_audit").await, &stream),
        options: paved_integration_tests::audit_options(),
    };
    tasks.push(tokio::spawn(run_consumer::<paved_audit::Audit>(config, l, shutdown.clone())));

    Stack { provisioner, audit, broker, token, shutdown, tasks, _data: data }
}

impl Stack {
    async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            task.await.expect("service task").expect("service ended cleanly");
        }
    }
}

#[tokio::test]
async fn deploy_on_postgres_and_redis_reaches_every_service() {
    let stack = start_stack().await;
    let ch = channel(stack.provisioner).await;
    wait_for_health(&ch, "paved.provisioner.v1.ProvisionerService", true).await;
    let mut client = ProvisionerServiceClient::new(authed(ch.clone(), &stack.token));

    let applied = client
        .apply_workload(ApplyWorkloadRequest {
            environment: "dev".into(),
            spec_yaml: HELLO.into(),
            spec_path: "hello/paved.yaml".into(),
            request_id: "req-1".into(),
            spec: None,
        })
        .await
        .expect("apply")
        .into_inner();
    assert!(applied.changed);
    let revision = applied.revision.expect("revision");
    assert_eq!(revision.number, 1);

    // A retry with the same request id returns the same revision.
    let retry = client
        .apply_workload(ApplyWorkloadRequest {
            environment: "dev".into(),
            spec_yaml: HELLO.into(),
            spec_path: "hello/paved.yaml".into(),
            request_id: "req-1".into(),
            spec: None,
        })
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retry.revision.expect("revision").id, revision.id);
    assert!(!retry.changed);

    let healthy = eventually("hello healthy", Duration::from_secs(30), || {
        let mut client = client.clone();
        async move {
            let w = client
                .get_workload(GetWorkloadRequest { environment: "dev".into(), name: "hello".into() })
                .await
                .ok()?
                .into_inner()
                .workload?;
            (w.state == RevisionState::Healthy as i32).then_some(w)
        }
    })
    .await;
    let body = http_get(&healthy.endpoint, "/").await;
    assert!(body.contains("hello from v7"), "the proxy reaches the workload with its env: {body:?}");

    // Every event reaches the audit log, exactly once.
    let mut audit = AuditServiceClient::new(authed(channel(stack.audit).await, &stack.token));
    let types = eventually("events in the audit log", Duration::from_secs(20), || {
        let mut audit = audit.clone();
        async move {
            let entries =
                audit.list_entries(ListEntriesRequest { page_size: 100, page_token: String::new() }).await.ok()?.into_inner().entries;
            // The provisioner's (the broker's own, of the root token, interleave).
            let types: Vec<String> = entries.iter().map(|e| e.r#type.clone()).filter(|t| t.starts_with("paved.provisioner.")).collect();
            (types.len() >= 11).then_some(types)
        }
    })
    .await;
    // The revision's facts in order; the rollout's six transitions (created,
    // policy, identity, start, promote, promoted) and the policy decision
    // interleave with them.
    let (rollout, revision): (Vec<&String>, Vec<&String>) =
        types.iter().partition(|t| t.ends_with("rollout.transitioned") || t.ends_with("policy.decided"));
    assert_eq!(
        revision,
        [
            "paved.provisioner.v1.workload.registered",
            "paved.provisioner.v1.revision.deployed",
            "paved.provisioner.v1.revision.state_changed",
            "paved.provisioner.v1.revision.state_changed",
        ]
    );
    assert_eq!(rollout.len(), 7, "{types:?}");
    assert_eq!(rollout.iter().filter(|t| t.ends_with("policy.decided")).count(), 1, "{types:?}");
    let entries = audit.list_entries(ListEntriesRequest { page_size: 2, page_token: String::new() }).await.expect("page").into_inner();
    assert_eq!(entries.entries.len(), 2);
    assert_eq!(entries.next_page_token, "2");

    // The broker derived the workload's identity from the same stream.
    let broker = SecretsBrokerServiceClient::new(authed(channel(stack.broker).await, &stack.token));
    let ids = eventually("an identity", Duration::from_secs(20), || {
        let mut broker = broker.clone();
        async move {
            let ids = broker.list_identities(ListIdentitiesRequest::default()).await.ok()?.into_inner().identities;
            (!ids.is_empty()).then_some(ids)
        }
    })
    .await;
    assert_eq!(ids[0].spiffe_id, "spiffe://paved/dev/hello");

    let endpoint = healthy.endpoint.clone();
    stack.stop().await;
    // Shutdown stopped the workload's process.
    assert!(tokio::net::TcpStream::connect(&endpoint).await.is_err(), "the proxy is closed after shutdown");
}

#[tokio::test]
async fn bad_input_gets_precise_errors() {
    let stack = start_stack().await;
    let ch = channel(stack.provisioner).await;
    // Serving only once it holds the broker's key set.
    wait_for_health(&ch, "paved.provisioner.v1.ProvisionerService", true).await;
    let mut client = ProvisionerServiceClient::new(authed(ch.clone(), &stack.token));

    let bad = "name: hello\ncommand: [hello]\nhealth:\n  pth: /x\n";
    let status = client
        .apply_workload(ApplyWorkloadRequest {
            environment: "dev".into(),
            spec_yaml: bad.into(),
            spec_path: "svc/paved.yaml".into(),
            request_id: String::new(),
            spec: None,
        })
        .await
        .expect_err("invalid spec");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().starts_with("svc/paved.yaml:4:3: unknown field `pth`"), "{}", status.message());
    let violations = status.get_details_bad_request().expect("field violations").field_violations;
    assert_eq!(violations[0].field, "spec_yaml.health");
    assert_eq!(status.get_details_error_info().expect("error info").reason, "INVALID_SPEC");

    let status = client
        .apply_workload(ApplyWorkloadRequest {
            environment: "Prod!".into(),
            spec_yaml: HELLO.into(),
            spec_path: String::new(),
            request_id: String::new(),
            spec: None,
        })
        .await
        .expect_err("invalid environment");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(status.get_details_bad_request().expect("violations").field_violations[0].field, "environment");

    let status = client
        .list_workloads(ListWorkloadsRequest { environment: String::new(), page_size: -5, page_token: String::new() })
        .await
        .expect_err("bad page");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let status = client.get_revision(GetRevisionRequest { id: "nope".into() }).await.expect_err("unknown revision");
    assert_eq!(status.code(), tonic::Code::NotFound);
    let none = client.list_workloads(ListWorkloadsRequest::default()).await.expect("list").into_inner();
    assert!(none.workloads.is_empty(), "nothing was deployed by bad requests");

    // A process that exits at once: its revision fails with its stderr; the
    // platform keeps running.
    let crash = "name: crash\ncommand: [\"sh\", \"-c\", \"echo cannot-open-config >&2; exit 3\"]\n";
    let applied = client
        .apply_workload(ApplyWorkloadRequest {
            environment: "dev".into(),
            spec_yaml: crash.into(),
            spec_path: String::new(),
            request_id: String::new(),
            spec: None,
        })
        .await
        .expect("apply")
        .into_inner();
    let id = applied.revision.expect("revision").id;
    let failed = eventually("the crash revision to fail", Duration::from_secs(20), || {
        let (mut client, id) = (client.clone(), id.clone());
        async move {
            let r = client.get_revision(GetRevisionRequest { id }).await.ok()?.into_inner().revision?;
            (r.state == RevisionState::Failed as i32).then_some(r)
        }
    })
    .await;
    assert!(failed.message.contains("exited with code 3") && failed.message.contains("cannot-open-config"), "{}", failed.message);
    assert!(serving(ch, "").await, "the platform is still serving");
    stack.stop().await;
}

/// The services a reflection endpoint lists; `$version` is `v1` or
/// `v1alpha` (the generated types differ only by module).
macro_rules! list_services {
    ($version:ident, $ch:expr) => {{
        use futures::StreamExt;
        use tonic_reflection::pb::$version::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
            server_reflection_response::MessageResponse,
        };
        let req = ServerReflectionRequest { host: String::new(), message_request: Some(MessageRequest::ListServices(String::new())) };
        let mut stream =
            ServerReflectionClient::new($ch).server_reflection_info(tokio_stream::iter([req])).await.expect("reflection").into_inner();
        match stream.next().await.expect("a response").expect("ok").message_response {
            Some(MessageResponse::ListServicesResponse(list)) => list.service.into_iter().map(|s| s.name).collect::<Vec<String>>(),
            other => panic!("unexpected {other:?}"),
        }
    }};
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let stack = start_stack().await;
    let ch = channel(stack.audit).await;
    wait_for_health(&ch, "paved.audit.v1.AuditService", true).await;
    for (version, services) in [("v1", list_services!(v1, ch.clone())), ("v1alpha", list_services!(v1alpha, ch.clone()))] {
        assert!(services.contains(&"paved.audit.v1.AuditService".to_string()), "{version}: {services:?}");
        assert!(services.contains(&"grpc.health.v1.Health".to_string()), "{version}: {services:?}");
    }
    let metrics = http_get(&stack.audit.to_string(), "/metrics").await;
    assert!(metrics.contains("paved_grpc_server_requests_total"), "{metrics}");
    stack.stop().await;
}

/// A plain HTTP/1.1 GET over a TCP socket; returns the body.
pub async fn http_get(addr: &str, path: &str) -> String {
    try_http_get(addr, path).await.unwrap_or_else(|| panic!("GET http://{addr}{path} failed"))
}

/// [`http_get`], or None when the server is not reachable (yet).
pub async fn try_http_get(addr: &str, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes()).await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out.split_once("\r\n\r\n").map_or(out.clone(), |(_, b)| b.to_string()))
}

/// A Redis of the test's own, on a free port, so it can be killed.
#[tokio::test]
async fn lost_redis_is_retried_and_reported_in_health() {
    let port = { std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port() };
    let redis = OwnRedis::start(port, None).await;
    let shutdown = CancellationToken::new();
    // The broker on the shared Redis: only the audit service loses its own.
    let (broker, _token, broker_task) = start_broker(&redis_namespace("it_lost_broker").await, &shutdown).await;
    let (l, addr) = listener().await;
    let config = BasicConfig {
        common: common(addr, broker, postgres_database("it_lost").await, &format!("redis://127.0.0.1:{}", redis.port)),
        options: paved_integration_tests::audit_options(),
    };
    let task = tokio::spawn(run_consumer::<paved_audit::Audit>(config, l, shutdown.clone()));
    let ch = channel(addr).await;
    let audit = "paved.audit.v1.AuditService";
    wait_for_health(&ch, audit, true).await;

    redis.kill().await;
    wait_for_health(&ch, audit, false).await;
    assert!(!task.is_finished(), "the service keeps running without Redis");

    let _redis = OwnRedis::start(port, None).await;
    wait_for_health(&ch, audit, true).await;
    shutdown.cancel();
    task.await.expect("task").expect("clean stop");
    broker_task.await.expect("broker task").expect("clean stop");
}

/// PostgreSQL goes away while events arrive: the audit service reports
/// NOT_SERVING, keeps running, and records the event once the database is back.
#[tokio::test]
async fn lost_postgres_is_retried_and_nothing_is_lost() {
    use paved_proto::events::v1::envelope::Payload;
    use paved_proto::provisioner::v1::WorkloadRegistered;
    let database = postgres_database("it_lost_pg").await;
    let server: SocketAddr = "127.0.0.1:5432".parse().expect("addr");
    let mut pg = paved_integration_tests::Cuttable::start(server).await;
    let via_cut = database.replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", pg.port), 1);
    assert_ne!(via_cut, database, "the test database URL points at 127.0.0.1:5432");
    let stream_url = redis_namespace("it_lost_pg").await;
    let stream = paved_stream::open(&stream_url, 1000).await.expect("stream");

    let shutdown = CancellationToken::new();
    let (broker, token, broker_task) = start_broker(&stream_url, &shutdown).await;
    let (l, addr) = listener().await;
    let task = tokio::spawn(run_consumer::<paved_audit::Audit>(
        BasicConfig { common: common(addr, broker, via_cut, &stream_url), options: paved_integration_tests::audit_options() },
        l,
        shutdown.clone(),
    ));
    let ch = channel(addr).await;
    let audit = "paved.audit.v1.AuditService";
    wait_for_health(&ch, audit, true).await;

    pg.cut();
    let event =
        paved_stream::event::envelope("provisioner", "t", "while-down".into(), Payload::WorkloadRegistered(WorkloadRegistered::default()));
    stream.publish(&paved_stream::stream_name("provisioner"), &paved_stream::event::encode(&event)).await.expect("publish");
    wait_for_health(&ch, audit, false).await;
    assert!(!task.is_finished(), "the service keeps running without its database");

    pg.restore().await;
    wait_for_health(&ch, audit, true).await;
    let mut client = AuditServiceClient::new(authed(ch.clone(), &token));
    let entries = eventually("the event recorded", Duration::from_secs(20), || {
        let mut client = client.clone();
        async move {
            let entries = client.list_entries(ListEntriesRequest::default()).await.ok()?.into_inner().entries;
            let entries: Vec<_> = entries.into_iter().filter(|e| e.subject == "while-down").collect();
            (!entries.is_empty()).then_some(entries)
        }
    })
    .await;
    assert_eq!(entries.len(), 1, "recorded once");
    let _ = client.list_entries(ListEntriesRequest::default()).await.expect("the API works again");
    shutdown.cancel();
    task.await.expect("task").expect("clean stop");
    broker_task.await.expect("broker task").expect("clean stop");
}

/// Processes starting together on a database that does not exist yet
/// (replicas, or `paved token enrol` beside a starting broker) each create
/// and migrate it, one after the other: none fails on what another just
/// created.
#[tokio::test]
async fn processes_starting_together_migrate_one_database() {
    // Not created yet: each process creates it too.
    let url = format!("{}/{}", paved_integration_tests::postgres_server(), paved_integration_tests::unique("migrate_together"));
    let starts = (0..4).map(|_| paved_store::connect_and_migrate::<paved_secrets_broker::migration::Migrator>(&url));
    for started in futures::future::join_all(starts).await {
        started.unwrap_or_else(|e| panic!("created and migrated (this test needs PostgreSQL at {url}): {e}"));
    }
}

#[tokio::test]
async fn a_process_waiting_on_a_stuck_migration_names_who_holds_it() {
    use paved_store::sea_orm::{ConnectionTrait, TransactionTrait};
    let url = format!("{}/{}", paved_integration_tests::postgres_server(), paved_integration_tests::unique("migrate_stuck"));
    let first = paved_store::connect_and_migrate::<paved_secrets_broker::migration::Migrator>(&url)
        .await
        .unwrap_or_else(|e| panic!("created and migrated (this test needs PostgreSQL at {url}): {e}"));
    // A process stuck inside its migrations: it holds the lock and never ends.
    let stuck = first.begin().await.expect("begin");
    stuck.execute_unprepared("SET LOCAL application_name = 'stuck-migrator'").await.expect("name");
    stuck.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({})", paved_store::MIGRATION_LOCK)).await.expect("lock");
    let started = std::time::Instant::now();
    let waiting = paved_store::connect_and_migrate_within::<paved_secrets_broker::migration::Migrator>(&url, Duration::from_millis(500));
    let refused = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("gives up waiting on its own")
        .map(|_| ())
        .expect_err("waits a bounded time");
    let message = refused.to_string();
    assert!(matches!(refused, paved_store::StoreError::MigrationLocked { .. }), "{message}");
    assert!(message.contains("stuck-migrator") && message.contains("pid "), "names the holder: {message}");
    assert!(started.elapsed() < Duration::from_secs(10), "gave up after {:?}", started.elapsed());
    // Once the holder ends, the next start goes through.
    stuck.rollback().await.expect("rollback");
    paved_store::connect_and_migrate_within::<paved_secrets_broker::migration::Migrator>(&url, Duration::from_millis(500))
        .await
        .expect("migrated once the lock is free");
}
