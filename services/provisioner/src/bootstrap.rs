//! Secret zero for every process the runtime starts: a fresh single-use
//! bootstrap token from the secrets broker, bound to the revision and the
//! executable's digest, exchanged for the process's identity.

use paved_grpc::tls::PLATFORM_ENVIRONMENT;
use paved_local::{Bootstrap, Launch};
use paved_proto::secrets_broker::v1::{
    ExchangeBootstrapTokenRequest, IssueBootstrapTokenRequest, RevokeTokenRequest, revoke_token_request,
    secrets_broker_service_client::SecretsBrokerServiceClient,
};
use std::sync::Arc;
use tonic::transport::Channel;

/// An identity for each process start, from the broker at `url`: a fresh
/// single-use bootstrap token, bound to the revision and to the digest of
/// the executable the runtime is about to start, and exchanged here at
/// once, presenting that digest. The process gets the identity token it
/// proved (`PAVED_TOKEN`, carrying the digest) with `PAVED_BROKER_URL`; it
/// never holds a bootstrap token, and the exchange is made without the
/// provisioner's credentials. The platform's own services (environment
/// `platform`) get none: the broker is one of them. Nor does a workload
/// that declares no secret, database or certificate: the identity it would
/// be given could read nothing (and a start, a wake above all, does not
/// wait on the broker for it).
pub(crate) fn bootstrapper(
    url: &str,
    credentials: &paved_grpc::client::Bearer,
    tls: Option<&paved_grpc::tls::Tls>,
) -> anyhow::Result<Bootstrap> {
    let channel = paved_grpc::tls::connect(url, tls, Some(&paved_grpc::tls::platform_id("secrets-broker")), |e| {
        e.connect_timeout(std::time::Duration::from_secs(2)).timeout(std::time::Duration::from_secs(10))
    })
    .map_err(|e| anyhow::anyhow!("broker_url: {e}"))?;
    let issuer = SecretsBrokerServiceClient::new(credentials.on(channel.clone()));
    let url = url.to_string();
    Ok(Arc::new(move |launch: Launch, running: String| {
        let (issuer, url, channel) = (issuer.clone(), url.clone(), channel.clone());
        Box::pin(async move {
            let spec = &launch.spec;
            if launch.environment == PLATFORM_ENVIRONMENT {
                return match spec.delivers_secrets() {
                    true => Err("the platform's own services get no workload identity: their secrets come from their configuration".into()),
                    false => Ok(paved_local::Identity::default()),
                };
            }
            if spec.secrets.is_empty() && spec.databases.is_empty() && !spec.certificate {
                return Ok(paved_local::Identity::default());
            }
            let exchange = Arc::new(Exchange {
                issuer,
                open: SecretsBrokerServiceClient::new(channel.clone()),
                request: IssueBootstrapTokenRequest {
                    environment: launch.environment.clone(),
                    workload: launch.workload.clone(),
                    revision_id: launch.revision_id.clone(),
                    artifact_digest: running,
                    secrets: spec.secrets.clone(),
                    databases: spec.databases.clone(),
                    certificate: spec.certificate,
                    ttl: None,
                },
            });
            let (token, token_id) = exchange.identity().await?;
            let prefix = format!("{}/{}", launch.environment, launch.workload);
            let env = vec![("PAVED_TOKEN".to_string(), token.clone()), ("PAVED_BROKER_URL".to_string(), url)];
            let again = exchange.clone();
            let refresh: crate::delivery::Refresh = Arc::new(move || {
                let again = again.clone();
                Box::pin(async move { again.identity().await.map(|(token, _)| token) })
            });
            match crate::delivery::deliver(channel.clone(), &token, &prefix, spec, env, refresh).await {
                Ok(identity) => Ok(identity),
                Err(e) => {
                    // Not started: the identity it would have had ends now.
                    revoke(channel, &token, token_id).await;
                    Err(e)
                }
            }
        })
    }))
}

/// One process's way to an identity: a bootstrap token for its revision
/// and digest, exchanged at once presenting that digest. Asked again when
/// the identity can no longer be renewed (after 24 h).
struct Exchange {
    issuer: SecretsBrokerServiceClient<paved_grpc::client::AuthChannel>,
    open: SecretsBrokerServiceClient<Channel>,
    request: IssueBootstrapTokenRequest,
}

impl Exchange {
    /// A fresh identity token and its id.
    async fn identity(&self) -> Result<(String, String), String> {
        let issued = self.issuer.clone().issue_bootstrap_token(self.request.clone()).await.map_err(|s| s.message().to_string())?;
        let exchange = ExchangeBootstrapTokenRequest {
            bootstrap_token: issued.into_inner().bootstrap_token,
            artifact_digest: self.request.artifact_digest.clone(),
        };
        let identity = self.open.clone().exchange_bootstrap_token(exchange).await.map_err(|s| s.message().to_string())?.into_inner();
        Ok((identity.token, identity.info.map(|i| i.token_id).unwrap_or_default()))
    }
}

/// Revokes identity `token_id`, presenting itself (a token may revoke itself).
async fn revoke(channel: Channel, token: &str, token_id: String) {
    let Ok(bearer) = paved_grpc::client::Bearer::new(token) else { return };
    let request = RevokeTokenRequest { target: Some(revoke_token_request::Target::TokenId(token_id)) };
    if let Err(s) = SecretsBrokerServiceClient::new(bearer.on(channel)).revoke_token(request).await {
        tracing::warn!(error = %s.message(), "an identity given to a process that did not start stays valid until it expires");
    }
}
