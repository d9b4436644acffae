use super::*;

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
    assert_eq!(spec.secrets, ["db-password"]);
    let e = err(&format!("{GOOD}resources:\n  requests: {{cpu: lots}}\n"));
    assert!(e.message.contains("invalid CPU quantity \"lots\""), "{e}");
    assert_eq!(e.line, 12, "{e}");
    let e = err(&format!("{GOOD}resources:\n  limits: {{memory: 12XB}}\n"));
    assert!(e.message.contains("invalid memory quantity"), "{e}");
}
