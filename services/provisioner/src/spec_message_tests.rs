use super::*;
use std::collections::HashMap;

fn ms(ms: i64) -> Option<Duration> {
    Some(Duration { seconds: ms / 1000, nanos: i32::try_from(ms % 1000).expect("ms") * 1_000_000 })
}

/// Every field, set as docs/spec.md's example sets it in YAML.
fn full() -> pb::WorkloadSpec {
    let metric = |kind: pb::MetricKind| pb::Metric { kind: kind.into(), ..Default::default() };
    pb::WorkloadSpec {
        name: "hello".into(),
        team: "shop".into(),
        command: vec!["hello".into(), "--quiet".into()],
        port: Some(9090),
        health: Some(pb::HealthCheck {
            path: "/ready".into(),
            period: ms(2000),
            timeout: ms(500),
            failure_threshold: Some(4),
            startup_timeout: ms(60_000),
        }),
        env: HashMap::from([("HELLO_VERSION".into(), "v1".into()), ("DB_PASSWORD".into(), "${secret:db-password}".into())]),
        replicas: Some(2),
        resources: Some(pb::Resources {
            requests: Some(pb::Quantities { cpu: "100m".into(), memory: "64Mi".into() }),
            limits: Some(pb::Quantities { cpu: "500m".into(), memory: String::new() }),
        }),
        security: Some(pb::Security { run_as_root: false, privileged: false }),
        secrets: vec!["db-password".into(), "tls-key".into()],
        secret_files: vec!["tls-key".into()],
        on_rotation: "restart".into(),
        databases: vec!["orders".into()],
        certificate: true,
        rollout: Some(pb::RolloutPolicy {
            steps: vec![10, 50, 100],
            interval: ms(1500),
            max_error_rate: Some(0.02),
            max_p99_latency: ms(250),
        }),
        analysis: Some(pb::Analysis {
            alpha: Some(0.05),
            max_extensions: Some(2),
            require_traffic: Some(true),
            metrics: HashMap::from([
                (
                    "errors".into(),
                    pb::Metric {
                        slo: Some(metric::Slo::SloValue(0.01)),
                        max_change: Some(0.5),
                        critical: true,
                        ..metric(pb::MetricKind::ErrorRate)
                    },
                ),
                (
                    "p99".into(),
                    pb::Metric {
                        quantile: Some(0.99),
                        slo: Some(metric::Slo::SloLatency(ms(500).expect("d"))),
                        ..metric(pb::MetricKind::Latency)
                    },
                ),
                (
                    "queue".into(),
                    pb::Metric {
                        query: r#"sum(queue{revision="$REVISION"})"#.into(),
                        direction: pb::Direction::Decrease.into(),
                        judges: vec![pb::Judge::Kayenta.into()],
                        nan: Some(metric::Nan::NanValue(0.0)),
                        ..metric(pb::MetricKind::Prometheus)
                    },
                ),
            ]),
            ..Default::default()
        }),
        schedule: Some(pb::Schedule {
            uptime: vec!["Mon-Fri 07:30-20:30 Europe/Berlin".into()],
            exclude: vec!["2026-12-24".into()],
            idle_after: Some(Duration { seconds: 1800, nanos: 0 }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

const FULL_YAML: &str = r#"
name: hello
team: shop
command: [hello, --quiet]
port: 9090
health: {path: /ready, period: 2s, timeout: 500ms, failure_threshold: 4, startup_timeout: 60s}
env: {HELLO_VERSION: v1, DB_PASSWORD: "${secret:db-password}"}
replicas: 2
resources:
  requests: {cpu: 100m, memory: 64Mi}
  limits: {cpu: 500m}
security: {run_as_root: false, privileged: false}
secrets: [db-password, tls-key]
secret_files: [tls-key]
on_rotation: restart
databases: [orders]
certificate: true
rollout: {steps: [10, 50, 100], interval: 1500ms, max_error_rate: 0.02, max_p99_latency: 250ms}
analysis:
  alpha: 0.05
  max_extensions: 2
  require_traffic: true
  metrics:
    errors: {kind: error-rate, slo: 0.01, max_change: 0.5, critical: true}
    p99: {kind: latency, quantile: 0.99, slo: 500ms}
    queue: {kind: prometheus, query: 'sum(queue{revision="$REVISION"})', direction: decrease, judges: [kayenta], nan: 0}
schedule:
  uptime: Mon-Fri 07:30-20:30 Europe/Berlin
  exclude: ["2026-12-24"]
  idle_after: 30m
"#;

/// The message and the YAML a person would write are one spec: the same
/// parsed value, so the same canonical digest and the same revision.
#[test]
fn the_message_is_the_spec_its_yaml_is() {
    let text = text("", Some(&full())).expect("a valid spec");
    let from_message = paved_spec::parse(&text, "spec").expect("parses");
    let from_yaml = paved_spec::parse(FULL_YAML, "paved.yaml").expect("the YAML parses");
    assert_eq!(from_message, from_yaml, "{text}");
}

#[test]
fn a_yaml_spec_passes_through_untouched() {
    assert!(matches!(text("name: a\ncommand: [a]\n", None), Ok(Cow::Borrowed("name: a\ncommand: [a]\n"))));
}

fn refusal(spec: pb::WorkloadSpec) -> (String, String) {
    let status = text("", Some(&spec)).expect_err("refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    let details = tonic_types::StatusExt::get_error_details(&status);
    assert_eq!(details.error_info().map(|i| i.reason.as_str()), Some("INVALID_SPEC"));
    let violation = &details.bad_request().expect("bad request").field_violations[0];
    (violation.field.clone(), status.message().to_string())
}

/// Errors name the message's fields, however the parser found them.
#[test]
fn errors_name_the_messages_fields() {
    let mut spec = full();
    spec.health.as_mut().expect("health").timeout = ms(5000);
    let (field, message) = refusal(spec);
    assert_eq!(field, "spec.health.timeout");
    assert!(message.contains("must not exceed `health.period`") && !message.contains(":1:"), "{message}");

    let mut spec = full();
    spec.analysis.as_mut().expect("analysis").metrics.get_mut("p99").expect("p99").quantile = Some(1.5);
    assert_eq!(refusal(spec).0, "spec.analysis.metrics.p99.quantile");

    let mut spec = full();
    spec.env.insert("PORT".into(), "1".into());
    assert_eq!(refusal(spec).0, "spec.env", "the parser names the map");

    // The default timeout (1 s) over a shorter period: the timeout is
    // named though it was not set.
    let mut spec = full();
    spec.health = Some(pb::HealthCheck { period: ms(500), ..Default::default() });
    assert_eq!(refusal(spec).0, "spec.health.timeout");

    // The YAML's `slo` is the branch of the oneof that was set.
    let mut spec = full();
    spec.analysis.as_mut().expect("analysis").metrics.get_mut("errors").expect("errors").slo = Some(metric::Slo::SloValue(2.0));
    assert_eq!(refusal(spec).0, "spec.analysis.metrics.errors.slo_value");

    let mut spec = full();
    spec.command.clear();
    assert_eq!(refusal(spec).0, "spec.command", "neither command nor artifact");

    let mut spec = full();
    spec.schedule.as_mut().expect("schedule").uptime = vec!["Mon-Fry 07:30-20:30 UTC".into()];
    let (field, message) = refusal(spec);
    assert_eq!(field, "spec.schedule.uptime");
    assert!(message.contains("invalid day \"Fry\""), "{message}");
}

/// What `full` leaves out: an artifact, downtime, the other enum values,
/// the Kayenta knobs and NaNs removed.
#[test]
fn the_other_fields_are_their_yaml_too() {
    let spec = pb::WorkloadSpec {
        name: "batch".into(),
        artifact: "./bin/batch".into(),
        analysis: Some(pb::Analysis {
            pass_score: Some(90),
            marginal_score: Some(60),
            metrics: HashMap::from([
                (
                    "queue".into(),
                    pb::Metric {
                        kind: pb::MetricKind::Prometheus.into(),
                        query: "sum(queue)".into(),
                        direction: pb::Direction::Decrease.into(),
                        weight: Some(3),
                        min_samples: Some(20),
                        group: "backlog".into(),
                        judges: vec![pb::Judge::Kayenta.into(), pb::Judge::Slo.into()],
                        slo: Some(metric::Slo::SloValue(100.0)),
                        nan: Some(metric::Nan::NanRemove(true)),
                        ..Default::default()
                    },
                ),
                (
                    "errors".into(),
                    pb::Metric {
                        kind: pb::MetricKind::ErrorRate.into(),
                        direction: pb::Direction::Either.into(),
                        judges: vec![pb::Judge::Sequential.into()],
                        ..Default::default()
                    },
                ),
                (
                    "p50".into(),
                    pb::Metric {
                        kind: pb::MetricKind::Latency.into(),
                        quantile: Some(0.5),
                        direction: pb::Direction::Increase.into(),
                        ..Default::default()
                    },
                ),
            ]),
            ..Default::default()
        }),
        schedule: Some(pb::Schedule { downtime: vec!["Sat-Sun 00:00-24:00 UTC".into()], ..Default::default() }),
        ..Default::default()
    };
    let yaml = r#"
name: batch
artifact: ./bin/batch
analysis:
  pass_score: 90
  marginal_score: 60
  metrics:
    queue: {kind: prometheus, query: sum(queue), direction: decrease, weight: 3, min_samples: 20, group: backlog, judges: [kayenta, slo], slo: 100, nan: remove}
    errors: {kind: error-rate, direction: either, judges: [sequential]}
    p50: {kind: latency, quantile: 0.5, direction: increase}
schedule:
  downtime: [Sat-Sun 00:00-24:00 UTC]
"#;
    let text = text("", Some(&spec)).expect("a valid spec");
    assert_eq!(
        paved_spec::parse(&text, "spec").expect("parses"),
        paved_spec::parse(yaml, "paved.yaml").expect("the YAML parses"),
        "{text}"
    );
    assert!(text.starts_with("name: batch\nartifact: ./bin/batch\n"), "paved.yaml's order:\n{text}");
}

#[test]
fn what_yaml_cannot_say_is_refused_at_its_field() {
    let mut spec = full();
    spec.analysis.as_mut().expect("analysis").metrics.get_mut("errors").expect("errors").slo = Some(metric::Slo::SloValue(f64::NAN));
    assert_eq!(refusal(spec).0, "spec.analysis.metrics.errors.slo_value", "NaN is not left out as unset");
    let mut spec = full();
    spec.rollout.as_mut().expect("rollout").max_error_rate = Some(f64::INFINITY);
    assert_eq!(refusal(spec).0, "spec.rollout.max_error_rate");

    let mut spec = full();
    spec.rollout.as_mut().expect("rollout").interval = Some(Duration { seconds: 1, nanos: 1 });
    assert_eq!(refusal(spec).0, "spec.rollout.interval");

    let mut spec = full();
    spec.schedule.as_mut().expect("schedule").idle_after = Some(Duration { seconds: 1, nanos: 500_000_000 });
    assert_eq!(refusal(spec).0, "spec.schedule.idle_after");

    let mut spec = full();
    spec.analysis.as_mut().expect("analysis").metrics.get_mut("errors").expect("errors").kind = 0;
    assert_eq!(refusal(spec).0, "spec.analysis.metrics.errors.kind");

    let status = text("name: a\n", Some(&full())).expect_err("both");
    assert!(status.message().contains("not both"), "{status:?}");
}

#[test]
fn keys_above_a_line_make_its_path() {
    let yaml = "a: 1\nb:\n  c:\n  - x\n  d:\n    e: 2\nf: 3\n";
    assert_eq!(keys_above(yaml, 6), ["b", "d", "e"]);
    assert_eq!(keys_above(yaml, 4), ["b", "c"]);
    assert_eq!(keys_above(yaml, 7), ["f"]);
}
