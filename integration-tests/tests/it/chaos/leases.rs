//! Database credentials leased all through a chaos run, each for a few
//! seconds and left to expire, with the roles they made watched in
//! PostgreSQL: no role may outlive its lease by more than the broker's
//! revocation takes (it looks for due leases every 500 ms), plus its retry
//! window while a fault stopped it (retries back off from 1 s, doubling:
//! the next one comes at most about as long after the fault's end as the
//! fault lasted).
//!
//! The target database is on the run's own PostgreSQL, reached by the
//! broker through the same link as its own database: a cut or a crash
//! stops both.

use paved_integration_tests::authed;
use paved_proto::secrets_broker::v1::{
    ConfigureDatabaseRequest, IssueDatabaseCredentialsRequest, IssueTokenRequest, secrets_broker_service_client::SecretsBrokerServiceClient,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use std::{
    collections::BTreeMap,
    time::{Duration, Instant, SystemTime},
};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// The database's name at the broker, and the group role its leases join.
const NAME: &str = "target";
const GROUP: &str = "chaos_readers";
/// Each lease's life.
const TTL: Duration = Duration::from_secs(4);

/// A lease as the run saw it: its role, and when it expires.
pub(crate) struct Leased {
    pub(crate) role: String,
    pub(crate) expires: Instant,
}

/// Creates the target (a database and a NOLOGIN group role) on the
/// PostgreSQL at `direct` and configures it at the broker, reached at
/// `through` (the link).
pub(crate) async fn configure(broker: Channel, root: &str, direct: &str, through: &str) {
    let admin = target(direct).await;
    admin.execute_unprepared(&format!("CREATE ROLE {GROUP} NOLOGIN")).await.expect("the group role");
    let request = ConfigureDatabaseRequest {
        name: NAME.into(),
        connection_url: format!("{through}/chaos_target"),
        group_role: GROUP.into(),
        default_ttl: Some(prost_types::Duration { seconds: TTL.as_secs() as i64, nanos: 0 }),
        max_ttl: Some(prost_types::Duration { seconds: 60, nanos: 0 }),
    };
    SecretsBrokerServiceClient::new(authed(broker, root)).configure_database(request).await.expect("configure the target");
}

/// Leases credentials about every second until `stop`, as a holder of
/// `database:creds:target` would; the leases the broker granted.
pub(crate) async fn lease_all_along(broker: Channel, root: String, stop: CancellationToken) -> Vec<Leased> {
    let scoped = IssueTokenRequest {
        subject: "chaos-leaser".into(),
        scopes: vec![format!("database:creds:{NAME}")],
        audience: "secrets-broker".into(),
        // Longer than any run: its leases must not stop with it.
        ttl: Some(prost_types::Duration { seconds: 6 * 3600, nanos: 0 }),
        ..Default::default()
    };
    let token = loop {
        match SecretsBrokerServiceClient::new(authed(broker.clone(), &root)).issue_token(scoped.clone()).await {
            Ok(issued) => break issued.into_inner().token,
            Err(_) if !stop.is_cancelled() => tokio::time::sleep(Duration::from_millis(500)).await,
            Err(_) => return Vec::new(),
        }
    };
    let mut client = SecretsBrokerServiceClient::new(authed(broker, &token));
    let mut leased = Vec::new();
    while !stop.is_cancelled() {
        let request = IssueDatabaseCredentialsRequest { database: NAME.into(), ttl: None };
        // Refused or unanswered during a fault: the holder tries again.
        if let Ok(issued) = client.issue_database_credentials(request).await.map(tonic::Response::into_inner) {
            let expire = issued.lease.and_then(|l| l.expire_time).expect("the lease's expiry");
            let at = SystemTime::UNIX_EPOCH + Duration::new(expire.seconds as u64, expire.nanos as u32);
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            leased.push(Leased { role: issued.username, expires: Instant::now() + left });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    leased
}

async fn lease_roles(db: &DatabaseConnection) -> Result<Vec<String>, sea_orm::DbErr> {
    let sql = "SELECT rolname FROM pg_roles WHERE rolname LIKE 'paved\\_%'";
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
    Ok(rows.iter().filter_map(|r| r.try_get_by_index::<String>(0).ok()).collect())
}

/// When each lease role was last seen, sampling PostgreSQL at `direct`
/// every 200 ms until `done` (a crashed server is skipped).
pub(crate) async fn watch_roles(direct: String, done: CancellationToken) -> BTreeMap<String, Instant> {
    let db = target(&direct).await;
    let mut seen = BTreeMap::new();
    while !done.is_cancelled() {
        if let Ok(roles) = lease_roles(&db).await {
            let now = Instant::now();
            for role in roles {
                seen.insert(role, now);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    seen
}

/// The target database, on the PostgreSQL at `direct`.
pub(crate) async fn target(direct: &str) -> DatabaseConnection {
    paved_store::connect(&format!("{direct}/chaos_target")).await.expect("the target database")
}

/// Whether any role of `leased` is still there.
pub(crate) async fn any_left(db: &DatabaseConnection, leased: &[Leased]) -> bool {
    let roles = lease_roles(db).await.expect("the roles");
    leased.iter().any(|l| roles.contains(&l.role))
}
