//! The error edge of every service: its storage fails under a real call
//! (a table the call reads is renamed away on the real PostgreSQL), and
//! the client gets UNAVAILABLE with an error id in `ErrorInfo` and none of
//! the cause, while the log carries the cause under the same id.

use paved_integration_tests::service_common as common;
use paved_integration_tests::{
    authed, capture_logs, postgres_database, provisioner_options, redis_namespace, start_broker, start_broker_at,
};
use paved_proto::audit::v1::{ListEntriesRequest, audit_service_client::AuditServiceClient};
use paved_proto::canary_analyzer::v1::{ListObservationsRequest, canary_analyzer_service_client::CanaryAnalyzerServiceClient};
use paved_proto::cost_scheduler::v1::{ListUsageRequest, cost_scheduler_service_client::CostSchedulerServiceClient};
use paved_proto::provisioner::v1::{ListWorkloadsRequest, provisioner_service_client::ProvisionerServiceClient};
use paved_proto::secrets_broker::v1::{ListIdentitiesRequest, secrets_broker_service_client::SecretsBrokerServiceClient};
use paved_service::{BasicConfig, ConsumerService, run_consumer};
use sea_orm::ConnectionTrait;
use std::{net::SocketAddr, time::Duration};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;

/// Renames `table` of `database` away, once the service has migrated it:
/// every query of it fails with the driver's text (`relation "…" does not
/// exist`), as a broken schema or a failed migration would.
async fn break_table(database: &str, table: &str) {
    let db = paved_store::connect(database).await.expect("connect");
    let rename = format!("ALTER TABLE {table} RENAME TO {table}_gone");
    paved_integration_tests::eventually("the table to exist", Duration::from_secs(30), || {
        let (db, rename) = (db.clone(), rename.clone());
        async move { db.execute_unprepared(&rename).await.ok() }
    })
    .await;
}

/// A channel to `addr` once it accepts connections.
async fn channel(addr: SocketAddr) -> Channel {
    paved_integration_tests::eventually("the service to accept connections", Duration::from_secs(30), || async {
        Channel::from_shared(format!("http://{addr}")).ok()?.connect().await.ok()
    })
    .await
}

/// The status a storage failure gets, and its log line.
fn assert_hidden(status: &tonic::Status, logs: &str, table: &str) {
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "STORAGE_UNAVAILABLE");
    let id = info.metadata.get(paved_grpc::status::ERROR_ID).expect("an error id");
    let message = status.message();
    assert!(message.contains(id.as_str()), "the message names the id: {message}");
    for leak in [table, "relation", "does not exist", "SELECT", "127.0.0.1", "postgres", "5432", "sqlx", "error returned"] {
        assert!(!message.to_lowercase().contains(&leak.to_lowercase()), "{leak:?} sent to the client: {message}");
    }
    let line = logs.lines().find(|l| l.contains(id.as_str())).unwrap_or_else(|| panic!("no log line with error id {id}:\n{logs}"));
    assert!(line.contains(table) && line.contains("does not exist"), "the log carries the cause: {line}");
}

/// Calls `call` until the service answers other than UNAVAILABLE for its
/// keys (a service still loading the broker's key set asks to retry),
/// then returns the storage failure.
async fn storage_failure<F, Fut>(mut call: F) -> tonic::Status
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    paved_integration_tests::eventually("the call to reach storage", Duration::from_secs(30), || {
        let answer = call();
        async move {
            let status = answer.await.expect_err("the storage is broken");
            let keys_loading = status.get_details_error_info().is_some_and(|i| i.reason == "KEYS_NOT_LOADED");
            (!keys_loading).then_some(status)
        }
    })
    .await
}

/// Starts `S` on a fresh database of its own; returns its address and database.
async fn start<S: ConsumerService>(
    broker: SocketAddr,
    stream: &str,
    options: S::Options,
    shutdown: &CancellationToken,
) -> (SocketAddr, String, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let database = postgres_database(&format!("it_edge_{}", S::NAME.replace('-', "_"))).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = BasicConfig { common: common(addr, broker, &database, stream), options };
    (addr, database, tokio::spawn(run_consumer::<S>(config, listener, shutdown.clone())))
}

#[tokio::test]
async fn audit_storage_failure_is_logged_not_sent() {
    let (_guard, logs) = capture_logs();
    let stream = redis_namespace("it_edge_audit").await;
    let shutdown = CancellationToken::new();
    let (broker, token, broker_task) = start_broker(&stream, &shutdown).await;
    let (addr, database, task) = start::<paved_audit::Audit>(broker, &stream, paved_integration_tests::audit_options(), &shutdown).await;
    let client = AuditServiceClient::new(authed(channel(addr).await, &token));
    break_table(&database, "audit_entries").await;
    let status = storage_failure(|| {
        let mut client = client.clone();
        async move { client.list_entries(ListEntriesRequest::default()).await.map(drop) }
    })
    .await;
    assert_hidden(&status, &logs.text(), "audit_entries");
    shutdown.cancel();
    let _ = (task.await, broker_task.await);
}

#[tokio::test]
async fn cost_scheduler_storage_failure_is_logged_not_sent() {
    let (_guard, logs) = capture_logs();
    let stream = redis_namespace("it_edge_cost").await;
    let shutdown = CancellationToken::new();
    let (broker, token, broker_task) = start_broker(&stream, &shutdown).await;
    let (addr, database, task) = start::<paved_cost_scheduler::CostScheduler>(broker, &stream, Default::default(), &shutdown).await;
    let client = CostSchedulerServiceClient::new(authed(channel(addr).await, &token));
    break_table(&database, "revision_usage").await;
    let status = storage_failure(|| {
        let mut client = client.clone();
        async move { client.list_usage(ListUsageRequest::default()).await.map(drop) }
    })
    .await;
    assert_hidden(&status, &logs.text(), "revision_usage");
    shutdown.cancel();
    let _ = (task.await, broker_task.await);
}

#[tokio::test]
async fn canary_analyzer_storage_failure_is_logged_not_sent() {
    let (_guard, logs) = capture_logs();
    let stream = redis_namespace("it_edge_canary").await;
    let shutdown = CancellationToken::new();
    let (broker, token, broker_task) = start_broker(&stream, &shutdown).await;
    let (addr, database, task) = start::<paved_canary_analyzer::CanaryAnalyzer>(broker, &stream, Default::default(), &shutdown).await;
    let client = CanaryAnalyzerServiceClient::new(authed(channel(addr).await, &token));
    break_table(&database, "observations").await;
    let status = storage_failure(|| {
        let mut client = client.clone();
        async move { client.list_observations(ListObservationsRequest::default()).await.map(drop) }
    })
    .await;
    assert_hidden(&status, &logs.text(), "observations");
    shutdown.cancel();
    let _ = (task.await, broker_task.await);
}

#[tokio::test]
async fn secrets_broker_storage_failure_is_logged_not_sent() {
    let (_guard, logs) = capture_logs();
    let stream = redis_namespace("it_edge_broker").await;
    let shutdown = CancellationToken::new();
    let database = postgres_database("it_edge_broker").await;
    let (broker, token, broker_task) = start_broker_at(&database, &stream, Default::default(), &shutdown).await;
    let client = SecretsBrokerServiceClient::new(authed(channel(broker).await, &token));
    break_table(&database, "identities").await;
    let status = storage_failure(|| {
        let mut client = client.clone();
        async move { client.list_identities(ListIdentitiesRequest::default()).await.map(drop) }
    })
    .await;
    assert_hidden(&status, &logs.text(), "identities");
    shutdown.cancel();
    let _ = broker_task.await;
}

#[tokio::test]
async fn provisioner_storage_failure_is_logged_not_sent() {
    let (_guard, logs) = capture_logs();
    let stream = redis_namespace("it_edge_prov").await;
    let shutdown = CancellationToken::new();
    let (broker, token, broker_task) = start_broker(&stream, &shutdown).await;
    let data = tempfile::tempdir().expect("temp dir");
    let database = postgres_database("it_edge_prov").await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = paved_provisioner::Config {
        common: common(addr, broker, &database, &stream),
        options: provisioner_options(data.path().to_path_buf()),
    };
    let task = tokio::spawn(paved_provisioner::run(config, listener, shutdown.clone()));
    let client = ProvisionerServiceClient::new(authed(channel(addr).await, &token));
    // Once it has migrated: the table exists before it is broken.
    paved_integration_tests::eventually("the provisioner to answer", Duration::from_secs(30), || {
        let mut client = client.clone();
        async move { client.list_workloads(ListWorkloadsRequest::default()).await.ok() }
    })
    .await;
    break_table(&database, "workloads").await;
    let status = storage_failure(|| {
        let mut client = client.clone();
        async move { client.list_workloads(ListWorkloadsRequest::default()).await.map(drop) }
    })
    .await;
    assert_hidden(&status, &logs.text(), "workloads");
    shutdown.cancel();
    let _ = (task.await, broker_task.await);
}
