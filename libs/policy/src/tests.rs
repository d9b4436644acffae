use super::*;
use serde_json::json;

#[test]
fn the_default_bundle_passes_its_own_tests() {
    let bundle = Bundle::default_bundle().expect("the default bundle compiles");
    let results = bundle.test().expect("tests run");
    assert!(results.len() >= 12, "{results:?}");
    let failed: Vec<&TestResult> = results.iter().filter(|r| r.failure.is_some()).collect();
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn decides_deny_and_warn_with_the_bundle_digest() {
    let bundle = Bundle::default_bundle().expect("compiles");
    let workload = json!({
        "name": "web", "run": {"command": ["hello"]}, "env": {"API_TOKEN": "x"}, "replicas": 1,
        "security": {"run_as_root": false, "privileged": false}, "secrets": [],
    });
    let dev = bundle.decide(&json!({"environment": "dev", "workload": workload, "artifact": null})).expect("decides");
    assert_eq!(
        dev.denials,
        ["env API_TOKEN looks like a secret but holds a literal value: declare it under `secrets` and use ${secret:<name>}"]
    );
    assert!(dev.warnings.iter().any(|w| w.contains("not pinned by digest")), "{dev:?}");
    assert!(dev.warnings.iter().any(|w| w == "resources.limits.cpu is not set"), "{dev:?}");
    assert!(!dev.allowed());
    assert_eq!(dev.bundle_digest, bundle.digest());
    assert!(bundle.digest().starts_with("sha256:") && bundle.digest().len() == 71);
}

#[test]
fn a_failing_test_and_a_syntax_error_are_reported() {
    let files = vec![
        ("p.rego".to_string(), "package paved.deploy\n\ndeny contains \"always\" if { true }\n".to_string()),
        (
            "p_test.rego".to_string(),
            "package p_test\n\nimport data.paved.deploy\n\ntest_nothing_denied if {\n\tcount(deploy.deny) == 0\n}\n".to_string(),
        ),
    ];
    let results = Bundle::from_files(files.clone()).expect("compiles").test().expect("runs");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].name, "data.p_test.test_nothing_denied");
    assert!(results[0].failure.as_deref().is_some_and(|f| f.contains("undefined")), "{results:?}");

    let broken = vec![("bad.rego".to_string(), "package paved.deploy\n\ndeny contains msg if {\n\tmsg := \n}\n".to_string())];
    let Err(PolicyError::Invalid(message)) = Bundle::from_files(broken) else { panic!("a syntax error must be refused") };
    assert!(message.contains("bad.rego:"), "the error names its file, line and column: {message}");

    // The digest changes with any byte of any file.
    let a = Bundle::from_files(files.clone()).expect("compiles");
    let mut changed = files;
    changed[0].1.push('\n');
    assert_ne!(a.digest(), Bundle::from_files(changed).expect("compiles").digest());
}

#[test]
fn decisions_are_kept_by_input_unless_a_rule_reads_the_clock() {
    let pure = Bundle::default_bundle().expect("compiles");
    let input = |name: &str| json!({"environment": "dev", "workload": {"name": name, "run": {"command": ["hello"]}}, "artifact": null});
    let first = pure.decide(&input("a")).expect("decides");
    assert_eq!(pure.decide(&input("a")).expect("decides again"), first);
    pure.decide(&input("b")).expect("decides");
    let kept = pure.decided.as_ref().expect("the default bundle is pure").lock().expect("lock").len();
    assert_eq!(kept, 2, "one decision per distinct input");

    let clock = "package paved.deploy\n\ndeny contains \"never\" if { false }\n\nwarn contains \"late\" if { time.now_ns() > 0 }\n";
    let timed = Bundle::from_files(vec![("t.rego".into(), clock.into())]).expect("compiles");
    assert!(timed.decided.is_none(), "a bundle reading the clock is evaluated every time");
    assert_eq!(timed.decide(&input("a")).expect("decides").warnings, ["late"]);
}
