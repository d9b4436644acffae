//! Databases and leases at the edge: `ConfigureDatabase`, `ListDatabases`,
//! `IssueDatabaseCredentials` (`database:creds:<name>`), `RenewLease` and
//! `RevokeLease` (the lease's holder, or `leases:manage`), `ListLeases`.

use super::access::{for_broker, needs};
use super::fields::duration;
use crate::database::{self, Config};
use crate::leases::{Lease, Leases};
use crate::recorder::Recorder;
use crate::tokens::MAX_RENEWABLE;
use paved_grpc::{auth, status};
use paved_proto::secrets_broker::v1::{
    self as pb, ConfigureDatabaseRequest, ConfigureDatabaseResponse, Database, IssueDatabaseCredentialsRequest,
    IssueDatabaseCredentialsResponse, ListDatabasesRequest, ListDatabasesResponse, ListLeasesRequest, ListLeasesResponse,
    RenewLeaseRequest, RenewLeaseResponse, RevokeLeaseRequest, RevokeLeaseResponse, revoke_lease_request,
};
use paved_proto::timestamp_from_millis;
use paved_token::Claims;
use std::time::Duration;
use tonic::{Request, Response, Status};

pub(super) struct LeasesApi {
    pub leases: Leases,
    pub recorder: Recorder,
}

impl From<Lease> for pb::Lease {
    fn from(l: Lease) -> Self {
        pb::Lease {
            lease_id: l.lease_id,
            subject: l.subject,
            token_id: l.token_id,
            issue_time: Some(timestamp_from_millis(l.issue_time_ms)),
            expire_time: Some(timestamp_from_millis(l.expire_time_ms)),
            max_expire_time: Some(timestamp_from_millis(l.max_expire_time_ms)),
            revoke_time: l.revoke_time_ms.map(timestamp_from_millis),
            revoke_attempts: i32::try_from(l.revoke_attempts).unwrap_or(i32::MAX),
            last_error: l.last_error,
        }
    }
}

impl From<Config> for Database {
    fn from(config: Config) -> Self {
        Database {
            name: config.name,
            group_role: config.group_role,
            default_ttl: Some(paved_proto::duration_from_std(config.default_ttl)),
            max_ttl: Some(paved_proto::duration_from_std(config.max_ttl)),
            target: config.target,
        }
    }
}

/// A database to configure, checked: its name, admin URL, group role, and
/// default and maximum lease times.
struct DatabaseRequest {
    name: String,
    connection_url: String,
    group_role: String,
    ttl: (Duration, Duration),
}

impl TryFrom<ConfigureDatabaseRequest> for DatabaseRequest {
    type Error = Status;

    fn try_from(req: ConfigureDatabaseRequest) -> Result<Self, Status> {
        let mut violations = Vec::new();
        if !database::valid_name(&req.name) {
            violations.push(("name".to_string(), "lowercase letters, digits, `-` and `_`, 1 to 63".to_string()));
        }
        if !req.connection_url.starts_with("postgres://") && !req.connection_url.starts_with("postgresql://") {
            violations.push(("connection_url".to_string(), "postgres://user:password@host:port/database".to_string()));
        }
        if !database::valid_role(&req.group_role) {
            violations.push(("group_role".to_string(), "a role name: lowercase letters, digits and `_`".to_string()));
        }
        let default_ttl = duration(req.default_ttl.as_ref(), "default_ttl", database::DEFAULT_TTL, MAX_RENEWABLE);
        let max_ttl = duration(req.max_ttl.as_ref(), "max_ttl", database::DEFAULT_MAX_TTL, MAX_RENEWABLE);
        let ttl = match (default_ttl, max_ttl) {
            (Ok(d), Ok(m)) if d <= m && violations.is_empty() => (d, m),
            (d, m) => {
                if matches!((&d, &m), (Ok(d), Ok(m)) if d > m) {
                    violations.push(("default_ttl".into(), "at most max_ttl".into()));
                }
                violations.extend(d.err());
                violations.extend(m.err());
                return Err(status::invalid_argument("INVALID_DATABASE", "invalid database", violations));
            }
        };
        Ok(Self { name: req.name, connection_url: req.connection_url, group_role: req.group_role, ttl })
    }
}

fn lease_id_invalid(field: &str) -> Status {
    status::invalid_argument("INVALID_LEASE_ID", format!("invalid {field}"), [(field.to_string(), "database/<name>/<id>".to_string())])
}

impl LeasesApi {
    /// The lease's holder, or `leases:manage`.
    async fn holds_lease(&self, caller: &Claims, id: &str) -> Result<(), Status> {
        for_broker(caller)?;
        if caller.allows("leases:manage") {
            return Ok(());
        }
        let lease = self.leases.lease(id).await?;
        if lease.subject != caller.sub {
            self.recorder.record("lease.denied", &caller.sub, id, "not the lease's holder").await;
            let message = format!("{} is not the holder of lease {id} and lacks scope leases:manage", caller.sub);
            return Err(status::permission_denied_for("NOT_LEASE_HOLDER", message, &[("scope", "leases:manage")]));
        }
        Ok(())
    }

    pub(super) async fn configure_database(
        &self,
        request: Request<ConfigureDatabaseRequest>,
    ) -> Result<Response<ConfigureDatabaseResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = DatabaseRequest::try_from(request.into_inner())?;
        let config = self.leases.databases().configure(&caller.sub, &req.name, &req.connection_url, &req.group_role, req.ttl).await?;
        Ok(Response::new(ConfigureDatabaseResponse { database: Some(config.into()) }))
    }

    pub(super) async fn list_databases(&self, _request: Request<ListDatabasesRequest>) -> Result<Response<ListDatabasesResponse>, Status> {
        let databases = self.leases.databases().list().await?;
        Ok(Response::new(ListDatabasesResponse { databases: databases.into_iter().map(Database::from).collect() }))
    }

    pub(super) async fn issue_credentials(
        &self,
        request: Request<IssueDatabaseCredentialsRequest>,
    ) -> Result<Response<IssueDatabaseCredentialsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        if !database::valid_name(&req.database) {
            let why = "a configured database's name".to_string();
            return Err(status::invalid_argument("INVALID_DATABASE", "invalid database", [("database".to_string(), why)]));
        }
        needs(&self.recorder, &caller, &format!("database:creds:{}", req.database), &req.database, "database.denied").await?;
        let ttl = duration(req.ttl.as_ref(), "ttl", database::DEFAULT_TTL, MAX_RENEWABLE)
            .map_err(|v| status::invalid_argument("INVALID_TTL", "invalid ttl", [v]))?;
        let ttl = req.ttl.is_some().then_some(ttl);
        let issued = self.leases.issue_database(&caller, &req.database, ttl).await?;
        Ok(Response::new(IssueDatabaseCredentialsResponse {
            username: issued.username,
            password: issued.password,
            lease: Some(issued.lease.into()),
        }))
    }

    pub(super) async fn renew(&self, request: Request<RenewLeaseRequest>) -> Result<Response<RenewLeaseResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        if !req.lease_id.starts_with("database/") {
            return Err(lease_id_invalid("lease_id"));
        }
        self.holds_lease(&caller, &req.lease_id).await?;
        let increment = duration(req.increment.as_ref(), "increment", database::DEFAULT_TTL, MAX_RENEWABLE)
            .map_err(|v| status::invalid_argument("INVALID_INCREMENT", "invalid increment", [v]))?;
        let increment = req.increment.is_some().then_some(increment);
        let lease = self.leases.renew(&caller.sub, &req.lease_id, increment).await?;
        Ok(Response::new(RenewLeaseResponse { lease: Some(lease.into()) }))
    }

    pub(super) async fn revoke(&self, request: Request<RevokeLeaseRequest>) -> Result<Response<RevokeLeaseResponse>, Status> {
        let caller = auth::caller(&request)?;
        let (id, prefix) = match request.into_inner().target {
            Some(revoke_lease_request::Target::LeaseId(id)) if id.starts_with("database/") => (id, false),
            Some(revoke_lease_request::Target::Prefix(prefix)) if !prefix.is_empty() => (prefix, true),
            Some(revoke_lease_request::Target::Prefix(_)) => return Err(lease_id_invalid("prefix")),
            _ => return Err(lease_id_invalid("lease_id")),
        };
        if prefix {
            needs(&self.recorder, &caller, "leases:manage", &id, "lease.denied").await?;
        } else {
            self.holds_lease(&caller, &id).await?;
        }
        let (revoked, failed) = self.leases.revoke(&caller.sub, &id, prefix).await?;
        if failed > 0 && !prefix {
            let lease = self.leases.lease(&id).await?;
            return Err(status::unavailable(
                "LEASE_REVOCATION_FAILED",
                format!("lease {id} could not be revoked yet: {}; the broker retries with backoff", lease.last_error),
            ));
        }
        let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(Response::new(RevokeLeaseResponse { revoked: count(revoked), failed: count(failed) }))
    }

    pub(super) async fn list(&self, request: Request<ListLeasesRequest>) -> Result<Response<ListLeasesResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let leases = self.leases.list(&req.prefix, size, offset).await?;
        let next_page_token = status::next_page_token(offset, size, leases.len());
        Ok(Response::new(ListLeasesResponse { leases: leases.into_iter().map(pb::Lease::from).collect(), next_page_token }))
    }
}
