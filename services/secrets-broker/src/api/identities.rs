//! Identities at the edge: `ListIdentities`, and secret zero —
//! `IssueBootstrapToken` (`bootstrap:issue:<env>/<workload>`) and
//! `ExchangeBootstrapToken` (open: the bootstrap token is the credential).

use super::access::needs;
use super::fields::duration;
use crate::bootstrap::{self, Binding, Bootstrap, ExchangeError};
use crate::identities::{self, Identity, ListError};
use crate::recorder::Recorder;
use crate::{database, secrets};
use paved_grpc::{auth, status};
use paved_proto::secrets_broker::v1::{
    self as pb, ExchangeBootstrapTokenRequest, ExchangeBootstrapTokenResponse, IssueBootstrapTokenRequest, IssueBootstrapTokenResponse,
    ListIdentitiesRequest, ListIdentitiesResponse,
};
use paved_proto::timestamp_from_millis;
use sea_orm::DatabaseConnection;
use std::time::Duration;
use tonic::{Request, Response, Status};

pub(super) struct IdentitiesApi {
    pub db: DatabaseConnection,
    pub bootstrap: Bootstrap,
    pub recorder: Recorder,
}

impl From<Identity> for pb::Identity {
    fn from(i: Identity) -> Self {
        pb::Identity {
            spiffe_id: i.spiffe_id,
            workload: i.workload,
            environment: i.environment,
            create_time: Some(timestamp_from_millis(i.create_time_ms)),
        }
    }
}

/// A bootstrap token request, checked: what it binds and for how long.
struct BootstrapRequest {
    binding: Binding,
    ttl: Duration,
}

impl TryFrom<IssueBootstrapTokenRequest> for BootstrapRequest {
    type Error = Status;

    fn try_from(req: IssueBootstrapTokenRequest) -> Result<Self, Status> {
        let mut violations = Vec::new();
        for (field, value) in [("environment", &req.environment), ("workload", &req.workload), ("revision_id", &req.revision_id)] {
            if !secrets::valid_path(value) || value.contains('/') {
                violations.push((field.to_string(), "a name: lowercase letters, digits, `-`, `_` and `.`".to_string()));
            }
        }
        // `platform` identities are the platform's own services: no
        // bootstrap token mints one (a certificate for the broker's name
        // would let its holder serve a forged key set).
        if req.environment == paved_grpc::tls::PLATFORM_ENVIRONMENT {
            violations.push(("environment".to_string(), "`platform` is reserved for the platform's own services".to_string()));
        }
        for (i, name) in req.secrets.iter().enumerate() {
            if !secrets::valid_path(name) || name.contains('/') {
                violations.push((format!("secrets[{i}]"), "a secret name: lowercase letters, digits, `-`, `_` and `.`".to_string()));
            }
        }
        for (i, name) in req.databases.iter().enumerate() {
            if !database::valid_name(name) {
                violations
                    .push((format!("databases[{i}]"), "a database name: lowercase letters, digits, `-` and `_`, 1 to 63".to_string()));
            }
        }
        if !req.artifact_digest.is_empty() && !bootstrap::is_digest(&req.artifact_digest) {
            violations.push(("artifact_digest".to_string(), "empty, or `sha256:` and 64 lowercase hex digits".to_string()));
        }
        let ttl = duration(req.ttl.as_ref(), "ttl", bootstrap::DEFAULT_TTL, bootstrap::MAX_TTL);
        let ttl = match ttl {
            Ok(t) if violations.is_empty() => t,
            t => {
                violations.extend(t.err());
                return Err(status::invalid_argument("INVALID_BOOTSTRAP_REQUEST", "invalid bootstrap request", violations));
            }
        };
        let binding = Binding {
            environment: req.environment,
            workload: req.workload,
            revision_id: req.revision_id,
            artifact_digest: req.artifact_digest,
            secrets: req.secrets,
            databases: req.databases,
            certificate: req.certificate,
        };
        Ok(Self { binding, ttl })
    }
}

impl IdentitiesApi {
    pub(super) async fn list(&self, request: Request<ListIdentitiesRequest>) -> Result<Response<ListIdentitiesResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let identities = identities::list(&self.db, size, offset).await.map_err(|e| match e {
            ListError::Query(e) => status::storage(&e),
            ListError::Row(e) => status::internal(&e),
        })?;
        let next_page_token = status::next_page_token(offset, size, identities.len());
        Ok(Response::new(ListIdentitiesResponse { identities: identities.into_iter().map(pb::Identity::from).collect(), next_page_token }))
    }

    pub(super) async fn issue_bootstrap(
        &self,
        request: Request<IssueBootstrapTokenRequest>,
    ) -> Result<Response<IssueBootstrapTokenResponse>, Status> {
        let caller = auth::caller(&request)?;
        let BootstrapRequest { binding, ttl } = request.into_inner().try_into()?;
        // Per workload: a pipeline holding `bootstrap:issue:dev/*` mints no
        // identity for production.
        let target = format!("{}/{}", binding.environment, binding.workload);
        needs(&self.recorder, &caller, &format!("bootstrap:issue:{target}"), &target, "bootstrap.denied").await?;
        let (bootstrap_token, expire) = self.bootstrap.issue(&caller.sub, &binding, ttl).await?;
        Ok(Response::new(IssueBootstrapTokenResponse {
            bootstrap_token,
            expire_time: Some(timestamp_from_millis(expire)),
            scopes: binding.scopes(),
        }))
    }

    pub(super) async fn exchange_bootstrap(
        &self,
        request: Request<ExchangeBootstrapTokenRequest>,
    ) -> Result<Response<ExchangeBootstrapTokenResponse>, Status> {
        let req = request.into_inner();
        match self.bootstrap.exchange(req.bootstrap_token.trim(), &req.artifact_digest).await {
            Ok((token, info)) => Ok(Response::new(ExchangeBootstrapTokenResponse { token, info: Some(info.into()) })),
            Err(ExchangeError::Authority(e)) => Err(e.into()),
            Err(e @ ExchangeError::ArtifactMismatch { .. }) => Err(status::permission_denied("ARTIFACT_MISMATCH", e.to_string())),
            // Never the token in the answer.
            Err(e) => {
                let reason = match e {
                    ExchangeError::Replayed => "BOOTSTRAP_REPLAYED",
                    ExchangeError::Expired => "BOOTSTRAP_EXPIRED",
                    _ => "BOOTSTRAP_UNKNOWN",
                };
                Err(status::unauthenticated(reason, e.to_string()))
            }
        }
    }
}
