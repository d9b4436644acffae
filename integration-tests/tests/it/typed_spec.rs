//! The spec as a message (`WorkloadSpec`), as an SDK builds it: deployed and
//! served on the embedded platform, the same revision as the YAML a person
//! writes for it, planned, and refused at the message's field.

use paved::up::Platform;
use paved_integration_tests::{authed, eventually, up_options};
use paved_proto::provisioner::v1::{
    ApplyWorkloadRequest, GetRolloutRequest, HealthCheck, PlanAction, PlanWorkloadRequest, RolloutPolicy, RolloutState, WorkloadSpec,
    provisioner_service_client::ProvisionerServiceClient,
};
use std::time::Duration;
use tonic_types::StatusExt;

fn spec(version: &str) -> WorkloadSpec {
    WorkloadSpec {
        name: "typed".into(),
        command: vec!["hello".into()],
        env: [("HELLO_VERSION".to_string(), version.to_string())].into(),
        rollout: Some(RolloutPolicy { steps: vec![50, 100], interval: Some(prost_duration(1)), ..Default::default() }),
        ..Default::default()
    }
}

fn prost_duration(seconds: i64) -> paved_proto::prost_types::Duration {
    paved_proto::prost_types::Duration { seconds, nanos: 0 }
}

fn apply(spec_yaml: &str, spec: Option<WorkloadSpec>) -> ApplyWorkloadRequest {
    ApplyWorkloadRequest { environment: "dev".into(), spec_yaml: spec_yaml.into(), spec, ..Default::default() }
}

#[tokio::test]
async fn a_spec_built_in_code_deploys_like_its_yaml() {
    let dir = tempfile::tempdir().expect("temp dir");
    let platform = Platform::start(&up_options(dir.path().join("data"))).await.expect("paved up");
    platform.wait_ready(Duration::from_secs(30), |_| {}).await.expect("ready");
    let channel = paved::client::channel(&platform.addr.to_string()).await.expect("channel");
    let mut provisioner = ProvisionerServiceClient::new(authed(channel, &platform.root_token));

    let applied = provisioner.apply_workload(apply("", Some(spec("typed-v1")))).await.expect("apply").into_inner();
    let revision = applied.revision.expect("a revision");
    assert!(applied.changed && revision.number == 1, "{revision:?}");
    assert!(revision.spec_yaml.contains("HELLO_VERSION: typed-v1"), "the revision keeps it as YAML:\n{}", revision.spec_yaml);
    let id = applied.rollout.expect("a rollout").id;
    eventually("the rollout promoted", Duration::from_secs(30), || {
        let (mut provisioner, id) = (provisioner.clone(), id.clone());
        async move {
            let rollout = provisioner.get_rollout(GetRolloutRequest { id }).await.ok()?.into_inner().rollout?;
            (rollout.state() == RolloutState::Promoted).then_some(())
        }
    })
    .await;
    let endpoint = applied.workload.expect("the workload").endpoint;
    assert_eq!(crate::services::http_get(endpoint.trim_start_matches("http://"), "/").await, "hello from typed-v1\n");

    // The YAML a person would write for it is the same spec: no new revision.
    let yaml = "name: typed\ncommand: [hello]\nenv: {HELLO_VERSION: typed-v1}\nrollout: {steps: [50, 100], interval: 1s}\n";
    let again = provisioner.apply_workload(apply(yaml, None)).await.expect("apply the YAML").into_inner();
    assert!(!again.changed && again.revision.expect("revision").number == 1, "the same digest, the same revision");

    let plan = provisioner
        .plan_workload(PlanWorkloadRequest { environment: "dev".into(), spec: Some(spec("typed-v2")), ..Default::default() })
        .await
        .expect("plan")
        .into_inner();
    assert_eq!(plan.action(), PlanAction::Update);
    assert!(plan.changes.iter().any(|c| c.path == "env.HELLO_VERSION" && c.after.contains("typed-v2")), "{:?}", plan.changes);

    // Refused at the message's field, with nothing deployed.
    let mut bad = spec("typed-v3");
    bad.health = Some(HealthCheck { period: Some(prost_duration(1)), timeout: Some(prost_duration(2)), ..Default::default() });
    let status = provisioner.apply_workload(apply("", Some(bad))).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert_eq!(status.get_details_error_info().map(|i| i.reason), Some("INVALID_SPEC".into()));
    let fields: Vec<String> = status.get_details_bad_request().expect("violations").field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["spec.health.timeout"], "{status:?}");
    let status = provisioner.apply_workload(apply(yaml, Some(spec("typed-v3")))).await.expect_err("both forms");
    assert!(status.message().contains("set spec_yaml or spec, not both"), "{status:?}");
    let current = provisioner.apply_workload(apply(yaml, None)).await.expect("apply the YAML").into_inner();
    assert_eq!(current.revision.expect("revision").number, 1, "nothing deployed by the refusals");
    platform.stop().await.expect("stop");
}
