//! OTLP traces against a real OTLP/gRPC receiver (a server built from the
//! official opentelemetry-proto definitions): one `paved deploy` is one
//! trace, from the CLI through the provisioner to the secrets broker and the
//! canary analyzer, and every span of it names the workload, the revision
//! and the artifact digest it worked on.

use crate::secrets::{stop, up_with};
use paved_integration_tests::{
    bin_dir, eventually,
    otlp::{Received, Receiver},
    paved_env, text,
};
use std::{collections::BTreeSet, time::Duration};

#[tokio::test]
async fn one_deploy_is_one_trace_across_the_services_naming_its_lineage() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let collector = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(receiver.clone().serve(listener));
    // Spans leave within 100 ms of ending, not the SDK's default 5 s.
    let otel = [("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let dir = tempfile::tempdir().expect("temp dir");
    let platform = up_with(dir.path(), 0, &otel);
    let paved = |args: &[&str]| {
        let args: Vec<&str> = args.iter().copied().chain(["--endpoint", &platform.endpoint]).collect();
        paved_env(&[otel[0], otel[1], ("PAVED_TOKEN", &platform.root)], &args)
    };

    // An artifact by digest, with a certificate (so the broker is asked for
    // the instance's bootstrap token), rolled out in two judged steps.
    let out = paved(&["artifact", "push", bin_dir().join("hello").to_str().expect("path")]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let digest = text(&out.stdout).split_whitespace().find(|w| w.starts_with("sha256:")).expect("the digest printed").to_string();
    let svc = dir.path().join("shop");
    std::fs::create_dir_all(&svc).expect("mkdir");
    let spec = |version: &str| {
        format!(
            "name: shop\nteam: shop\nartifact: {digest}\ncertificate: true\nhealth:\n  period: 200ms\n  timeout: 200ms\nrollout:\n  steps: [50, 100]\n  interval: 1s\nenv:\n  HELLO_VERSION: {version}\n"
        )
    };
    // The first revision takes all traffic at once; the second is a canary.
    let mut progress = String::new();
    for version in ["v1", "v2"] {
        std::fs::write(svc.join("paved.yaml"), spec(version)).expect("write spec");
        let out = paved(&["deploy", svc.to_str().expect("path"), "--env", "dev"]).await;
        progress = text(&out.stderr);
        assert!(out.status.success(), "{progress}");
    }
    let out = paved(&["rollout", "list", "shop", "--env", "dev", "--output", "json"]).await;
    let rollouts: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let revision = rollouts[0]["revision_id"].as_str().expect("revision id").to_string();
    let rollout = rollouts[0]["id"].as_str().expect("rollout id").to_string();
    let got: serde_json::Value =
        serde_json::from_slice(&paved(&["rollout", "get", &rollout, "--output", "json"]).await.stdout).expect("JSON");
    let stable = got["stable_revision_id"].as_str().expect("the first revision's id").to_string();

    // The second deploy's root span in the CLI, then every span of its trace.
    let root = eventually("the CLI's deploy spans", Duration::from_secs(10), || async {
        let mut roots: Vec<Received> =
            receiver.spans().into_iter().filter(|s| s.service == "paved-cli" && s.span.name == "paved deploy").collect();
        roots.sort_by_key(|s| s.span.start_time_unix_nano);
        (roots.len() == 2).then(|| roots.remove(1))
    })
    .await;
    let trace_id = root.span.trace_id.clone();
    let wanted = ["ProvisionerService/ApplyWorkload", "SecretsBrokerService/IssueBootstrapToken", "CanaryAnalyzerService/JudgeLook"];
    let in_trace = || -> (Vec<Received>, BTreeSet<String>) {
        let trace: Vec<Received> = receiver.spans().into_iter().filter(|s| s.span.trace_id == trace_id).collect();
        let names = trace
            .iter()
            .map(|s| {
                format!(
                    "{} {}/{}",
                    s.span.name,
                    s.attribute("rpc.service").unwrap_or_default(),
                    s.attribute("rpc.method").unwrap_or_default()
                )
            })
            .collect();
        (trace, names)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let trace = loop {
        let (trace, names) = in_trace();
        if wanted.iter().all(|w| names.iter().any(|n| n.ends_with(w))) {
            break trace;
        }
        let others: BTreeSet<String> =
            receiver.spans().iter().map(|s| format!("{} {} {:?}", s.service, s.span.name, s.attribute("rpc.method"))).collect();
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deploy's trace has only {names:#?}; all spans: {others:#?}; the deploy said:\n{progress}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The CLI and the platform (one process in embedded mode) both took part.
    let services: BTreeSet<&str> = trace.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(services, BTreeSet::from(["paved", "paved-cli"]), "{services:?}");
    // Every span names the lineage: the CLI's root span, and all of the
    // platform's, whichever service they ran in; the revision from when the
    // apply made it on (the policy gate's cost forecast comes before), but
    // for the baseline's supervisor and its bootstrap tokens: the baseline
    // runs the first revision.
    let apply = trace.iter().find(|s| s.attribute("rpc.method").as_deref() == Some("ApplyWorkload")).expect("the apply's span");
    let (mut checked, mut baselines) = (0, 0);
    for span in trace.iter().filter(|s| s.service == "paved" || s.span.name == "paved deploy") {
        let method = span.attribute("rpc.method");
        let gate = method.as_deref() == Some("GetCostForecast") && span.span.parent_span_id == apply.span.span_id;
        let supervises = span.span.name == "run revision" || method.as_deref() == Some("IssueBootstrapToken");
        let baseline = supervises && span.attribute("paved.revision") == Some(stable.clone());
        baselines += usize::from(baseline);
        let revision = (!gate).then_some(if baseline { stable.as_str() } else { revision.as_str() });
        let lineage =
            [("paved.workload", Some("dev/shop")), ("paved.revision", revision), ("paved.artifact_digest", Some(digest.as_str()))];
        for (key, value) in lineage {
            assert_eq!(span.attribute(key).as_deref(), value, "{key} of span {:?} ({method:?})", span.span.name);
        }
        checked += 1;
    }
    assert!(checked > wanted.len(), "only {checked} spans checked");
    assert!(baselines > 0, "no span of the baseline's supervisor names the revision it runs");
    // Nothing anyone sent carries a token: no attribute or event of any span.
    for span in receiver.spans() {
        let text = format!("{:?} {:?}", span.span.attributes, span.span.events);
        assert!(!text.contains("pvt1.") && !text.contains("pvb1."), "a credential in span {:?}", span.span.name);
    }
    stop(platform);
    server.abort();
}
