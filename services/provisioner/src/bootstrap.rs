//! Secret zero for every process the runtime starts: a fresh single-use
//! bootstrap token from the secrets broker, bound to the revision and the
//! executable's digest, exchanged for the process's identity.

use paved_grpc::tls::PLATFORM_ENVIRONMENT;
use paved_local::{Bootstrap, Launch};
use std::sync::Arc;

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
    use paved_proto::secrets_broker::v1::{
        ExchangeBootstrapTokenRequest, IssueBootstrapTokenRequest, secrets_broker_service_client::SecretsBrokerServiceClient,
    };
    let channel = paved_grpc::tls::connect(url, tls, Some(&paved_grpc::tls::platform_id("secrets-broker")), |e| {
        e.connect_timeout(std::time::Duration::from_secs(2)).timeout(std::time::Duration::from_secs(10))
    })
    .map_err(|e| anyhow::anyhow!("broker_url: {e}"))?;
    let issuer = SecretsBrokerServiceClient::new(credentials.on(channel.clone()));
    let open = SecretsBrokerServiceClient::new(channel.clone());
    let url = url.to_string();
    Ok(Arc::new(move |launch: Launch, running: String| {
        let (mut issuer, mut open, url, channel) = (issuer.clone(), open.clone(), url.clone(), channel.clone());
        Box::pin(async move {
            let spec = &launch.spec;
            if launch.environment == PLATFORM_ENVIRONMENT || (spec.secrets.is_empty() && spec.databases.is_empty() && !spec.certificate) {
                return Ok(paved_local::Identity::default());
            }
            let (request_env, request_workload, launch_spec) = (launch.environment.clone(), launch.workload.clone(), launch.spec.clone());
            let request = IssueBootstrapTokenRequest {
                environment: launch.environment,
                workload: launch.workload,
                revision_id: launch.revision_id,
                artifact_digest: running.clone(),
                secrets: launch.spec.secrets,
                databases: launch.spec.databases,
                certificate: launch.spec.certificate,
                ttl: None,
            };
            let issued = issuer.issue_bootstrap_token(request).await.map_err(|s| s.message().to_string())?.into_inner();
            let exchange = ExchangeBootstrapTokenRequest { bootstrap_token: issued.bootstrap_token, artifact_digest: running };
            let identity = open.exchange_bootstrap_token(exchange).await.map_err(|s| s.message().to_string())?.into_inner();
            let prefix = format!("{}/{}", request_env, request_workload);
            let env = vec![("PAVED_TOKEN".to_string(), identity.token.clone()), ("PAVED_BROKER_URL".to_string(), url)];
            crate::delivery::deliver(channel, &identity.token, &prefix, &launch_spec, env).await
        })
    }))
}
