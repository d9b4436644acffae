//! Tokens issued and revoked all through a chaos run: each token is seen
//! accepted by every service, revoked at the broker, then asked of every
//! service until each refuses it as revoked. A service that is down or
//! cut off answers nothing, which is no refusal: the run waits for it.
//!
//! Every service fetches the broker's key set (and its revoked ids) every
//! second, so a revocation reaches it within about a second — or, when the
//! fault is between it and the broker, about a second after the fault
//! ends. The bound checked is 3 s plus the time faults lasted in between
//! (see `invariants::REVOCATION_BOUND`).

use paved_integration_tests::authed;
use paved_proto::{
    audit::v1::{ListCheckpointsRequest, audit_service_client::AuditServiceClient},
    canary_analyzer::v1::{ListObservationsRequest, canary_analyzer_service_client::CanaryAnalyzerServiceClient},
    cost_scheduler::v1::{ListBudgetsRequest, cost_scheduler_service_client::CostSchedulerServiceClient},
    provisioner::v1::{ListWorkloadsRequest, provisioner_service_client::ProvisionerServiceClient},
    secrets_broker::v1::{
        IssueTokenRequest, ListTokensRequest, RevokeTokenRequest, revoke_token_request::Target,
        secrets_broker_service_client::SecretsBrokerServiceClient,
    },
};
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;
use tonic::{Code, transport::Channel};

/// Every service can be read with these.
const SCOPES: [&str; 5] = ["read:provisioner", "read:secrets-broker", "read:canary-analyzer", "read:cost-scheduler", "read:audit"];

/// A revocation as the run saw it (no Debug: it holds a token).
pub(crate) struct Revocation {
    pub(crate) token: String,
    /// When the broker answered the revocation.
    pub(crate) revoked: Instant,
    /// From then to every service refusing it, and the last service to;
    /// None when some service still had not when the run ended.
    pub(crate) refused_after: Option<(Duration, String)>,
}

/// One cheap read of `service` with `token`.
async fn ask(service: &str, channel: Channel, token: &str) -> Result<(), tonic::Status> {
    let ch = authed(channel, token);
    match service {
        "provisioner" => ProvisionerServiceClient::new(ch).list_workloads(ListWorkloadsRequest::default()).await.map(drop),
        "secrets-broker" => SecretsBrokerServiceClient::new(ch).list_tokens(ListTokensRequest::default()).await.map(drop),
        "canary-analyzer" => CanaryAnalyzerServiceClient::new(ch).list_observations(ListObservationsRequest::default()).await.map(drop),
        "cost-scheduler" => CostSchedulerServiceClient::new(ch).list_budgets(ListBudgetsRequest::default()).await.map(drop),
        "audit" => AuditServiceClient::new(ch).list_checkpoints(ListCheckpointsRequest::default()).await.map(drop),
        other => panic!("no read of {other}"),
    }
}

/// [`ask`]'s answer's code.
async fn code(service: &str, channel: Channel, token: &str) -> Code {
    ask(service, channel, token).await.map_or_else(|status| status.code(), |()| Code::Ok)
}

/// Whether a service's answer is one: not a fault's silence.
fn answered(code: Code) -> bool {
    !matches!(code, Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown)
}

/// Asks every service until `done` holds of each one's answer: the last
/// service it came to hold of; None if `stop` came first.
async fn until_all(
    channels: &BTreeMap<String, Channel>,
    token: &str,
    stop: &CancellationToken,
    done: impl Fn(Code) -> bool,
) -> Option<String> {
    let mut left: Vec<&String> = channels.keys().collect();
    let mut last = String::new();
    while !left.is_empty() {
        if stop.is_cancelled() {
            return None;
        }
        let mut still = Vec::new();
        for service in left {
            let code = tokio::time::timeout(Duration::from_secs(3), code(service, channels[service].clone(), token))
                .await
                .unwrap_or(Code::DeadlineExceeded);
            if done(code) {
                last.clone_from(service);
            } else {
                still.push(service);
            }
        }
        left = still;
        if !left.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Some(last)
}

/// Issues a token, sees every service take it, revokes it and sees every
/// service refuse it, one after another until `stop` (and, for a token
/// revoked by then, until `patience` after it).
pub(crate) async fn issue_and_revoke(
    channels: BTreeMap<String, Channel>,
    root: String,
    stop: CancellationToken,
    patience: Duration,
) -> Vec<Revocation> {
    let mut revocations = Vec::new();
    let broker = channels["secrets-broker"].clone();
    let mut n = 0;
    while !stop.is_cancelled() {
        n += 1;
        let mut as_root = SecretsBrokerServiceClient::new(authed(broker.clone(), &root));
        // An hour: the check after a long run must find it refused as
        // revoked, not as expired.
        let request = IssueTokenRequest {
            subject: format!("chaos-{n}"),
            scopes: SCOPES.map(String::from).to_vec(),
            ttl: Some(prost_types::Duration { seconds: 3600, nanos: 0 }),
            ..Default::default()
        };
        let Ok(issued) = as_root.issue_token(request).await.map(tonic::Response::into_inner) else {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let id = issued.info.map(|i| i.token_id).unwrap_or_default();
        // Taken everywhere first: a refusal afterwards is the revocation's.
        if until_all(&channels, &issued.token, &stop, |code| answered(code) && code != Code::Unauthenticated).await.is_none() {
            break;
        }
        let revoked = loop {
            let request = RevokeTokenRequest { target: Some(Target::TokenId(id.clone())) };
            if as_root.revoke_token(request).await.is_ok() {
                break Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let give_up = CancellationToken::new();
        let deadline = tokio::spawn({
            let (stop, give_up) = (stop.clone(), give_up.clone());
            async move {
                stop.cancelled().await;
                tokio::time::sleep(patience).await;
                give_up.cancel();
            }
        });
        let refused = until_all(&channels, &issued.token, &give_up, |code| code == Code::Unauthenticated).await;
        deadline.abort();
        revocations.push(Revocation { token: issued.token, revoked, refused_after: refused.map(|last| (revoked.elapsed(), last)) });
    }
    revocations
}

/// Whether every service refuses `token` now, as revoked (not expired).
pub(crate) async fn refused_everywhere(channels: &BTreeMap<String, Channel>, token: &str) -> bool {
    use tonic_types::StatusExt;
    let mut refused = true;
    for (service, channel) in channels {
        let reason = ask(service, channel.clone(), token).await.err().and_then(|s| s.get_details_error_info()).map(|i| i.reason);
        refused &= reason.as_deref() == Some("TOKEN_REVOKED");
    }
    refused
}
