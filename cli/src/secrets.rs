//! `paved secrets put|get|list|watch|rewrap`: KV secrets through the broker.
//! Values go to stdout only when asked for (`get`, `watch`), never in errors.

use crate::commands::explain;
use paved_grpc::client::AuthChannel;
use paved_proto::secrets_broker::v1::{
    GetSecretRequest, ListSecretsRequest, PutSecretRequest, RewrapKeysRequest, RewrapKeysResponse, Secret, SecretVersion,
    WatchSecretRequest, secrets_broker_service_client::SecretsBrokerServiceClient,
};
use std::fmt::Write as _;

fn failed(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", explain(&status))
}

fn client(channel: AuthChannel) -> SecretsBrokerServiceClient<AuthChannel> {
    SecretsBrokerServiceClient::new(channel)
}

pub async fn put(channel: AuthChannel, request: PutSecretRequest) -> anyhow::Result<SecretVersion> {
    client(channel)
        .put_secret(request)
        .await
        .map_err(failed)?
        .into_inner()
        .version
        .ok_or_else(|| anyhow::anyhow!("the broker answered no version"))
}

pub async fn get(channel: AuthChannel, path: &str, version: u32) -> anyhow::Result<Secret> {
    let answer = client(channel).get_secret(GetSecretRequest { path: path.to_string(), version }).await.map_err(failed)?.into_inner();
    answer.secret.ok_or_else(|| anyhow::anyhow!("the broker answered no secret"))
}

pub async fn list(channel: AuthChannel, prefix: &str) -> anyhow::Result<Vec<SecretVersion>> {
    let request = ListSecretsRequest { prefix: prefix.to_string(), page_size: 1000, ..Default::default() };
    Ok(client(channel).list_secrets(request).await.map_err(failed)?.into_inner().secrets)
}

pub async fn rewrap(channel: AuthChannel) -> anyhow::Result<RewrapKeysResponse> {
    Ok(client(channel).rewrap_keys(RewrapKeysRequest {}).await.map_err(failed)?.into_inner())
}

/// Calls `each` with every version of `path` as it is written, until the
/// stream ends (an error, or the token expiring).
pub async fn watch(channel: AuthChannel, path: &str, mut each: impl FnMut(&Secret)) -> anyhow::Result<()> {
    let mut stream = client(channel).watch_secret(WatchSecretRequest { path: path.to_string() }).await.map_err(failed)?.into_inner();
    while let Some(answer) = stream.message().await.map_err(failed)? {
        if let Some(secret) = &answer.secret {
            each(secret);
        }
    }
    Ok(())
}

/// A timestamp for a table, to the second (UTC), or `-`.
pub fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0)).map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// One line per secret: path, version, written, generated and next rotation.
pub fn table(secrets: &[SecretVersion]) -> String {
    let mut out = format!("{:<48}  {:>7}  {:<19}  {:<9}  ROTATES\n", "PATH", "VERSION", "WRITTEN", "GENERATED");
    for s in secrets {
        let generated = if s.generated { "yes" } else { "no" };
        let _ = writeln!(
            out,
            "{:<48}  {:>7}  {:<19}  {:<9}  {}",
            s.path,
            s.version,
            time(s.create_time.as_ref()),
            generated,
            time(s.rotate_time.as_ref())
        );
    }
    out
}
