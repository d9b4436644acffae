use super::*;
use std::time::Duration;

const GOOD: &str = "name: hello
command: [\"hello\", \"--flag\"]
port: 8080
health:
  path: /healthz
  period: 500ms
  timeout: 200ms
env:
  HELLO_VERSION: v1
replicas: 2
";

#[test]
fn parses_a_full_spec() {
    let spec = parse(GOOD, "paved.yaml").expect("valid spec");
    assert_eq!(spec.name, "hello");
    assert_eq!(spec.run, Run::Command(vec!["hello".into(), "--flag".into()]));
    assert_eq!(spec.health.period, Duration::from_millis(500));
    assert_eq!(spec.health.failure_threshold, 3);
    assert_eq!(spec.env["HELLO_VERSION"], "v1");
    assert_eq!(spec.replicas, 2);
}

#[test]
fn digest_ignores_formatting_but_not_content() {
    let a = parse(GOOD, "a").expect("valid").digest();
    let reformatted = GOOD.replace("[\"hello\", \"--flag\"]", "\n  - hello\n  - --flag");
    assert_eq!(parse(&reformatted, "b").expect("valid").digest(), a);
    let changed = GOOD.replace("v1", "v2");
    assert_ne!(parse(&changed, "c").expect("valid").digest(), a);
    assert!(a.starts_with("sha256:") && a.len() == 71);
}

fn err(text: &str) -> SpecError {
    parse(text, "dir/paved.yaml").expect_err("spec should be rejected")
}

#[test]
fn unknown_field_is_located() {
    let e = err("name: hello\ncommand: [x]\nhealth:\n  pth: /x\n");
    assert_eq!((e.line, e.column), (4, 3), "{e}");
    assert!(e.message.contains("unknown field `pth`"), "{e}");
    assert_eq!(e.field, "health");
    assert!(e.to_string().starts_with("dir/paved.yaml:4:3: "), "{e}");
}

#[test]
fn bad_values_are_located() {
    let e = err("name: Hello_World\ncommand: [x]\n");
    assert_eq!((e.line, e.column, e.field.as_str()), (1, 7, "name"), "{e}");
    let e = err("name: a\ncommand: [x]\nport: 70000\n");
    assert_eq!(e.line, 3, "{e}");
    let e = err("name: a\ncommand: [x]\nport: 0\n");
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains("between 1 and 65535"), "{e}");
    let e = err("name: a\ncommand: [x]\nhealth:\n  period: 10parsecs\n");
    assert_eq!((e.line, e.field.as_str()), (4, "health.period"), "{e}");
    let e = err("name: a\ncommand: [x]\nenv:\n  PORT: \"1\"\n");
    assert_eq!(e.line, 4, "{e}");
    let e = err("name: a\ncommand: [x]\nenv:\n  HOST: 0.0.0.0\n");
    assert!(e.line == 4 && e.message.contains("HOST is set by the runtime"), "{e}");
    let e = err("name: a\ncommand: []\n");
    assert_eq!(e.line, 2, "{e}");
    let e = err("name: a\ncommand: [x]\nreplicas: 0\n");
    assert_eq!(e.line, 3, "{e}");
}

#[test]
fn cross_field_rules() {
    let e = err("name: a\ncommand: [x]\nartifact: ./x\n");
    assert_eq!((e.line, e.column), (3, 1), "{e}");
    let e = err("name: a\n");
    assert!(e.message.contains("`command`"), "{e}");
    let e = err("name: a\ncommand: [x]\nhealth:\n  period: 1s\n  timeout: 2s\n");
    assert_eq!(e.line, 5, "{e}");
}

#[test]
fn malformed_yaml_is_located() {
    let e = err("name: a\ncommand: [x\n");
    assert!(e.line >= 2, "{e}");
    let e = err("");
    assert!(e.message.contains("empty"), "{e}");
    let e = err("- just\n- a list\n");
    assert_eq!(e.line, 1, "{e}");
}

#[test]
fn rollout_policy_defaults_and_overrides() {
    let spec = parse(GOOD, "paved.yaml").expect("valid");
    assert_eq!(spec.rollout, RolloutPolicy::default());
    assert_eq!(spec.rollout.steps, [1, 5, 25, 50, 100]);
    let text = format!("{GOOD}rollout:\n  steps: [50, 100]\n  interval: 2s\n  max_error_rate: 0.05\n");
    let spec = parse(&text, "paved.yaml").expect("valid");
    assert_eq!(spec.rollout.steps, [50, 100]);
    assert_eq!(spec.rollout.interval, Duration::from_secs(2));
    assert_eq!(spec.rollout.max_error_ppm, 50_000);
    assert_eq!(spec.rollout.max_p99_latency, Duration::from_millis(500));
}

#[test]
fn bad_rollout_steps_are_located() {
    let e = err(&format!("{GOOD}rollout:\n  steps: [5, 1, 100]\n"));
    assert_eq!((e.line, e.column), (12, 10), "{e}");
    assert!(e.message.contains("steps must increase: 1 comes after 5"), "{e}");
    let e = err(&format!("{GOOD}rollout:\n  steps: [5, 50]\n"));
    assert!(e.message.contains("the last step must be 100"), "{e}");
    let e = err(&format!("{GOOD}rollout:\n  steps: [0, 100]\n"));
    assert!(e.message.contains("between 1 and 100"), "{e}");
    let e = err(&format!("{GOOD}rollout:\n  max_error_rate: 2\n"));
    assert!(e.message.contains("between 0 and 1"), "{e}");
}

#[test]
fn resources_security_and_secrets() {
    let text = format!(
        "{GOOD}resources:\n  requests: {{cpu: 250m, memory: 64Mi}}\n  limits: {{cpu: '1', memory: 1Gi}}\nsecurity:\n  privileged: true\nsecrets: [db-password]\n"
    );
    let spec = parse(&text, "paved.yaml").expect("valid");
    assert_eq!(spec.resources.requests.cpu.as_deref(), Some("250m"));
    assert_eq!(spec.resources.limits.memory.as_deref(), Some("1Gi"));
    assert!(spec.security.privileged && !spec.security.run_as_root);
    assert_eq!(spec.resources.requests.cpu_cores(), Some(0.25));
    assert_eq!(spec.resources.limits.cpu_cores(), Some(1.0));
    assert_eq!(spec.resources.requests.memory_bytes(), Some(64.0 * 1048576.0));
    assert_eq!(spec.resources.limits.memory_bytes(), Some(1073741824.0));
    let decimal = parse(&format!("{GOOD}resources:\n  requests: {{cpu: '1.5', memory: 2G}}\n"), "paved.yaml").expect("valid");
    assert_eq!(decimal.resources.requests.cpu_cores(), Some(1.5));
    assert_eq!(decimal.resources.requests.memory_bytes(), Some(2e9));
    assert_eq!(decimal.resources.limits.cpu_cores(), None);
    assert_eq!(spec.secrets, ["db-password"]);
    assert!(spec.databases.is_empty());
    let spec = parse(&format!("{GOOD}databases: [orders, billing]\n"), "paved.yaml").expect("valid");
    assert_eq!(spec.databases, ["orders", "billing"]);
    let e = err(&format!("{GOOD}databases: [Orders!]\n"));
    assert_eq!(e.line, 11, "{e}");
    // A certificate only when asked for; absent, the canonical form (and so
    // every digest written before the field) is unchanged.
    let plain = parse(GOOD, "paved.yaml").expect("valid");
    assert!(!plain.certificate && !serde_json::to_string(&plain).expect("json").contains("certificate"));
    let with = parse(&format!("{GOOD}certificate: true\n"), "paved.yaml").expect("valid");
    assert!(with.certificate);
    assert_ne!(with.digest(), plain.digest());
    let e = err(&format!("{GOOD}certificate: maybe\n"));
    assert_eq!((e.line, e.field.as_str()), (11, "certificate"), "{e}");
    let e = err(&format!("{GOOD}resources:\n  requests: {{cpu: lots}}\n"));
    assert!(e.message.contains("invalid CPU quantity \"lots\""), "{e}");
    assert_eq!(e.line, 12, "{e}");
    let e = err(&format!("{GOOD}resources:\n  limits: {{memory: 12XB}}\n"));
    assert!(e.message.contains("invalid memory quantity"), "{e}");
}

#[test]
fn secret_delivery_is_declared_and_located() {
    let plain = parse(GOOD, "paved.yaml").expect("valid");
    let json = serde_json::to_string(&plain).expect("json");
    assert!(!json.contains("secret_files") && !json.contains("on_rotation"), "older digests hold: {json}");
    assert_eq!((plain.secret_files.len(), plain.on_rotation), (0, OnRotation::Signal));
    let base = "name: hello\ncommand: [hello]\nsecrets: [db-password, tls-key]\n";
    let text =
        format!("{base}env:\n  DSN: postgres://app:${{secret:db-password}}@db/shop\nsecret_files: [tls-key]\non_rotation: restart\n");
    let spec = parse(&text, "paved.yaml").expect("valid");
    assert_eq!((spec.secret_files.as_slice(), spec.on_rotation), (["tls-key".to_string()].as_slice(), OnRotation::Restart));
    assert_ne!(spec.digest(), parse(&text.replace("restart", "signal"), "paved.yaml").expect("valid").digest());
    // References and files name declared secrets only, at their line.
    let e = err(&format!("{base}env:\n  HELLO: v1\n  DSN: x${{secret:api-key}}y\n"));
    assert_eq!((e.line, e.column, e.field.as_str()), (6, 3, "env.DSN"), "{e}");
    assert!(e.message.contains("`${secret:api-key}` refers to a secret not declared under `secrets`"), "{e}");
    let e = err(&format!("{base}secret_files: [tls-key, api-key]\n"));
    assert_eq!((e.line, e.field.as_str()), (4, "secret_files"), "{e}");
    assert!(e.message.contains("`api-key` is not declared"), "{e}");
    let e = err(&format!("{base}on_rotation: rollout\n"));
    assert_eq!((e.line, e.field.as_str()), (4, "on_rotation"), "{e}");
    assert!(e.message.contains("signal") && e.message.contains("restart"), "{e}");
}

const ANALYSED: &str = "name: hello
command: [hello]
analysis:
  alpha: 0.005
  pass_score: 90
  metrics:
    errors:
      kind: error-rate
      slo: 0.02
      max_change: 0.5
      critical: true
    p90:
      kind: latency
      quantile: 0.9
      slo: 250ms
    queue:
      kind: prometheus
      query: sum(queue_depth{revision=\"$REVISION\"})
      direction: decrease
      slo: 120.5
      weight: 3
      min_samples: 10
      group: saturation
      nan: 0
";

#[test]
fn analysis_parses_with_its_defaults() {
    let spec = parse(ANALYSED, "paved.yaml").expect("valid");
    let a = spec.analysis();
    assert_eq!((a.alpha_ppm, a.pass_score, a.marginal_score), (5_000, 90, 75));
    let errors = &a.metrics["errors"];
    assert_eq!(
        (&errors.source, &errors.slo, errors.max_change_ppm, errors.critical),
        (&Source::ErrorRate, &Some(Slo::ErrorRatePpm(20_000)), 500_000, true)
    );
    let p90 = &a.metrics["p90"];
    assert_eq!(
        (&p90.source, &p90.slo, p90.direction),
        (&Source::Latency { quantile_ppm: 900_000 }, &Some(Slo::LatencyMs(250)), Direction::Increase)
    );
    assert_eq!((p90.max_change_ppm, p90.weight, p90.min_samples, p90.critical), (100_000, 1, 50, false), "defaults");
    let queue = &a.metrics["queue"];
    assert_eq!(queue.source, Source::Prometheus { query: "sum(queue_depth{revision=\"$REVISION\"})".into() });
    assert_eq!(
        (&queue.slo, queue.direction, queue.weight, queue.min_samples),
        (&Some(Slo::ValueMicros(120_500_000)), Direction::Decrease, 3, 10)
    );
    assert_ne!(spec.digest(), parse("name: hello\ncommand: [hello]\n", "p").expect("valid").digest(), "the analysis is part of the spec");

    // Without a section: error rate and p99 against the rollout's limits,
    // and nothing added to the canonical form (old digests stay valid).
    let plain = parse("name: hello\ncommand: [hello]\nrollout:\n  max_error_rate: 0.05\n", "p").expect("valid");
    let d = plain.analysis();
    assert_eq!(d.metrics.keys().collect::<Vec<_>>(), ["errors", "p99"]);
    assert_eq!(d.metrics["errors"].slo, Some(Slo::ErrorRatePpm(50_000)));
    assert_eq!(d.metrics["p99"].slo, Some(Slo::LatencyMs(500)));
    assert!(!serde_json::to_string(&plain).expect("json").contains("analysis"));
    assert_eq!((d.max_extensions, d.require_traffic), (3, false));
    assert_eq!(d.metrics["errors"].judges, [Judge::Sequential, Judge::Slo]);
    assert_eq!(queue.judges, [Judge::Kayenta, Judge::Slo], "a prometheus metric with an SLO");
    assert_eq!((queue.group.as_deref(), queue.nan_micros), (Some("saturation"), Some(0)));
    assert_eq!((a.metrics["errors"].group.as_deref(), a.metrics["errors"].nan_micros), (None, None), "defaults: own group, NaN dropped");
    let e = err(&ANALYSED.replace("      nan: 0\n", "      nan: never\n"));
    assert!(e.message.starts_with("nan is `remove` or the number") && e.field == "analysis.metrics.queue.nan", "{e}");
}

#[test]
fn judges_combine_per_metric_where_they_apply() {
    let text = ANALYSED.replace(
        "      critical: true
",
        "      critical: true
      judges: [kayenta, sequential, kayenta]
",
    );
    let a = parse(&text, "p").expect("valid").analysis();
    assert_eq!(a.metrics["errors"].judges, [Judge::Sequential, Judge::Kayenta], "sorted, once each");
    let e = err(&ANALYSED.replace(
        "      weight: 3
",
        "      weight: 3
      judges: [sequential]
",
    ));
    assert!(e.message.starts_with("the sequential judge counts requests") && e.field == "analysis.metrics.queue.judges", "{e}");
    let e = err(&ANALYSED.replace(
        "      slo: 120.5
",
        "      judges: [slo]
",
    ));
    assert!(e.message.starts_with("the slo judge needs an `slo`"), "{e}");
    let e = err(&ANALYSED.replace(
        "  pass_score: 90
",
        "  pass_score: 90
  max_extensions: 101
",
    ));
    assert!(e.message.starts_with("max_extensions must be at most 100") && e.line == 6, "{e}");
    let e = err(&ANALYSED.replace(
        "      critical: true
",
        "      critical: true
      judges: [oracle]
",
    ));
    assert!(e.message.contains("unknown variant `oracle`"), "{e}");
}

#[test]
fn impossible_analyses_are_located() {
    let cases: [(&str, &str, usize, &str); 10] = [
        ("alpha: 0.005", "alpha: 0.7", 4, "alpha must be more than 0 and at most 0.5, got 0.7"),
        ("alpha: 0.005", "alpha: 0", 4, "alpha must be more than 0 and at most 0.5, got 0"),
        ("pass_score: 90", "pass_score: 60", 3, "marginal_score (75) must not exceed pass_score (60)"),
        ("quantile: 0.9", "quantile: 1", 14, "quantile must be between 0 and 1 exclusive (0.99 for p99), got 1"),
        ("slo: 250ms", "slo: 0.25", 15, "a latency SLO is a duration, e.g. 500ms"),
        ("slo: 0.02", "slo: 2", 9, "an error-rate SLO is a share between 0 and 1, e.g. 0.01"),
        ("max_change: 0.5", "max_change: -1", 10, "max_change is a relative change between 0 and 100, e.g. 0.1 for 10%"),
        ("min_samples: 10", "min_samples: 0", 22, "min_samples must be between 1 and 1000000, got 0"),
        ("kind: error-rate", "kind: error-rate\n      quantile: 0.5", 9, "`quantile` applies to latency metrics, not error-rate"),
        ("kind: latency", "kind: histogram", 13, "unknown variant `histogram`"),
    ];
    for (from, to, line, message) in cases {
        let text = ANALYSED.replacen(from, to, 1);
        let e = err(&text);
        assert!(e.message.starts_with(message) && e.line == line, "{to:?}: {e}");
    }
    let no_query = ANALYSED.replace("      query: sum(queue_depth{revision=\"$REVISION\"})\n", "");
    let e = err(&no_query);
    assert_eq!((e.field.as_str(), e.message.as_str()), ("analysis.metrics.queue.kind", "a prometheus metric needs a `query`"));
    let none = err("name: hello\ncommand: [hello]\nanalysis:\n  metrics: {}\n");
    assert!(none.message.contains("at least one metric") && none.line == 4, "{none}");
}

/// The Score file `score`'s own tests read.
const SCORE: &str = include_str!("../testdata/hello.score.yaml");

#[test]
fn a_score_file_and_its_native_form_have_one_digest() {
    let spec = parse(SCORE, "score.yaml").expect("valid Score");
    let native = "name: hello\ncommand: [hello, --name, hello]\nport: 9090\nhealth: {path: /ready}\nsecrets: [db]\n\
        env:\n  GREETING: \"hi from hello of web, ${literal}\"\n  DB_PASSWORD: \"${secret:db}\"\n\
        resources:\n  requests: {cpu: 100m, memory: 64Mi}\n  limits: {cpu: 500m, memory: 128Mi}\n";
    assert_eq!(parse(native, "paved.yaml").expect("native").digest(), spec.digest());
}

#[test]
fn overlays_change_score_values() {
    let r = render(SCORE, "score.yaml", Some(("containers:\n  main:\n    variables:\n      GREETING: hey\n", "score.prod.yaml")))
        .expect("valid overlay");
    assert_eq!(r.spec.env["GREETING"], "hey");
    let e = render(SCORE, "score.yaml", Some(("containers:\n  main:\n    image: nginx\n", "score.prod.yaml"))).expect_err("bad image");
    assert_eq!((e.file.as_str(), e.line, e.field.as_str()), ("score.prod.yaml", 3, "containers.main.image"), "{e}");
}

#[test]
fn the_team_that_pays() {
    let spec = parse(&format!("{GOOD}team: shop\n"), "paved.yaml").expect("valid");
    assert_eq!(spec.team.as_deref(), Some("shop"));
    // Absent, the canonical form (and every digest before the field) holds.
    let plain = parse(GOOD, "paved.yaml").expect("valid");
    assert!(plain.team.is_none() && !serde_json::to_string(&plain).expect("json").contains("team"));
    assert_ne!(spec.digest(), plain.digest());
    let e = err(&format!("{GOOD}team: Shop Floor\n"));
    assert_eq!((e.line, e.field.as_str()), (11, "team"), "{e}");
    // In a Score file, an annotation.
    let score = SCORE.replacen("  annotations:\n", "  annotations:\n    paved.dev/team: shop\n", 1);
    assert_eq!(parse(&score, "score.yaml").expect("valid Score").team.as_deref(), Some("shop"));
    let bad = SCORE.replacen("  annotations:\n", "  annotations:\n    paved.dev/team: \"no way\"\n", 1);
    let e = parse(&bad, "score.yaml").expect_err("a team that is no name");
    assert_eq!((e.line, e.field.as_str()), (5, "metadata.annotations.paved.dev/team"), "{e}");
}

/// Found by the `spec` fuzz target: YAML's null read as a string was the
/// text of its spelling, so one document gave several specs.
#[test]
fn an_env_null_is_empty_whatever_its_spelling() {
    let spec =
        |env: &str| parse(&format!("name: web\ncommand: [hello]\nenv:\n  K: {env}\n"), "paved.yaml").expect("valid").env["K"].clone();
    for null in ["", "~", "null", "Null", "NULL"] {
        assert_eq!(spec(null), "", "K: {null}");
    }
    assert_eq!(spec("\"null\""), "null", "a quoted null is the text");
    let score = SCORE.replacen("    variables:\n", "    variables:\n      EMPTY: ~\n", 1);
    assert_eq!(parse(&score, "score.yaml").expect("valid Score").env["EMPTY"], "");
    // A null map is an empty one, however written (found by the spec and score targets).
    for null in ["", " ~", " null"] {
        let spec = parse(&format!("name: web\ncommand: [hello]\nenv:{null}\n"), "paved.yaml").expect("valid");
        assert!(spec.env.is_empty(), "env:{null}");
    }
}

/// Found by the `spec` fuzz target: a file of comments alone was "missing
/// field `name`" on a line after its last.
#[test]
fn a_spec_of_comments_alone_is_empty() {
    for text in ["# The", "# a\n# b\n", "---\n", "# x\n---\n# y"] {
        let e = parse(text, "paved.yaml").expect_err("empty");
        assert_eq!((e.line, e.column), (1, 1), "{text:?}: {e}");
        assert!(e.message.starts_with("the spec is empty"), "{text:?}: {e}");
    }
}

/// Found by the `score` fuzz target: with no final line break, an error at
/// the end pointed at a line the file does not have.
#[test]
fn an_error_at_the_end_points_at_the_last_line() {
    for (text, file) in [("apiVersion: score.dev/v1b1\nmetaadpa", "score.yaml"), ("name: web\ncommand", "paved.yaml")] {
        let e = parse(text, file).expect_err("no colon");
        assert_eq!(e.line, 2, "{text:?}: {e}");
        assert!(e.column >= 1, "{e}");
    }
}
