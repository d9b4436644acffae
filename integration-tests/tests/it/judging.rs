//! The canary analyzer judges a rollout's looks from running totals: the
//! analysis comes once, with the first look; a restarted analyzer rebuilds
//! the totals from its records and decides as it would have; a look
//! without an analysis it does not know asks for it.

use paved_canary_analyzer::judgement::{self, Fetched};
use paved_integration_tests::{authed, postgres_database, redis_namespace, start_broker};
use paved_proto::canary_analyzer::v1::{JudgeLookRequest, RequestCounts, canary_analyzer_service_client::CanaryAnalyzerServiceClient};
use paved_proto::timestamp_from_millis;
use paved_service::{BasicConfig, run_consumer};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const SPEC: &str = "name: web\ncommand: [hello]\n";

fn look(i: u64, with_spec: bool) -> JudgeLookRequest {
    let counts = |errors: u64| {
        let mut latency = vec![0u64; paved_judge::histogram::BUCKETS];
        latency[paved_judge::histogram::bucket_of(0.002 + i as f64 / 1000.0)] = 400;
        RequestCounts { requests: 400, errors, latency }
    };
    let ms = i64::try_from(i).expect("small") * 1000;
    JudgeLookRequest {
        rollout_id: "judged".into(),
        environment: "dev".into(),
        workload: "web".into(),
        canary_revision_id: "canary".into(),
        baseline_revision_id: "stable".into(),
        look: i,
        weight: 20,
        baseline_weight: 20,
        start_time: Some(timestamp_from_millis(ms - 1000)),
        end_time: Some(timestamp_from_millis(ms)),
        step_start_time: Some(timestamp_from_millis(0)),
        canary: Some(counts(i % 3)),
        baseline: Some(counts(0)),
        spec_yaml: if with_spec { SPEC.into() } else { String::new() },
        spec_path: "paved.yaml".into(),
        ..JudgeLookRequest::default()
    }
}

async fn start(
    database: &str,
    stream: &str,
    broker: std::net::SocketAddr,
) -> (CancellationToken, tokio::task::JoinHandle<anyhow::Result<()>>, Channel) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let common = paved_integration_tests::service_common(addr, broker, database, stream);
    let shutdown = CancellationToken::new();
    let config = BasicConfig { common, options: Default::default() };
    let task = tokio::spawn(run_consumer::<paved_canary_analyzer::CanaryAnalyzer>(config, listener, shutdown.clone()));
    let channel = paved_integration_tests::eventually("the analyzer to accept connections", Duration::from_secs(30), || async {
        Channel::from_shared(format!("http://{addr}")).ok()?.connect().await.ok()
    })
    .await;
    (shutdown, task, channel)
}

#[tokio::test]
async fn the_analysis_comes_once_and_a_restart_rebuilds_the_totals() {
    let stream = redis_namespace("it_judging").await;
    let broker_stop = CancellationToken::new();
    let (broker, token, broker_task) = start_broker(&stream, &broker_stop).await;
    let database = postgres_database("it_judging").await;
    let (stop, task, channel) = start(&database, &stream, broker).await;
    let client = CanaryAnalyzerServiceClient::new(authed(channel, &token));
    let judge = |request: JudgeLookRequest| {
        let client = client.clone();
        async move {
            // The analyzer loads the broker's keys first: it asks to retry.
            paved_integration_tests::eventually("a judged look", Duration::from_secs(30), || {
                let (mut client, request) = (client.clone(), request.clone());
                async move {
                    match client.judge_look(request).await {
                        Err(s) if s.get_details_error_info().is_some_and(|i| i.reason == "KEYS_NOT_LOADED") => None,
                        answer => Some(answer.map(|r| r.into_inner().decision.expect("decision"))),
                    }
                }
            })
            .await
        }
    };

    // A look of a rollout the analyzer knows nothing of, without its spec.
    let unknown = judge(look(1, false)).await.expect_err("no analysis");
    let info = unknown.get_details_error_info().expect("ErrorInfo");
    assert_eq!((unknown.code(), info.reason.as_str()), (tonic::Code::FailedPrecondition, "ANALYSIS_UNKNOWN"));
    // Looks that cannot be judged as sent: a reason of their own, and the field.
    for (request, reason, field) in [
        (JudgeLookRequest { rollout_id: String::new(), ..look(1, true) }, "MISSING_FIELD", "rollout_id"),
        (JudgeLookRequest { look: 0, ..look(1, true) }, "INVALID_LOOK", "look"),
        (JudgeLookRequest { workload: "web/other".into(), ..look(1, true) }, "INVALID_LOOK", "workload"),
    ] {
        let refused = judge(request).await.expect_err("refused");
        let fields: Vec<String> =
            refused.get_details_bad_request().expect("violations").field_violations.into_iter().map(|v| v.field).collect();
        let got = refused.get_details_error_info().map(|i| i.reason);
        assert_eq!((refused.code(), got.as_deref(), fields), (tonic::Code::InvalidArgument, Some(reason), vec![field.to_string()]));
    }

    // The first look carries the analysis, the next ones do not.
    let mut decisions = vec![judge(look(1, true)).await.expect("look 1")];
    for i in 2..=4 {
        decisions.push(judge(look(i, false)).await.expect("a look without its spec"));
    }
    // A retry gets the same decision.
    assert_eq!(judge(look(3, false)).await.expect("retry"), decisions[2]);

    // Restarted: the totals come back from the records.
    stop.cancel();
    task.await.expect("task").expect("stopped cleanly");
    let (stop, task, channel) = start(&database, &stream, broker).await;
    let client = CanaryAnalyzerServiceClient::new(authed(channel, &token));
    let mut again = client.clone();
    let fifth = paved_integration_tests::eventually("look 5 after the restart", Duration::from_secs(30), || {
        let mut client = again.clone();
        async move { client.judge_look(look(5, false)).await.ok() }
    })
    .await
    .into_inner()
    .decision
    .expect("decision");
    decisions.push(fifth);
    let spec = paved_spec::parse(SPEC, "paved.yaml").expect("spec");
    let analysis = spec.analysis();
    // As the analyzer counts the rollout's decisions: steps × (1 + extensions).
    let points = u32::try_from(spec.rollout.steps.len()).expect("steps") * (analysis.max_extensions + 1);
    let looks: Vec<JudgeLookRequest> = (1..=5).map(|i| look(i, i == 1)).collect();
    for (k, decision) in decisions.iter().enumerate() {
        let expected = judgement::judge(&analysis, &looks[..=k], &Fetched::new(), points);
        assert_eq!(decision, &expected, "look {}", k + 1);
    }
    again = client;
    let explained = again
        .explain_rollout(paved_proto::canary_analyzer::v1::ExplainRolloutRequest { rollout_id: "judged".into() })
        .await
        .expect("explain")
        .into_inner();
    assert_eq!(explained.decisions.len(), 5);
    stop.cancel();
    task.await.expect("task").expect("stopped cleanly");
    broker_stop.cancel();
    let _ = broker_task.await;
}
