//! `paved.secrets_broker.v1.SecretsBrokerService`.

use crate::authority::{self, Authority, AuthorityError, Grant, Target};
use crate::bootstrap;
use crate::ca::{self, Ca, CaError};
use crate::database::{self, DatabaseError};
use crate::leases::{LeaseError, Leases};
use crate::policy;
use crate::secrets::{self, SecretError, Secrets, Value};
use paved_grpc::{auth, status};
use paved_proto::secrets_broker::v1::{
    ConfigureDatabaseRequest, ConfigureDatabaseResponse, Database, IssueDatabaseCredentialsRequest, IssueDatabaseCredentialsResponse,
    ListDatabasesRequest, ListDatabasesResponse, ListLeasesRequest, ListLeasesResponse, RenewLeaseRequest, RenewLeaseResponse,
    RevokeLeaseRequest, RevokeLeaseResponse, revoke_lease_request,
};
use paved_proto::secrets_broker::v1::{
    ExchangeBootstrapTokenRequest, ExchangeBootstrapTokenResponse, GetKeySetRequest, GetKeySetResponse, GetSecretRequest,
    GetSecretResponse, Identity, IntrospectTokenRequest, IntrospectTokenResponse, IssueBootstrapTokenRequest, IssueBootstrapTokenResponse,
    IssueTokenRequest, IssueTokenResponse, ListIdentitiesRequest, ListIdentitiesResponse, ListSecretsRequest, ListSecretsResponse,
    ListTokensRequest, ListTokensResponse, PutSecretRequest, PutSecretResponse, RenewTokenRequest, RenewTokenResponse, RevokeTokenRequest,
    RevokeTokenResponse, RewrapKeysRequest, RewrapKeysResponse, RotateSigningKeyRequest, RotateSigningKeyResponse, Secret, TokenInfo,
    WatchSecretRequest, WatchSecretResponse, revoke_token_request,
    secrets_broker_service_server::{SecretsBrokerService, SecretsBrokerServiceServer},
};
use paved_proto::secrets_broker::v1::{
    ExchangeCertificateRequest, ExchangeCertificateResponse, GetTrustBundleRequest, GetTrustBundleResponse, IssueCertificateRequest,
    IssueCertificateResponse, RenewCertificateRequest, RenewCertificateResponse, RotateCertificateAuthorityRequest,
    RotateCertificateAuthorityResponse,
};
use paved_proto::secrets_broker::v1::{
    GetWorkloadPolicyRequest, GetWorkloadPolicyResponse, ListWorkloadPoliciesRequest, ListWorkloadPoliciesResponse,
};
use paved_proto::timestamp_from_millis;
use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Order, Query},
};
use std::time::Duration;
use tonic::{Request, Response, Status};

pub fn server(authority: Authority, secrets: Secrets, leases: Leases, ca: Ca) -> SecretsBrokerServiceServer<Api> {
    SecretsBrokerServiceServer::new(Api { authority, secrets, leases, ca })
}

pub struct Api {
    authority: Authority,
    secrets: Secrets,
    leases: Leases,
    ca: Ca,
}

// The API edge: each domain error becomes its canonical status here, and
// only here. A storage or sealing failure is logged with an error id and
// sent without its cause (`status::storage`, `status::logged`).

impl From<CaError> for Status {
    fn from(e: CaError) -> Self {
        match e {
            CaError::Csr(why) => {
                status::invalid_argument("INVALID_CSR", "invalid certificate signing request", [("csr_pem".to_string(), why)])
            }
            CaError::Database(e) => status::storage(&e),
            e @ CaError::NotEnrolled => status::unauthenticated("CERTIFICATE_NOT_ENROLLED", e.to_string()),
            e @ CaError::Replaced(_) => status::unauthenticated("CERTIFICATE_REPLACED", e.to_string()),
            e @ CaError::EnrolmentRevoked(..) => status::unauthenticated("ENROLMENT_REVOKED", e.to_string()),
            e @ CaError::EnrolmentOver(_) => status::unauthenticated("ENROLMENT_EXPIRED", e.to_string()),
            e @ (CaError::Sealed(..) | CaError::Sign(_)) => status::internal(&e),
        }
    }
}

impl From<DatabaseError> for Status {
    fn from(e: DatabaseError) -> Self {
        match e {
            DatabaseError::NotFound(name) => status::not_found("DATABASE_NOT_FOUND", format!("no database {name} is configured")),
            // The configured server's own words name its host: logged, as
            // for our storage, so that a workload asking for credentials
            // learns nothing of where they lead.
            e @ DatabaseError::Target(_) => status::logged(
                tonic::Code::Unavailable,
                "DATABASE_TARGET",
                "the configured database's server cannot be reached or refused a statement; retry",
                &e,
            ),
            DatabaseError::Invalid(why) => status::failed_precondition("DATABASE_INVALID", why),
            DatabaseError::Store(e) => status::storage(&e),
            e @ DatabaseError::Sealed(..) => {
                status::logged(tonic::Code::DataLoss, "SEALED_VALUE", "a sealed connection URL does not open", &e)
            }
        }
    }
}

impl From<LeaseError> for Status {
    fn from(e: LeaseError) -> Self {
        match e {
            LeaseError::NotFound(id) => status::not_found("LEASE_NOT_FOUND", format!("lease {id} not found")),
            LeaseError::Revoked(id) => status::failed_precondition("LEASE_REVOKED", format!("lease {id} is revoked or expired")),
            LeaseError::TokenRevoked(_) => caller_revoked(),
            LeaseError::Database(e) => e.into(),
        }
    }
}

impl From<SecretError> for Status {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::NotFound(path) => status::not_found("SECRET_NOT_FOUND", format!("no secret {path}")),
            e @ SecretError::Expired(..) => status::failed_precondition("SECRET_VERSION_EXPIRED", e.to_string()),
            SecretError::Database(e) => status::storage(&e),
            // Tampered ciphertext, or a root key missing: logged, and said
            // without detail (never the value).
            e @ SecretError::Sealed(..) => status::logged(tonic::Code::DataLoss, "SEALED_VALUE", "a sealed secret does not open", &e),
        }
    }
}

impl From<AuthorityError> for Status {
    fn from(e: AuthorityError) -> Self {
        match e {
            AuthorityError::NotFound(id) => status::not_found("TOKEN_NOT_FOUND", format!("token {id} not found")),
            AuthorityError::Revoked(id) => status::failed_precondition("TOKEN_REVOKED", format!("token {id} is revoked")),
            AuthorityError::NotRenewable(id) => {
                status::failed_precondition("TOKEN_NOT_RENEWABLE", format!("token {id} is past its renewable_until; ask for a new one"))
            }
            AuthorityError::Database(e) => status::storage(&e),
            e @ AuthorityError::Sealed(..) => status::internal(&e),
        }
    }
}

/// The caller's token was revoked before verifiers knew (a request already
/// past the auth layer): what they answer once they do.
fn caller_revoked() -> Status {
    auth::token_refused(&paved_token::TokenError::Revoked)
}

fn lease_id_invalid(field: &str) -> Status {
    status::invalid_argument("INVALID_LEASE_ID", format!("invalid {field}"), [(field.to_string(), "database/<name>/<id>".to_string())])
}

fn invalid_path(field: &str) -> Status {
    let why = "lowercase letters, digits, `-`, `_`, `.` and `/`, no empty or dot segment, at most 256 characters";
    status::invalid_argument("INVALID_SECRET_PATH", format!("invalid {field}"), [(field.to_string(), why.to_string())])
}

type SecretStream = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<WatchSecretResponse, Status>> + Send>>;

impl Api {
    /// PERMISSION_DENIED, with a `secret.denied` event, unless the caller
    /// holds `secrets:<access>:<path>`.
    async fn may(&self, caller: &paved_token::Claims, access: &str, path: &str) -> Result<(), Status> {
        self.needs(caller, &format!("secrets:{access}:{path}"), path, "secret.denied").await
    }

    /// A token for the broker or the platform holding `scope`; a denial is
    /// the event `denied` about `target`.
    async fn needs(&self, caller: &paved_token::Claims, scope: &str, target: &str, denied: &str) -> Result<(), Status> {
        for_broker(caller)?;
        if !caller.allows(scope) {
            self.authority.record(denied, &caller.sub, target, &format!("lacks {scope}")).await;
            return Err(auth::missing_scope(&caller.sub, scope));
        }
        Ok(())
    }

    /// The answer for a certificate just issued, with the bundle to trust.
    async fn certificate(&self, issued: ca::Issued) -> Result<IssueCertificateResponse, Status> {
        let (trust_bundle_pem, _) = self.ca.bundle().await?;
        Ok(IssueCertificateResponse {
            certificate_pem: issued.certificate_pem,
            spiffe_id: issued.spiffe_id,
            expire_time: Some(timestamp_from_millis(issued.expire_time_ms)),
            authority_id: issued.authority_id,
            trust_bundle_pem,
        })
    }

    /// Records why a client certificate was refused as a credential (a
    /// `certificate.denied` event); the answer.
    async fn certificate_refused(&self, presented: &tonic::transport::CertificateDer<'static>, e: CaError) -> Status {
        if matches!(e, CaError::NotEnrolled | CaError::Replaced(_) | CaError::EnrolmentRevoked(..) | CaError::EnrolmentOver(_)) {
            let presented_id = paved_grpc::tls::spiffe_id(presented).unwrap_or_default();
            self.authority.record("certificate.denied", &presented_id, &presented_id, &e.to_string()).await;
        }
        e.into()
    }

    /// The lease's holder, or `leases:manage`.
    async fn holds_lease(&self, caller: &paved_token::Claims, id: &str) -> Result<(), Status> {
        for_broker(caller)?;
        if caller.allows("leases:manage") {
            return Ok(());
        }
        let lease = self.leases.lease(id).await?;
        if lease.subject != caller.sub {
            self.authority.record("lease.denied", &caller.sub, id, "not the lease's holder").await;
            let message = format!("{} is not the holder of lease {id} and lacks scope leases:manage", caller.sub);
            return Err(status::permission_denied_for("NOT_LEASE_HOLDER", message, &[("scope", "leases:manage")]));
        }
        Ok(())
    }
}

/// The scope that enrols a platform identity for good, with its path
/// (`certs:enrol:platform/audit`); held by name, never through a wildcard.
pub(crate) const ENROL_SCOPE: &str = "certs:enrol:";

/// What a certificate's login may do: the enrolling token's scopes but any
/// that would get certificates (`certs:…`, `*`), so that a login cannot
/// start a line of its own beside the one it came from.
fn login_scopes(enrolling: Vec<String>) -> Vec<String> {
    const CERTS: &str = "certs:";
    enrolling.into_iter().filter(|s| !s.starts_with(CERTS) && s.strip_suffix('*').is_none_or(|prefix| !CERTS.starts_with(prefix))).collect()
}

/// The client certificate of a call over mTLS, verified to the trust
/// bundle in the handshake; UNAUTHENTICATED without one (not recorded:
/// anyone may call so, and such calls must not fill the audit trail).
fn presented<T>(request: &Request<T>) -> Result<tonic::transport::CertificateDer<'static>, Status> {
    request.peer_certs().and_then(|certs| certs.first().cloned()).ok_or_else(|| {
        status::unauthenticated(
            "PEER_CERTIFICATE_REQUIRED",
            "this call's credential is a client certificate: call over mTLS presenting it (or enrol with a token: IssueCertificate)",
        )
    })
}

/// A certificate request's CSR and ttl checked, with `violations` found
/// before: the ttl (default [`ca::DEFAULT_TTL`], at most `max`) or
/// INVALID_ARGUMENT.
fn certificate_request(
    csr_pem: &str,
    ttl: Option<&prost_types::Duration>,
    max: Duration,
    mut violations: Vec<(String, String)>,
) -> Result<Duration, Status> {
    if csr_pem.trim().is_empty() {
        violations.push(("csr_pem".to_string(), "a PKCS#10 request (PEM) signed by the certificate's key".to_string()));
    }
    let ttl = duration(ttl, "ttl", ca::DEFAULT_TTL, max).map_err(|v| violations.push(v)).ok();
    match ttl {
        Some(ttl) if violations.is_empty() => Ok(ttl),
        _ => Err(status::invalid_argument("INVALID_CERTIFICATE_REQUEST", "invalid certificate request", violations)),
    }
}

/// Token-only methods take any audience past the auth layer (a workload's
/// identity is for the broker, not for the platform): here, only a token
/// for the broker or the platform.
fn for_broker(caller: &paved_token::Claims) -> Result<(), Status> {
    if caller.aud != auth::PLATFORM_AUDIENCE && caller.aud != crate::SOURCE {
        return Err(status::unauthenticated(
            "WRONG_AUDIENCE",
            format!("a token for {} cannot be used here: ask for one for {} or {}", caller.aud, auth::PLATFORM_AUDIENCE, crate::SOURCE),
        ));
    }
    Ok(())
}

/// As `Status::from`, but the caller's own token revoked before verifiers knew is
/// answered as they will answer it.
fn issue_failed(e: AuthorityError, caller: &str) -> Status {
    match e {
        AuthorityError::Revoked(id) if id == caller => caller_revoked(),
        e => e.into(),
    }
}

/// The scopes a role grants.
pub fn role_scopes(role: &str, environment: &str, workloads: &str) -> Result<Vec<String>, (String, String)> {
    let need_env = || {
        if environment.is_empty() { Err(("environment".to_string(), format!("role {role} is per environment: name one"))) } else { Ok(()) }
    };
    let workloads = if workloads.is_empty() { "*" } else { workloads };
    match role {
        "admin" => Ok(vec!["*".into()]),
        "viewer" => Ok(vec!["read:*".into()]),
        "deployer" => {
            need_env()?;
            Ok(vec!["read:*".into(), "write:provisioner".into(), format!("deploy:{environment}/{workloads}")])
        }
        other => Err(("role".into(), format!("unknown role {other:?}: admin, viewer or deployer"))),
    }
}

/// Whether a token holding `held` may hand on `wanted`: every grant of
/// `wanted` must be a grant of `held` (a wildcard only under a wildcard
/// that covers it).
pub fn within(held: &[String], wanted: &str) -> bool {
    held.iter().any(|h| match h.strip_suffix('*') {
        Some(prefix) => wanted.starts_with(prefix),
        None => h == wanted,
    })
}

fn duration(d: Option<&prost_types::Duration>, field: &str, default: Duration, max: Duration) -> Result<Duration, (String, String)> {
    let Some(d) = d else { return Ok(default) };
    if d.seconds < 1 || d.nanos < 0 {
        return Err((field.into(), "must be at least 1 s".into()));
    }
    let d = Duration::from_secs(d.seconds as u64);
    if d > max {
        return Err((field.into(), format!("must be at most {} s", max.as_secs())));
    }
    Ok(d)
}

/// A scope: printable, `*` only at its end and only after `:`, `/` or `-`
/// (or alone): `secrets:read:dev/shop/*` and `deploy:dev/shop-*` are
/// prefixes a reader can see; `secrets:read:dev/shop*` would also cover
/// `dev/shopping`.
fn scope_is_valid(scope: &str) -> bool {
    let body = scope.strip_suffix('*').unwrap_or(scope);
    let wildcard_after_separator = body.len() == scope.len() || body.is_empty() || body.ends_with([':', '/', '-']);
    !scope.is_empty()
        && scope.len() <= 256
        && scope.chars().all(|c| c.is_ascii_graphic())
        && !body.contains('*')
        && wildcard_after_separator
}

/// The grant a request asks for, validated against what the caller holds.
fn grant(req: &IssueTokenRequest, caller: &paved_token::Claims) -> Result<Grant, Status> {
    let mut violations = Vec::new();
    if req.subject.is_empty() || req.subject.len() > 256 || req.subject.chars().any(char::is_control) {
        violations.push(("subject".to_string(), "a user or SPIFFE id of 1 to 256 printable characters".to_string()));
    }
    let mut scopes = req.scopes.clone();
    if !req.role.is_empty() {
        match role_scopes(&req.role, &req.environment, &req.workloads) {
            Ok(s) if s.iter().all(|s| scope_is_valid(s)) => scopes.extend(s),
            Ok(_) => violations.push(("workloads".into(), "a workload name, or a prefix ending in `-*` or `*` alone".into())),
            Err(v) => violations.push(v),
        }
    }
    if scopes.is_empty() && violations.is_empty() {
        violations.push(("scopes".into(), "name scopes or a role".into()));
    }
    for (i, scope) in req.scopes.iter().enumerate() {
        if !scope_is_valid(scope) {
            violations
                .push((format!("scopes[{i}]"), "printable, at most 256 characters, `*` only at the end after `:`, `/` or `-`".into()));
        }
    }
    let ttl = duration(req.ttl.as_ref(), "ttl", authority::DEFAULT_TTL, authority::MAX_TTL);
    let renewable = duration(req.max_ttl.as_ref(), "max_ttl", authority::DEFAULT_RENEWABLE, authority::MAX_RENEWABLE);
    let audience = if req.audience.is_empty() { auth::PLATFORM_AUDIENCE.to_string() } else { req.audience.clone() };
    if !auth::AUDIENCES.contains(&audience.as_str()) {
        violations.push(("audience".into(), format!("one of {}", auth::AUDIENCES.join(", "))));
    }
    let (ttl, renewable) = match (ttl, renewable) {
        (Ok(t), Ok(r)) if violations.is_empty() => (t, r),
        (t, r) => {
            violations.extend(t.err());
            violations.extend(r.err());
            return Err(status::invalid_argument("INVALID_TOKEN_REQUEST", "invalid token request", violations));
        }
    };
    scopes.sort();
    scopes.dedup();
    Ok(Grant { parent: Some(caller.jti.clone()), subject: req.subject.clone(), scopes, audience, ttl, renewable })
}

/// Why `caller` may not issue `grant`, if it may not: a token hands on only
/// what its holder has, never a longer reach than the holder's own
/// audience, and tokens for someone else need `issue:subjects` (a subject
/// names whose tokens a holder may revoke as its own).
fn refusal(grant: &Grant, caller: &paved_token::Claims) -> Option<Status> {
    if let Some(scope) = grant.scopes.iter().find(|s| !within(&caller.scp, s)) {
        let message = format!("{} cannot grant scope {scope}: it does not hold it", caller.sub);
        return Some(status::permission_denied_for("SCOPE_NOT_HELD", message, &[("scope", scope)]));
    }
    if caller.aud != auth::PLATFORM_AUDIENCE && caller.aud != grant.audience {
        let message = format!("a token for {} cannot issue tokens for {}", caller.aud, grant.audience);
        return Some(status::permission_denied_for("AUDIENCE_NOT_HELD", message, &[("audience", &grant.audience)]));
    }
    if grant.subject != caller.sub && !caller.allows(ISSUE_SUBJECTS) {
        let message = format!("{} lacks scope {ISSUE_SUBJECTS} to issue for {}", caller.sub, grant.subject);
        return Some(status::permission_denied_for("MISSING_SCOPE", message, &[("scope", ISSUE_SUBJECTS)]));
    }
    None
}

/// The scope that issues tokens for other subjects.
const ISSUE_SUBJECTS: &str = "issue:subjects";
/// The scope that revokes other subjects' tokens.
const REVOKE_TOKENS: &str = "revoke:tokens";

#[tonic::async_trait]
impl SecretsBrokerService for Api {
    async fn list_identities(&self, request: Request<ListIdentitiesRequest>) -> Result<Response<ListIdentitiesResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let query = Query::select()
            .columns(["spiffe_id", "workload", "environment", "create_time_ms"].map(Alias::new))
            .from(Alias::new("identities"))
            .order_by(Alias::new("spiffe_id"), Order::Asc)
            .limit(size)
            .offset(offset)
            .to_owned();
        let rows = self.authority.db().query_all(&query).await.map_err(|e| status::storage(&e))?;
        let identities = rows
            .iter()
            .map(|row| {
                Ok(Identity {
                    spiffe_id: row.try_get("", "spiffe_id")?,
                    workload: row.try_get("", "workload")?,
                    environment: row.try_get("", "environment")?,
                    create_time: Some(timestamp_from_millis(row.try_get("", "create_time_ms")?)),
                })
            })
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()
            .map_err(|e| status::internal(&e))?;
        let next_page_token = status::next_page_token(offset, size, identities.len());
        Ok(Response::new(ListIdentitiesResponse { identities, next_page_token }))
    }

    async fn get_key_set(&self, request: Request<GetKeySetRequest>) -> Result<Response<GetKeySetResponse>, Status> {
        let known = request.into_inner().known_version;
        let set = self.authority.key_set().await?;
        if known == set.version {
            return Ok(Response::new(GetKeySetResponse { version: set.version, not_modified: true, ..Default::default() }));
        }
        Ok(Response::new((*set).clone()))
    }

    async fn issue_token(&self, request: Request<IssueTokenRequest>) -> Result<Response<IssueTokenResponse>, Status> {
        let caller = auth::caller(&request)?;
        let mut grant = grant(request.get_ref(), &caller)?;
        if let Some(refused) = refusal(&grant, &caller) {
            self.authority.record("token.denied", &caller.sub, &grant.subject, refused.message()).await;
            return Err(refused);
        }
        // Never outliving the token that asked: a child lives and renews
        // only as long as its parent could.
        // The token says how long it may be renewed (signed, so no lookup).
        let parent_until = if caller.ren > 0 { caller.ren } else { caller.exp }.saturating_mul(1000);
        let left = Duration::from_millis(u64::try_from(parent_until - chrono::Utc::now().timestamp_millis()).unwrap_or(0));
        if left.is_zero() {
            return Err(status::failed_precondition(
                "TOKEN_NOT_RENEWABLE",
                "this token can no longer issue tokens: it is past its renewable_until",
            ));
        }
        grant.ttl = grant.ttl.min(left);
        grant.renewable = grant.renewable.min(left);
        let (token, info) = self.authority.issue(&caller.sub, &grant).await.map_err(|e| issue_failed(e, &caller.jti))?;
        Ok(Response::new(IssueTokenResponse { token, info: Some(info) }))
    }

    async fn renew_token(&self, request: Request<RenewTokenRequest>) -> Result<Response<RenewTokenResponse>, Status> {
        let caller = auth::caller(&request)?;
        let ttl = duration(request.get_ref().ttl.as_ref(), "ttl", authority::DEFAULT_TTL, authority::MAX_TTL)
            .map_err(|v| status::invalid_argument("INVALID_TTL", "invalid ttl", [v]))?;
        let ttl = request.get_ref().ttl.is_some().then_some(ttl);
        let (token, info) = self.authority.renew(&caller, ttl).await?;
        Ok(Response::new(RenewTokenResponse { token, info: Some(info) }))
    }

    async fn revoke_token(&self, request: Request<RevokeTokenRequest>) -> Result<Response<RevokeTokenResponse>, Status> {
        let caller = auth::caller(&request)?;
        let target = match request.into_inner().target {
            Some(revoke_token_request::Target::TokenId(id)) if !id.is_empty() => Target::Token(id),
            Some(revoke_token_request::Target::Subject(subject)) if !subject.is_empty() => Target::Subject(subject),
            _ => {
                return Err(status::invalid_argument(
                    "INVALID_REVOKE_REQUEST",
                    "name a token or a subject",
                    [("target".to_string(), "token_id or subject, not empty".to_string())],
                ));
            }
        };
        // Anyone may revoke their own tokens; others' need `revoke:tokens`.
        let own = match &target {
            Target::Token(id) => id == &caller.jti || self.authority.token(id).await?.is_some_and(|t| t.subject == caller.sub),
            Target::Subject(subject) => subject == &caller.sub,
            Target::IssuedFrom(_) => false,
        };
        if !own && !caller.allows(REVOKE_TOKENS) {
            let refused = auth::missing_scope(&caller.sub, REVOKE_TOKENS);
            let target = match &target {
                Target::Token(id) | Target::Subject(id) | Target::IssuedFrom(id) => id.clone(),
            };
            self.authority.record("token.denied", &caller.sub, &target, refused.message()).await;
            return Err(refused);
        }
        let revoked = self.authority.revoke(&caller.sub, &target, &format!("revoked by {}", caller.sub)).await?;
        Ok(Response::new(RevokeTokenResponse { revoked: i32::try_from(revoked).unwrap_or(i32::MAX) }))
    }

    async fn introspect_token(&self, request: Request<IntrospectTokenRequest>) -> Result<Response<IntrospectTokenResponse>, Status> {
        let token = request.into_inner().token;
        let answer = match self.authority.introspect(&token).await? {
            Ok(claims) => IntrospectTokenResponse {
                active: true,
                reason: String::new(),
                info: Some(TokenInfo {
                    token_id: claims.jti,
                    subject: claims.sub,
                    scopes: claims.scp,
                    audience: claims.aud,
                    issue_time: Some(timestamp_from_millis(claims.iat.saturating_mul(1000))),
                    expire_time: Some(timestamp_from_millis(claims.exp.saturating_mul(1000))),
                    ..Default::default()
                }),
            },
            Err(e) => IntrospectTokenResponse { active: false, reason: e.to_string(), info: None },
        };
        Ok(Response::new(answer))
    }

    async fn issue_bootstrap_token(
        &self,
        request: Request<IssueBootstrapTokenRequest>,
    ) -> Result<Response<IssueBootstrapTokenResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
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
        let ttl = duration(req.ttl.as_ref(), "ttl", bootstrap::DEFAULT_TTL, bootstrap::MAX_TTL);
        let ttl = match ttl {
            Ok(t) if violations.is_empty() => t,
            t => {
                violations.extend(t.err());
                return Err(status::invalid_argument("INVALID_BOOTSTRAP_REQUEST", "invalid bootstrap request", violations));
            }
        };
        // Per workload: a pipeline holding `bootstrap:issue:dev/*` mints no
        // identity for production.
        let target = format!("{}/{}", req.environment, req.workload);
        self.needs(&caller, &format!("bootstrap:issue:{target}"), &target, "bootstrap.denied").await?;
        let binding = bootstrap::Binding {
            environment: req.environment,
            workload: req.workload,
            revision_id: req.revision_id,
            artifact_digest: req.artifact_digest,
            secrets: req.secrets,
            databases: req.databases,
            certificate: req.certificate,
        };
        let (bootstrap_token, expire) = bootstrap::issue(&self.authority, &caller.sub, &binding, ttl).await?;
        Ok(Response::new(IssueBootstrapTokenResponse {
            bootstrap_token,
            expire_time: Some(timestamp_from_millis(expire)),
            scopes: binding.scopes(),
        }))
    }

    async fn exchange_bootstrap_token(
        &self,
        request: Request<ExchangeBootstrapTokenRequest>,
    ) -> Result<Response<ExchangeBootstrapTokenResponse>, Status> {
        let token = request.into_inner().bootstrap_token;
        match bootstrap::exchange(&self.authority, token.trim()).await {
            Ok((token, info)) => Ok(Response::new(ExchangeBootstrapTokenResponse { token, info: Some(info) })),
            Err(bootstrap::ExchangeError::Authority(e)) => Err(e.into()),
            // Never the token in the answer.
            Err(e) => {
                let reason = match e {
                    bootstrap::ExchangeError::Replayed => "BOOTSTRAP_REPLAYED",
                    bootstrap::ExchangeError::Expired => "BOOTSTRAP_EXPIRED",
                    _ => "BOOTSTRAP_UNKNOWN",
                };
                Err(status::unauthenticated(reason, e.to_string()))
            }
        }
    }

    async fn put_secret(&self, request: Request<PutSecretRequest>) -> Result<Response<PutSecretResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        if !secrets::valid_path(&req.path) {
            return Err(invalid_path("path"));
        }
        self.may(&caller, "write", &req.path).await?;
        let value = match (req.value.is_empty(), req.generate_bytes) {
            (false, 0) if req.value.len() <= secrets::MAX_VALUE => Value::Given(req.value),
            (true, n @ 16..=1024) => {
                let every =
                    duration(req.rotate_every.as_ref(), "rotate_every", secrets::DEFAULT_ROTATION, Duration::from_secs(365 * 86400))
                        .map_err(|v| status::invalid_argument("INVALID_SECRET", "invalid rotate_every", [v]))?;
                Value::Generated { bytes: n, rotate_every: every }
            }
            _ => {
                let why = format!("a value of 1 to {} bytes, or generate_bytes between 16 and 1024, not both", secrets::MAX_VALUE);
                return Err(status::invalid_argument("INVALID_SECRET", "invalid secret", [("value".to_string(), why)]));
            }
        };
        let version = self.secrets.put(&caller.sub, &req.path, value).await?;
        Ok(Response::new(PutSecretResponse { version: Some(version) }))
    }

    async fn get_secret(&self, request: Request<GetSecretRequest>) -> Result<Response<GetSecretResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        if !secrets::valid_path(&req.path) {
            return Err(invalid_path("path"));
        }
        self.may(&caller, "read", &req.path).await?;
        let (meta, value) = self.secrets.get(&req.path, req.version).await?;
        // No value leaves unrecorded.
        if !self.authority.record("secret.read", &caller.sub, &format!("{}#{}", meta.path, meta.version), "").await {
            return Err(status::unavailable("EVENTS_UNAVAILABLE", "the read cannot be recorded now: try again"));
        }
        Ok(Response::new(GetSecretResponse { secret: Some(Secret { meta: Some(meta), value }) }))
    }

    async fn list_secrets(&self, request: Request<ListSecretsRequest>) -> Result<Response<ListSecretsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        if !req.prefix.is_empty() && !secrets::valid_path(req.prefix.trim_end_matches('/')) {
            return Err(invalid_path("prefix"));
        }
        self.may(&caller, "read", &format!("{}*", req.prefix)).await?;
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let secrets = self.secrets.list(&req.prefix, size, offset).await?;
        let next_page_token = status::next_page_token(offset, size, secrets.len());
        Ok(Response::new(ListSecretsResponse { secrets, next_page_token }))
    }

    type WatchSecretStream = SecretStream;

    async fn watch_secret(&self, request: Request<WatchSecretRequest>) -> Result<Response<SecretStream>, Status> {
        let caller = auth::caller(&request)?;
        let path = request.into_inner().path;
        if !secrets::valid_path(&path) {
            return Err(invalid_path("path"));
        }
        self.may(&caller, "read", &path).await?;
        let (secrets, authority) = (self.secrets.clone(), self.authority.clone());
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut writes = secrets.writes();
        tokio::spawn(async move {
            let mut sent = 0u32;
            loop {
                // A watch lives no longer than the token that opened it.
                if let Some(why) = authority.no_longer_valid(&caller).await {
                    let _ = tx.send(Err(status::unauthenticated("WATCH_TOKEN_ENDED", format!("the watch's token {why}")))).await;
                    return;
                }
                match secrets.get(&path, 0).await {
                    Ok((meta, value)) if meta.version != sent => {
                        sent = meta.version;
                        if !authority.record("secret.read", &caller.sub, &format!("{path}#{sent}"), "watch").await {
                            let _ = tx.send(Err(status::unavailable("EVENTS_UNAVAILABLE", "the read cannot be recorded now"))).await;
                            return;
                        }
                        if tx.send(Ok(WatchSecretResponse { secret: Some(Secret { meta: Some(meta), value }) })).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(SecretError::NotFound(_)) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                }
                // A write here wakes at once; another replica's within a second.
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = writes.changed() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn rewrap_keys(&self, request: Request<RewrapKeysRequest>) -> Result<Response<RewrapKeysResponse>, Status> {
        let caller = auth::require(&request, "rotate:keys")?;
        let signing = self.authority.rewrap().await? + self.ca.rewrap().await?;
        let (secret_keys, failed) = self.secrets.rewrap().await?;
        let data = secret_keys + self.leases.databases().rewrap().await?;
        let root_key_id = self.authority.keys().current().id.clone();
        let what = format!("{signing} signing and CA keys, {data} data keys and connection URLs, {failed} data keys that do not open");
        self.authority.record("root_key.rewrapped", &caller.sub, &root_key_id, &what).await;
        if failed > 0 {
            return Err(status::data_loss("KEYS_DO_NOT_OPEN", format!("{what}: the broker's log names them")));
        }
        Ok(Response::new(RewrapKeysResponse { rewrapped: i32::try_from(signing + data).unwrap_or(i32::MAX), root_key_id }))
    }

    async fn list_tokens(&self, request: Request<ListTokensRequest>) -> Result<Response<ListTokensResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let tokens = self.authority.tokens(&req.subject, size, offset).await?;
        let next_page_token = status::next_page_token(offset, size, tokens.len());
        Ok(Response::new(ListTokensResponse { tokens, next_page_token }))
    }

    async fn rotate_signing_key(&self, request: Request<RotateSigningKeyRequest>) -> Result<Response<RotateSigningKeyResponse>, Status> {
        let caller = auth::require(&request, "rotate:keys")?;
        let key_id = self.authority.rotate(&caller.sub).await?;
        let keys = self.authority.key_set().await?.keys.clone();
        Ok(Response::new(RotateSigningKeyResponse { key_id, keys }))
    }

    async fn configure_database(&self, request: Request<ConfigureDatabaseRequest>) -> Result<Response<ConfigureDatabaseResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
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
        let default_ttl = duration(req.default_ttl.as_ref(), "default_ttl", database::DEFAULT_TTL, authority::MAX_RENEWABLE);
        let max_ttl = duration(req.max_ttl.as_ref(), "max_ttl", database::DEFAULT_MAX_TTL, authority::MAX_RENEWABLE);
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
        let config = self.leases.databases().configure(&caller.sub, &req.name, &req.connection_url, &req.group_role, ttl).await?;
        Ok(Response::new(ConfigureDatabaseResponse { database: Some(database_message(config)) }))
    }

    async fn list_databases(&self, _request: Request<ListDatabasesRequest>) -> Result<Response<ListDatabasesResponse>, Status> {
        let databases = self.leases.databases().list().await?;
        Ok(Response::new(ListDatabasesResponse { databases: databases.into_iter().map(database_message).collect() }))
    }

    async fn issue_database_credentials(
        &self,
        request: Request<IssueDatabaseCredentialsRequest>,
    ) -> Result<Response<IssueDatabaseCredentialsResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        if !database::valid_name(&req.database) {
            let why = "a configured database's name".to_string();
            return Err(status::invalid_argument("INVALID_DATABASE", "invalid database", [("database".to_string(), why)]));
        }
        self.needs(&caller, &format!("database:creds:{}", req.database), &req.database, "database.denied").await?;
        let ttl = duration(req.ttl.as_ref(), "ttl", database::DEFAULT_TTL, authority::MAX_RENEWABLE)
            .map_err(|v| status::invalid_argument("INVALID_TTL", "invalid ttl", [v]))?;
        let ttl = req.ttl.is_some().then_some(ttl);
        let issued = self.leases.issue_database(&caller, &req.database, ttl).await?;
        Ok(Response::new(IssueDatabaseCredentialsResponse {
            username: issued.username,
            password: issued.password,
            lease: Some(issued.lease),
        }))
    }

    async fn renew_lease(&self, request: Request<RenewLeaseRequest>) -> Result<Response<RenewLeaseResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        if !req.lease_id.starts_with("database/") {
            return Err(lease_id_invalid("lease_id"));
        }
        self.holds_lease(&caller, &req.lease_id).await?;
        let increment = duration(req.increment.as_ref(), "increment", database::DEFAULT_TTL, authority::MAX_RENEWABLE)
            .map_err(|v| status::invalid_argument("INVALID_INCREMENT", "invalid increment", [v]))?;
        let increment = req.increment.is_some().then_some(increment);
        let lease = self.leases.renew(&caller.sub, &req.lease_id, increment).await?;
        Ok(Response::new(RenewLeaseResponse { lease: Some(lease) }))
    }

    async fn revoke_lease(&self, request: Request<RevokeLeaseRequest>) -> Result<Response<RevokeLeaseResponse>, Status> {
        let caller = auth::caller(&request)?;
        let (id, prefix) = match request.into_inner().target {
            Some(revoke_lease_request::Target::LeaseId(id)) if id.starts_with("database/") => (id, false),
            Some(revoke_lease_request::Target::Prefix(prefix)) if !prefix.is_empty() => (prefix, true),
            Some(revoke_lease_request::Target::Prefix(_)) => return Err(lease_id_invalid("prefix")),
            _ => return Err(lease_id_invalid("lease_id")),
        };
        if prefix {
            self.needs(&caller, "leases:manage", &id, "lease.denied").await?;
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

    async fn list_leases(&self, request: Request<ListLeasesRequest>) -> Result<Response<ListLeasesResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let leases = self.leases.list(&req.prefix, size, offset).await?;
        let next_page_token = status::next_page_token(offset, size, leases.len());
        Ok(Response::new(ListLeasesResponse { leases, next_page_token }))
    }

    async fn issue_certificate(&self, request: Request<IssueCertificateRequest>) -> Result<Response<IssueCertificateResponse>, Status> {
        let caller = auth::caller(&request)?;
        for_broker(&caller)?;
        let req = request.into_inner();
        let spiffe_id = if req.spiffe_id.is_empty() { caller.sub.clone() } else { req.spiffe_id.clone() };
        let mut violations = Vec::new();
        if !ca::valid_spiffe_id(&spiffe_id) {
            let why = if req.spiffe_id.is_empty() {
                format!("the caller {} is no SPIFFE identity: name one (spiffe://paved/<env>/<workload>)", caller.sub)
            } else {
                "spiffe://paved/<env>/<workload>: lowercase names".to_string()
            };
            violations.push(("spiffe_id".to_string(), why));
        }
        let ttl = certificate_request(&req.csr_pem, req.ttl.as_ref(), ca::MAX_TTL, violations)?;
        // Always a scope, even for the caller's own subject: a token with
        // `write:secrets-broker` can name any subject for the tokens it
        // issues, and a certificate is an identity peers trust by name.
        let path = spiffe_id.strip_prefix(paved_grpc::tls::TRUST_DOMAIN).unwrap_or_default().trim_start_matches('/');
        // Enrolled for good: a platform identity, by a token of its own
        // that names `certs:enrol:platform/<service>` itself. A wildcard in
        // the enrolling token does not count, and only a token allowed that
        // scope (the root's `*`, say) can issue one naming it: holders of
        // `certs:issue:platform/*` make no line that outlives their token.
        let enrols = format!("{ENROL_SCOPE}{path}");
        let for_good = spiffe_id.starts_with(paved_grpc::tls::PLATFORM_PREFIX) && caller.sub == spiffe_id && caller.scp.contains(&enrols);
        if !for_good {
            self.needs(&caller, &format!("certs:issue:{path}"), &spiffe_id, "certificate.denied").await?;
        }
        // Never outliving the token that asked (certificates are not
        // revoked, tokens are); its renewals end once that token is revoked.
        let token_left = Duration::from_secs(u64::try_from(caller.exp - chrono::Utc::now().timestamp()).unwrap_or(0));
        let ttl = ttl.min(token_left);
        if ttl.is_zero() {
            return Err(status::failed_precondition("TOKEN_EXPIRING", "the token expires now: renew it, then ask for a certificate"));
        }
        // Enrolled for good, it renews for as long as that token stands
        // (revoking it or the identity ends it); any other certificate no
        // longer than the token could, and at most a day.
        let until = if caller.ren > 0 { caller.ren } else { caller.exp }.saturating_mul(1000);
        let until = until.min(crate::now_ms().saturating_add(crate::ms(ca::MAX_TTL)));
        let enrolment = ca::Enrolment { token: caller.jti.clone(), renew_until_ms: (!for_good).then_some(until) };
        let issued = self.ca.issue(&caller.sub, &spiffe_id, &req.csr_pem, ttl, Some(&enrolment)).await?;
        Ok(Response::new(self.certificate(issued).await?))
    }

    async fn renew_certificate(&self, request: Request<RenewCertificateRequest>) -> Result<Response<RenewCertificateResponse>, Status> {
        let der = presented(&request)?;
        let req = request.into_inner();
        // At most the default: a renewed certificate outlives a revocation
        // of its enrolment by no more than that.
        let ttl = certificate_request(&req.csr_pem, req.ttl.as_ref(), ca::DEFAULT_TTL, Vec::new())?;
        let issued = match self.ca.renew(der.as_ref(), &req.csr_pem, ttl).await {
            Ok(issued) => issued,
            Err(e) => return Err(self.certificate_refused(&der, e).await),
        };
        let IssueCertificateResponse { certificate_pem, spiffe_id, expire_time, authority_id, trust_bundle_pem } =
            self.certificate(issued).await?;
        Ok(Response::new(RenewCertificateResponse { certificate_pem, spiffe_id, expire_time, authority_id, trust_bundle_pem }))
    }

    async fn exchange_certificate(
        &self,
        request: Request<ExchangeCertificateRequest>,
    ) -> Result<Response<ExchangeCertificateResponse>, Status> {
        let der = presented(&request)?;
        let (spiffe_id, enrolment) = match self.ca.enrolment(der.as_ref()).await {
            Ok(enrolled) => enrolled,
            Err(e) => return Err(self.certificate_refused(&der, e).await),
        };
        if enrolment.renew_until_ms.is_some() {
            let why = format!(
                "a certificate of {spiffe_id} is no login: only a platform identity's, enrolled for good ({ENROL_SCOPE}…), is; use the identity's token"
            );
            self.authority.record("token.denied", &spiffe_id, &spiffe_id, &why).await;
            return Err(status::permission_denied("CERTIFICATE_NOT_A_LOGIN", why));
        }
        let revoked = || CaError::EnrolmentRevoked(spiffe_id.clone(), enrolment.token.clone());
        let enrolling = self.authority.token(&enrolment.token).await?.filter(|t| t.revoke_time.is_none());
        let Some(enrolling) = enrolling else {
            return Err(self.certificate_refused(&der, revoked()).await);
        };
        // Issued from the enrolling token: revoking it (or the identity)
        // revokes this one too, and the writer refuses it once revoked.
        let grant = Grant {
            parent: Some(enrolment.token.clone()),
            subject: spiffe_id.clone(),
            scopes: login_scopes(enrolling.scopes),
            audience: enrolling.audience,
            ttl: authority::DEFAULT_TTL,
            renewable: Duration::ZERO,
        };
        match self.authority.issue(&spiffe_id, &grant).await {
            Ok((token, info)) => Ok(Response::new(ExchangeCertificateResponse { token, info: Some(info) })),
            // The writer recorded the refusal (`token.denied`).
            Err(AuthorityError::Revoked(_)) => Err(revoked().into()),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_trust_bundle(&self, _request: Request<GetTrustBundleRequest>) -> Result<Response<GetTrustBundleResponse>, Status> {
        let (trust_bundle_pem, authorities) = self.ca.bundle().await?;
        Ok(Response::new(GetTrustBundleResponse { trust_bundle_pem, authorities }))
    }

    async fn rotate_certificate_authority(
        &self,
        request: Request<RotateCertificateAuthorityRequest>,
    ) -> Result<Response<RotateCertificateAuthorityResponse>, Status> {
        let caller = auth::require(&request, "rotate:keys")?;
        let authority = self.ca.rotate(&caller.sub).await?;
        Ok(Response::new(RotateCertificateAuthorityResponse { authority: Some(authority) }))
    }

    async fn get_workload_policy(&self, request: Request<GetWorkloadPolicyRequest>) -> Result<Response<GetWorkloadPolicyResponse>, Status> {
        let req = request.into_inner();
        let policy = policy::get(self.authority.db(), &req.environment, &req.workload).await.map_err(|e| status::storage(&e))?;
        let Some(policy) = policy else {
            return Err(status::not_found(
                "POLICY_NOT_FOUND",
                format!("no policy compiled for {}/{}: it gets one when a revision of it is deployed", req.environment, req.workload),
            ));
        };
        Ok(Response::new(GetWorkloadPolicyResponse { policy: Some(policy) }))
    }

    async fn list_workload_policies(
        &self,
        request: Request<ListWorkloadPoliciesRequest>,
    ) -> Result<Response<ListWorkloadPoliciesResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let (policies, read) =
            policy::list(self.authority.db(), &req.environment, req.unused_only, size, offset).await.map_err(|e| status::storage(&e))?;
        let next_page_token = status::next_page_token(offset, size, read);
        Ok(Response::new(ListWorkloadPoliciesResponse { policies, next_page_token }))
    }
}

fn database_message(config: database::Config) -> Database {
    Database {
        name: config.name,
        group_role: config.group_role,
        default_ttl: Some(paved_proto::duration_from_std(config.default_ttl)),
        max_ttl: Some(paved_proto::duration_from_std(config.max_ttl)),
        target: config.target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_gets_no_certificate_scopes() {
        let enrolling = [
            "certs:enrol:platform/provisioner",
            "certs:issue:platform/provisioner",
            "cert*",
            "*",
            "write:secrets-broker",
            "bootstrap:issue:*",
        ];
        let login = login_scopes(enrolling.map(String::from).to_vec());
        assert_eq!(login, ["write:secrets-broker", "bootstrap:issue:*"]);
    }

    #[test]
    fn grants_only_what_is_held() {
        let held = ["read:*".to_string(), "deploy:dev/*".to_string(), "write:provisioner".to_string()];
        assert!(within(&held, "read:audit"));
        assert!(within(&held, "read:*"));
        assert!(within(&held, "deploy:dev/shop-*"));
        assert!(!within(&held, "deploy:prod/shop"));
        assert!(!within(&held, "write:*"));
        assert!(!within(&held, "*"));
        assert!(within(&["*".to_string()], "*"));
    }

    #[test]
    fn wildcards_follow_a_separator() {
        for ok in ["*", "read:*", "secrets:read:dev/shop/*", "deploy:dev/shop-*", "secrets:read:dev/shop/db"] {
            assert!(scope_is_valid(ok), "{ok}");
        }
        for bad in ["secrets:read:dev/shop*", "re*", "a*b", "", "deploy:dev/*/x"] {
            assert!(!scope_is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn a_caller_revoked_before_verifiers_knew_is_answered_as_they_will() {
        use tonic_types::StatusExt;
        let revoked = [issue_failed(AuthorityError::Revoked("me".into()), "me"), Status::from(LeaseError::TokenRevoked("me".into()))];
        for status in revoked {
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
            assert_eq!(status.get_details_error_info().expect("reason").reason, "TOKEN_REVOKED");
        }
        let other = issue_failed(AuthorityError::Revoked("parent".into()), "me");
        assert_eq!(other.code(), tonic::Code::FailedPrecondition, "another token's revocation is not the caller's: {other:?}");
    }

    #[test]
    fn roles() {
        assert_eq!(role_scopes("deployer", "dev", "shop-*").expect("deployer"), ["read:*", "write:provisioner", "deploy:dev/shop-*"]);
        assert!(role_scopes("deployer", "", "").is_err());
        assert!(role_scopes("owner", "dev", "").is_err());
    }
}
