//! `paved secrets put|get|list|watch|rewrap|policy`: KV secrets through the broker,
//! and the policies compiled for workloads.
//! Values go to stdout only when asked for (`get`, `watch`), never in errors.

use crate::commands::explain;
use paved_grpc::client::AuthChannel;
use paved_proto::secrets_broker::v1::{
    GetSecretRequest, GetWorkloadPolicyRequest, ListSecretsRequest, ListWorkloadPoliciesRequest, PutSecretRequest, RewrapKeysRequest,
    RewrapKeysResponse, Secret, SecretVersion, WatchSecretRequest, WorkloadPolicy,
    secrets_broker_service_client::SecretsBrokerServiceClient,
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

pub async fn policy(channel: AuthChannel, environment: &str, workload: &str) -> anyhow::Result<WorkloadPolicy> {
    let request = GetWorkloadPolicyRequest { environment: environment.to_string(), workload: workload.to_string() };
    let answer = client(channel).get_workload_policy(request).await.map_err(failed)?.into_inner();
    answer.policy.ok_or_else(|| anyhow::anyhow!("the broker answered no policy"))
}

/// Every policy (of `environment`, unless empty), page after page.
pub async fn policies(channel: AuthChannel, environment: &str, unused_only: bool) -> anyhow::Result<Vec<WorkloadPolicy>> {
    let mut client = client(channel);
    let (mut all, mut page_token) = (Vec::new(), String::new());
    loop {
        let request = ListWorkloadPoliciesRequest {
            environment: environment.to_string(),
            unused_only,
            page_size: 1000,
            page_token: page_token.clone(),
        };
        let answer = client.list_workload_policies(request).await.map_err(failed)?.into_inner();
        all.extend(answer.policies);
        if answer.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = answer.next_page_token;
    }
}

/// A policy, one grant per line with its uses, then the grants never used.
pub fn policy_report(policy: &WorkloadPolicy) -> String {
    let mut out = format!(
        "{}  revision {}, compiled {}\n{:<56}  {:>6}  LAST USED\n",
        policy.spiffe_id,
        policy.revision_id,
        time(policy.compile_time.as_ref()),
        "GRANT",
        "USES"
    );
    if policy.grants.is_empty() {
        out.push_str("(no grants: the spec declares no secrets)\n");
    }
    for grant in &policy.grants {
        let last = if grant.use_count == 0 { "never".to_string() } else { time(grant.last_use_time.as_ref()) };
        let _ = writeln!(out, "{:<56}  {:>6}  {last}", grant.scope, grant.use_count);
    }
    let unused: Vec<&str> = policy.grants.iter().filter(|g| g.use_count == 0).map(|g| g.scope.as_str()).collect();
    if !unused.is_empty() {
        let _ = writeln!(
            out,
            "{} grant(s) never used: {} (if the workload does not need them, take them out of its spec's secrets)",
            unused.len(),
            unused.join(", ")
        );
    }
    out
}
