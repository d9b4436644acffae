//! A look the canary analyzer refuses as invalid is not sent again as it
//! was (a refused look is refused again, and the step would be extended to
//! a rollback): the provisioner drops it and counts the next one afresh
//! from where it began. The real analyzer refuses only looks a bug made,
//! so the analyzer here is a stand-in that refuses the first look and
//! judges the rest: the fault is injected, the provisioner is the real one.

use futures::FutureExt;
use paved_integration_tests::{authed, eventually, provisioner_options, redis_namespace, service_common, start_broker};
use paved_proto::canary_analyzer::v1::{
    Decision, ExplainRolloutRequest, ExplainRolloutResponse, JudgeLookRequest, JudgeLookResponse, ListObservationsRequest,
    ListObservationsResponse, ReplayRolloutRequest, ReplayRolloutResponse, Verdict,
    canary_analyzer_service_server::{CanaryAnalyzerService, CanaryAnalyzerServiceServer},
};
use paved_proto::provisioner::v1::{
    ApplyWorkloadRequest, GetRolloutRequest, GetWorkloadRequest, RevisionState, RolloutState,
    provisioner_service_client::ProvisionerServiceClient,
};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// Refuses the first look as INVALID_ARGUMENT; then continues until the
/// interval is over, and passes. Keeps every look it was sent.
#[derive(Clone, Default)]
struct RefusingFirst(Arc<Mutex<Vec<JudgeLookRequest>>>);

#[tonic::async_trait]
impl CanaryAnalyzerService for RefusingFirst {
    async fn judge_look(&self, request: Request<JudgeLookRequest>) -> Result<Response<JudgeLookResponse>, Status> {
        let look = request.into_inner();
        let first = {
            let mut looks = self.0.lock().unwrap_or_else(|p| p.into_inner());
            looks.push(look.clone());
            looks.len() == 1
        };
        if first {
            // As the analyzer refuses a look that contradicts itself.
            let violation = ("canary.latency".to_string(), "the latency histogram counts more than the 3 requests".to_string());
            return Err(paved_grpc::status::invalid_argument("INVALID_LOOK", "invalid look", [violation]));
        }
        let verdict = if look.interval_over { Verdict::Pass } else { Verdict::Continue };
        let decision = Decision { rollout_id: look.rollout_id, verdict: verdict as i32, reason: "judged".into(), ..Default::default() };
        Ok(Response::new(JudgeLookResponse { decision: Some(decision) }))
    }
    async fn list_observations(&self, _: Request<ListObservationsRequest>) -> Result<Response<ListObservationsResponse>, Status> {
        Err(Status::unimplemented("not here"))
    }
    async fn explain_rollout(&self, _: Request<ExplainRolloutRequest>) -> Result<Response<ExplainRolloutResponse>, Status> {
        Err(Status::unimplemented("not here"))
    }
    async fn replay_rollout(&self, _: Request<ReplayRolloutRequest>) -> Result<Response<ReplayRolloutResponse>, Status> {
        Err(Status::unimplemented("not here"))
    }
}

fn spec(version: &str) -> String {
    format!(
        "name: shop\ncommand: [hello]\nenv:\n  HELLO_VERSION: {version}\nhealth:\n  period: 200ms\n  timeout: 200ms\nrollout:\n  steps: [50, 100]\n  interval: 2s\n"
    )
}

#[tokio::test]
async fn a_look_refused_as_invalid_is_counted_again_not_resent() {
    let analyzer = RefusingFirst::default();
    let analyzer_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let analyzer_addr = analyzer_listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let serve =
        tonic::transport::Server::builder().add_service(CanaryAnalyzerServiceServer::new(analyzer.clone())).serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(analyzer_listener),
            shutdown.clone().cancelled_owned(),
        );
    let analyzer_task = tokio::spawn(serve);

    let stream = redis_namespace("it_refused_look").await;
    let (broker, token, broker_task) = start_broker(&stream, &shutdown).await;
    let data = tempfile::tempdir().expect("temp dir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut options = provisioner_options(data.path().to_path_buf());
    options.analyzer_url = Some(format!("http://{analyzer_addr}"));
    let database = paved_store::sqlite_url(&data.path().join("provisioner.db"));
    let config = paved_provisioner::Config { common: service_common(addr, broker, &database, &stream), options };
    let task = tokio::spawn(paved_provisioner::run(config, listener, shutdown.clone()));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).expect("endpoint");
    let client = ProvisionerServiceClient::new(authed(channel.connect_lazy(), &token));
    let apply = |version: &str| {
        let (mut client, spec_yaml) = (client.clone(), spec(version));
        async move {
            let request = ApplyWorkloadRequest { environment: "dev".into(), spec_yaml, ..Default::default() };
            client.apply_workload(request).await
        }
    };
    eventually("the provisioner to take the first revision", Duration::from_secs(30), || apply("v1").map(Result::ok)).await;
    eventually("v1 healthy", Duration::from_secs(30), || {
        let mut client = client.clone();
        async move {
            let get = GetWorkloadRequest { environment: "dev".into(), name: "shop".into() };
            let workload = client.get_workload(get).await.ok()?.into_inner().workload?;
            (workload.state == RevisionState::Healthy as i32).then_some(())
        }
    })
    .await;
    let rollout = |id: String| {
        let mut client = client.clone();
        async move { client.get_rollout(GetRolloutRequest { id }).await.ok()?.into_inner().rollout }
    };

    let second = apply("v2").await.expect("v2").into_inner().rollout.expect("rollout").id;
    let done = eventually("v2's rollout to end", Duration::from_secs(60), || {
        let r = rollout(second.clone());
        async move { r.await.filter(|r| r.state == RolloutState::Promoted as i32 || r.state == RolloutState::RolledBack as i32) }
    })
    .await;
    let looks = analyzer.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(looks.len() >= 2, "{looks:?}");
    let (refused, next) = (&looks[0], &looks[1]);
    assert_eq!(next.start_time, refused.start_time, "counted again from where the refused look began");
    assert_ne!(next.end_time, refused.end_time, "a new look, not the refused one sent again");
    assert_eq!(done.state, RolloutState::Promoted as i32, "{done:?}");
    shutdown.cancel();
    let _ = (task.await, broker_task.await, analyzer_task.await);
}
