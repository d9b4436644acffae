//! `paved.secrets_broker.v1.SecretsBrokerService`: the gRPC edge. Requests
//! are checked and domain values converted here (`From`/`TryFrom`), and
//! each domain error becomes its status here (`errors`).
//!
//! One file per area, each with an edge type of its own holding only what
//! its RPCs need: `tokens`, `keys`, `identities` (and secret zero),
//! `secrets`, `leases` (and databases), `certificates`, `policies`.
//! Tonic needs one `impl SecretsBrokerService`: the one below only
//! delegates. What several areas check of a caller is in `access` and
//! `fields`, beneath them, so that no area file imports this one.

mod access;
mod certificates;
mod errors;
mod fields;
mod identities;
mod keys;
mod leases;
mod policies;
mod secrets;
mod tokens;

use crate::authority::Authority;
use crate::bootstrap::Bootstrap;
use crate::ca::Ca;
use crate::leases::Leases;
use crate::recorder::Recorder;
use crate::secrets::Secrets;
use paved_proto::secrets_broker::v1::{
    ConfigureDatabaseRequest, ConfigureDatabaseResponse, DeleteSecretRequest, DeleteSecretResponse, ExchangeBootstrapTokenRequest,
    ExchangeBootstrapTokenResponse, ExchangeCertificateRequest, ExchangeCertificateResponse, GetKeySetRequest, GetKeySetResponse,
    GetSecretRequest, GetSecretResponse, GetTrustBundleRequest, GetTrustBundleResponse, GetWorkloadPolicyRequest,
    GetWorkloadPolicyResponse, IntrospectTokenRequest, IntrospectTokenResponse, IssueBootstrapTokenRequest, IssueBootstrapTokenResponse,
    IssueCertificateRequest, IssueCertificateResponse, IssueDatabaseCredentialsRequest, IssueDatabaseCredentialsResponse,
    IssueTokenRequest, IssueTokenResponse, ListDatabasesRequest, ListDatabasesResponse, ListIdentitiesRequest, ListIdentitiesResponse,
    ListLeasesRequest, ListLeasesResponse, ListSecretsRequest, ListSecretsResponse, ListTokensRequest, ListTokensResponse,
    ListWorkloadPoliciesRequest, ListWorkloadPoliciesResponse, PutSecretRequest, PutSecretResponse, RenewCertificateRequest,
    RenewCertificateResponse, RenewLeaseRequest, RenewLeaseResponse, RenewTokenRequest, RenewTokenResponse, RevokeLeaseRequest,
    RevokeLeaseResponse, RevokeTokenRequest, RevokeTokenResponse, RewrapKeysRequest, RewrapKeysResponse, RotateCertificateAuthorityRequest,
    RotateCertificateAuthorityResponse, RotateSigningKeyRequest, RotateSigningKeyResponse, WatchSecretRequest,
    secrets_broker_service_server::{SecretsBrokerService, SecretsBrokerServiceServer},
};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

/// What the API serves from.
pub struct Parts {
    pub authority: Authority,
    pub recorder: Recorder,
    pub secrets: Secrets,
    pub leases: Leases,
    pub ca: Ca,
    /// For the identities and policies, read as stored.
    pub db: DatabaseConnection,
}

pub fn server(parts: Parts) -> SecretsBrokerServiceServer<Api> {
    let Parts { authority, recorder, secrets, leases, ca, db } = parts;
    let bootstrap = Bootstrap::new(authority.clone(), recorder.clone());
    SecretsBrokerServiceServer::new(Api {
        tokens: tokens::TokensApi { authority: authority.clone(), recorder: recorder.clone() },
        keys: keys::KeysApi {
            authority: authority.clone(),
            secrets: secrets.clone(),
            databases: leases.databases().clone(),
            ca: ca.clone(),
            recorder: recorder.clone(),
        },
        identities: identities::IdentitiesApi { db: db.clone(), bootstrap, recorder: recorder.clone() },
        secrets: secrets::SecretsApi { secrets, authority: authority.clone(), recorder: recorder.clone() },
        leases: leases::LeasesApi { leases, recorder: recorder.clone() },
        certificates: certificates::CertificatesApi { ca, authority, recorder },
        policies: policies::PoliciesApi { db },
    })
}

pub struct Api {
    tokens: tokens::TokensApi,
    keys: keys::KeysApi,
    identities: identities::IdentitiesApi,
    secrets: secrets::SecretsApi,
    leases: leases::LeasesApi,
    certificates: certificates::CertificatesApi,
    policies: policies::PoliciesApi,
}

#[tonic::async_trait]
impl SecretsBrokerService for Api {
    async fn list_identities(&self, request: Request<ListIdentitiesRequest>) -> Result<Response<ListIdentitiesResponse>, Status> {
        self.identities.list(request).await
    }

    async fn get_key_set(&self, request: Request<GetKeySetRequest>) -> Result<Response<GetKeySetResponse>, Status> {
        self.keys.key_set(request).await
    }

    async fn issue_token(&self, request: Request<IssueTokenRequest>) -> Result<Response<IssueTokenResponse>, Status> {
        self.tokens.issue(request).await
    }

    async fn renew_token(&self, request: Request<RenewTokenRequest>) -> Result<Response<RenewTokenResponse>, Status> {
        self.tokens.renew(request).await
    }

    async fn revoke_token(&self, request: Request<RevokeTokenRequest>) -> Result<Response<RevokeTokenResponse>, Status> {
        self.tokens.revoke(request).await
    }

    async fn introspect_token(&self, request: Request<IntrospectTokenRequest>) -> Result<Response<IntrospectTokenResponse>, Status> {
        self.tokens.introspect(request).await
    }

    async fn issue_bootstrap_token(
        &self,
        request: Request<IssueBootstrapTokenRequest>,
    ) -> Result<Response<IssueBootstrapTokenResponse>, Status> {
        self.identities.issue_bootstrap(request).await
    }

    async fn exchange_bootstrap_token(
        &self,
        request: Request<ExchangeBootstrapTokenRequest>,
    ) -> Result<Response<ExchangeBootstrapTokenResponse>, Status> {
        self.identities.exchange_bootstrap(request).await
    }

    async fn put_secret(&self, request: Request<PutSecretRequest>) -> Result<Response<PutSecretResponse>, Status> {
        self.secrets.put(request).await
    }

    async fn delete_secret(&self, request: Request<DeleteSecretRequest>) -> Result<Response<DeleteSecretResponse>, Status> {
        self.secrets.delete(request).await
    }

    async fn get_secret(&self, request: Request<GetSecretRequest>) -> Result<Response<GetSecretResponse>, Status> {
        self.secrets.get(request).await
    }

    async fn list_secrets(&self, request: Request<ListSecretsRequest>) -> Result<Response<ListSecretsResponse>, Status> {
        self.secrets.list(request).await
    }

    type WatchSecretStream = secrets::SecretStream;

    async fn watch_secret(&self, request: Request<WatchSecretRequest>) -> Result<Response<secrets::SecretStream>, Status> {
        self.secrets.watch(request).await
    }

    async fn rewrap_keys(&self, request: Request<RewrapKeysRequest>) -> Result<Response<RewrapKeysResponse>, Status> {
        self.keys.rewrap(request).await
    }

    async fn list_tokens(&self, request: Request<ListTokensRequest>) -> Result<Response<ListTokensResponse>, Status> {
        self.tokens.list(request).await
    }

    async fn rotate_signing_key(&self, request: Request<RotateSigningKeyRequest>) -> Result<Response<RotateSigningKeyResponse>, Status> {
        self.keys.rotate(request).await
    }

    async fn configure_database(&self, request: Request<ConfigureDatabaseRequest>) -> Result<Response<ConfigureDatabaseResponse>, Status> {
        self.leases.configure_database(request).await
    }

    async fn list_databases(&self, request: Request<ListDatabasesRequest>) -> Result<Response<ListDatabasesResponse>, Status> {
        self.leases.list_databases(request).await
    }

    async fn issue_database_credentials(
        &self,
        request: Request<IssueDatabaseCredentialsRequest>,
    ) -> Result<Response<IssueDatabaseCredentialsResponse>, Status> {
        self.leases.issue_credentials(request).await
    }

    async fn renew_lease(&self, request: Request<RenewLeaseRequest>) -> Result<Response<RenewLeaseResponse>, Status> {
        self.leases.renew(request).await
    }

    async fn revoke_lease(&self, request: Request<RevokeLeaseRequest>) -> Result<Response<RevokeLeaseResponse>, Status> {
        self.leases.revoke(request).await
    }

    async fn list_leases(&self, request: Request<ListLeasesRequest>) -> Result<Response<ListLeasesResponse>, Status> {
        self.leases.list(request).await
    }

    async fn issue_certificate(&self, request: Request<IssueCertificateRequest>) -> Result<Response<IssueCertificateResponse>, Status> {
        self.certificates.issue(request).await
    }

    async fn renew_certificate(&self, request: Request<RenewCertificateRequest>) -> Result<Response<RenewCertificateResponse>, Status> {
        self.certificates.renew(request).await
    }

    async fn exchange_certificate(
        &self,
        request: Request<ExchangeCertificateRequest>,
    ) -> Result<Response<ExchangeCertificateResponse>, Status> {
        self.certificates.exchange(request).await
    }

    async fn get_trust_bundle(&self, request: Request<GetTrustBundleRequest>) -> Result<Response<GetTrustBundleResponse>, Status> {
        self.certificates.trust_bundle(request).await
    }

    async fn rotate_certificate_authority(
        &self,
        request: Request<RotateCertificateAuthorityRequest>,
    ) -> Result<Response<RotateCertificateAuthorityResponse>, Status> {
        self.certificates.rotate(request).await
    }

    async fn get_workload_policy(&self, request: Request<GetWorkloadPolicyRequest>) -> Result<Response<GetWorkloadPolicyResponse>, Status> {
        self.policies.get(request).await
    }

    async fn list_workload_policies(
        &self,
        request: Request<ListWorkloadPoliciesRequest>,
    ) -> Result<Response<ListWorkloadPoliciesResponse>, Status> {
        self.policies.list(request).await
    }
}
