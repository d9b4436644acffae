//! `paved db configure|list|creds` and `paved lease list|renew|revoke`:
//! dynamic PostgreSQL credentials and the leases they are held under. A
//! password is printed once, never in an error.

use crate::commands::explain;
use paved_grpc::client::AuthChannel;
use paved_proto::secrets_broker::v1::{
    ConfigureDatabaseRequest, Database, IssueDatabaseCredentialsRequest, IssueDatabaseCredentialsResponse, Lease, ListDatabasesRequest,
    ListLeasesRequest, RenewLeaseRequest, RevokeLeaseRequest, RevokeLeaseResponse, revoke_lease_request::Target,
    secrets_broker_service_client::SecretsBrokerServiceClient,
};
use std::{fmt::Write as _, time::Duration};

fn failed(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", explain(&status))
}

fn client(channel: AuthChannel) -> SecretsBrokerServiceClient<AuthChannel> {
    SecretsBrokerServiceClient::new(channel)
}

pub async fn configure(
    channel: AuthChannel,
    name: &str,
    connection_url: String,
    group_role: &str,
    ttl: (Option<Duration>, Option<Duration>),
) -> anyhow::Result<Database> {
    let request = ConfigureDatabaseRequest {
        name: name.to_string(),
        connection_url,
        group_role: group_role.to_string(),
        default_ttl: ttl.0.map(paved_proto::duration_from_std),
        max_ttl: ttl.1.map(paved_proto::duration_from_std),
    };
    let answer = client(channel).configure_database(request).await.map_err(failed)?.into_inner();
    answer.database.ok_or_else(|| anyhow::anyhow!("the broker answered no database"))
}

pub async fn databases(channel: AuthChannel) -> anyhow::Result<Vec<Database>> {
    Ok(client(channel).list_databases(ListDatabasesRequest {}).await.map_err(failed)?.into_inner().databases)
}

pub async fn credentials(channel: AuthChannel, database: &str, ttl: Option<Duration>) -> anyhow::Result<IssueDatabaseCredentialsResponse> {
    let request = IssueDatabaseCredentialsRequest { database: database.to_string(), ttl: ttl.map(paved_proto::duration_from_std) };
    Ok(client(channel).issue_database_credentials(request).await.map_err(failed)?.into_inner())
}

pub async fn leases(channel: AuthChannel, prefix: &str) -> anyhow::Result<Vec<Lease>> {
    let request = ListLeasesRequest { prefix: prefix.to_string(), page_size: 1000, ..Default::default() };
    Ok(client(channel).list_leases(request).await.map_err(failed)?.into_inner().leases)
}

pub async fn renew(channel: AuthChannel, lease_id: &str, increment: Option<Duration>) -> anyhow::Result<Lease> {
    let request = RenewLeaseRequest { lease_id: lease_id.to_string(), increment: increment.map(paved_proto::duration_from_std) };
    let answer = client(channel).renew_lease(request).await.map_err(failed)?.into_inner();
    answer.lease.ok_or_else(|| anyhow::anyhow!("the broker answered no lease"))
}

/// Revokes one lease, or every lease under `prefix`.
pub async fn revoke(channel: AuthChannel, target: Target) -> anyhow::Result<RevokeLeaseResponse> {
    Ok(client(channel).revoke_lease(RevokeLeaseRequest { target: Some(target) }).await.map_err(failed)?.into_inner())
}

pub use crate::secrets::time;

/// One line per lease: id, holder, expiry, state.
pub fn table(leases: &[Lease]) -> String {
    let mut out = format!("{:<56}  {:<32}  {:<19}  STATE\n", "LEASE", "SUBJECT", "EXPIRES");
    for l in leases {
        let state = match (&l.revoke_time, l.revoke_attempts) {
            (Some(t), _) => format!("revoked {}", time(Some(t))),
            (None, 0) => "active".to_string(),
            (None, n) => format!("revocation failing ({n} attempts): {}", l.last_error),
        };
        let _ = writeln!(out, "{:<56}  {:<32}  {:<19}  {state}", l.lease_id, l.subject, time(l.expire_time.as_ref()));
    }
    out
}

/// One line per database: name, group role, target, TTLs.
pub fn databases_table(databases: &[Database]) -> String {
    let mut out = format!("{:<24}  {:<24}  {:<40}  {:>8}  {:>8}\n", "NAME", "GROUP ROLE", "TARGET", "TTL", "MAX TTL");
    let secs = |d: &Option<prost_types::Duration>| d.as_ref().map_or(0, |d| d.seconds);
    for d in databases {
        let _ =
            writeln!(out, "{:<24}  {:<24}  {:<40}  {:>7}s  {:>7}s", d.name, d.group_role, d.target, secs(&d.default_ttl), secs(&d.max_ttl));
    }
    out
}
