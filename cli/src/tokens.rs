//! `paved login` and `paved token …`: the CLI side of the broker's tokens.

use crate::commands::{self, explain};
use paved_grpc::client::AuthChannel;
use paved_proto::secrets_broker::v1::{
    GetKeySetRequest, IssueTokenRequest, IssueTokenResponse, ListTokensRequest, RevokeTokenRequest, RotateSigningKeyRequest, TokenInfo,
    revoke_token_request::Target, secrets_broker_service_client::SecretsBrokerServiceClient,
};
use std::fmt::Write as _;

fn failed(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", explain(&status))
}

/// Checks `token` against the key set `endpoint` publishes (signature,
/// expiry, revocation) and returns its claims: a token that would be refused
/// is never stored.
pub async fn check(endpoint: &str, token: &str) -> anyhow::Result<paved_token::Claims> {
    let set = SecretsBrokerServiceClient::new(commands::channel(endpoint).await?)
        .get_key_set(GetKeySetRequest::default())
        .await
        .map_err(failed)?
        .into_inner();
    let (keys, revoked) = paved_grpc::auth::trust(&set)?;
    keys.verify(token.trim(), &paved_grpc::auth::AUDIENCES, chrono::Utc::now().timestamp(), |jti| revoked.contains(jti))
        .map_err(|e| anyhow::anyhow!("{e}: not stored"))
}

fn broker(channel: AuthChannel) -> SecretsBrokerServiceClient<AuthChannel> {
    SecretsBrokerServiceClient::new(channel)
}

pub async fn issue(channel: AuthChannel, request: IssueTokenRequest) -> anyhow::Result<IssueTokenResponse> {
    Ok(broker(channel).issue_token(request).await.map_err(failed)?.into_inner())
}

pub async fn list(channel: AuthChannel, subject: &str) -> anyhow::Result<Vec<TokenInfo>> {
    let request = ListTokensRequest { subject: subject.to_string(), page_size: 1000, ..Default::default() };
    Ok(broker(channel).list_tokens(request).await.map_err(failed)?.into_inner().tokens)
}

pub async fn revoke(channel: AuthChannel, target: Target) -> anyhow::Result<i32> {
    Ok(broker(channel).revoke_token(RevokeTokenRequest { target: Some(target) }).await.map_err(failed)?.into_inner().revoked)
}

pub async fn rotate(channel: AuthChannel) -> anyhow::Result<String> {
    Ok(broker(channel).rotate_signing_key(RotateSigningKeyRequest {}).await.map_err(failed)?.into_inner().key_id)
}

fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0)).map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// One line per token: id, subject, scopes, expiry, state.
pub fn table(tokens: &[TokenInfo]) -> String {
    let mut out = format!("{:<36}  {:<40}  {:<19}  {:<8}  SCOPES\n", "ID", "SUBJECT", "EXPIRES", "STATE");
    let now = chrono::Utc::now().timestamp();
    for t in tokens {
        let state = if t.revoke_time.is_some() {
            "revoked"
        } else if t.expire_time.as_ref().is_some_and(|e| e.seconds < now) {
            "expired"
        } else {
            "live"
        };
        let _ = writeln!(
            out,
            "{:<36}  {:<40}  {:<19}  {:<8}  {}",
            t.token_id,
            t.subject,
            time(t.expire_time.as_ref()),
            state,
            t.scopes.join(" ")
        );
    }
    out
}

/// The services `paved token enrol` mints for: each named one, or every
/// platform service but the broker (its own CA); checked before any is.
pub fn enrolled_services(named: Vec<String>, ttl: std::time::Duration) -> anyhow::Result<Vec<String>> {
    use paved_grpc::tls::PLATFORM_SERVICES;
    use paved_secrets_broker::authority::MAX_TTL;
    anyhow::ensure!(ttl <= MAX_TTL, "--ttl {ttl:?} is over the longest a token lives, {MAX_TTL:?}");
    const BROKER: &str = <paved_secrets_broker::SecretsBroker as paved_service::ConsumerService>::NAME;
    if named.is_empty() {
        return Ok(PLATFORM_SERVICES.iter().filter(|s| **s != BROKER).map(|s| s.to_string()).collect());
    }
    for service in &named {
        anyhow::ensure!(
            PLATFORM_SERVICES.contains(&service.as_str()),
            "{service:?} is not a platform service (one of {})",
            PLATFORM_SERVICES.join(", ")
        );
        anyhow::ensure!(service != BROKER, "the {BROKER} is its own CA: it enrols with no token");
    }
    Ok(named)
}

/// What a platform service's own calls present (the tokens its certificate
/// is exchanged for): only the provisioner calls with a token, for the
/// processes it starts and to the analyzer.
pub fn calls_of(service: &str) -> &'static [&'static str] {
    if service == "provisioner" { &paved_provisioner::CALL_SCOPES } else { &[] }
}

/// Mints each service's enrolling token into `<out>/<service>/identity.token`
/// (mode 0600, replacing an older one) and says on stderr what it wrote,
/// never the values.
pub async fn enrol(
    authority: &paved_secrets_broker::authority::Authority,
    services: &[String],
    ttl: std::time::Duration,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    use anyhow::Context;
    for service in services {
        let grant = paved_secrets_broker::enrolment_grant(service, calls_of(service), ttl);
        let (token, info) = authority.issue("paved token enrol", &grant).await?;
        let dir = out.join(service);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let file = dir.join("identity.token");
        paved_grpc::tls::replace_private(&file, &token).with_context(|| format!("write {}", file.display()))?;
        eprintln!("paved: token {} for {} ({}) → {}", info.token_id, info.subject, info.scopes.join(" "), file.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::enrolled_services;
    use std::time::Duration;

    #[test]
    fn enrols_the_services_it_can() {
        let ten = Duration::from_secs(600);
        assert_eq!(enrolled_services(vec![], ten).expect("all"), ["provisioner", "canary-analyzer", "cost-scheduler", "audit"]);
        assert_eq!(enrolled_services(vec!["audit".into()], ten).expect("one"), ["audit"]);
        let refused =
            |named: &[&str], ttl| enrolled_services(named.iter().map(|s| s.to_string()).collect(), ttl).expect_err("refused").to_string();
        assert!(refused(&["audit", "billing"], ten).contains("\"billing\" is not a platform service"));
        assert!(refused(&["secrets-broker"], ten).contains("its own CA"));
        assert!(refused(&[], Duration::from_secs(25 * 3600)).contains("over the longest a token lives"));
    }
}
