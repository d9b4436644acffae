//! The judgement's verdicts on made-up looks.

use super::*;
use paved_proto::timestamp_from_millis;

const SPEC: &str = "name: web\ncommand: [hello]\n";

/// `n` requests of which `errors` failed, all at `ms` milliseconds.
fn counts(n: u64, errors: u64, ms: f64) -> RequestCounts {
    let mut latency = vec![0; histogram::BUCKETS];
    latency[histogram::bucket_of(ms / 1000.0)] = n;
    RequestCounts { requests: n, errors, latency }
}

/// Looks of one second each at a step that began at 0.
fn look(i: u32, canary: RequestCounts, baseline: RequestCounts, over: bool) -> JudgeLookRequest {
    JudgeLookRequest {
        rollout_id: "r".into(),
        baseline_revision_id: "stable".into(),
        look: u64::from(i),
        weight: 20,
        baseline_weight: 20,
        start_time: Some(timestamp_from_millis(i64::from(i - 1) * 1000)),
        end_time: Some(timestamp_from_millis(i64::from(i) * 1000)),
        step_start_time: Some(timestamp_from_millis(0)),
        interval_over: over,
        canary: Some(canary),
        baseline: Some(baseline),
        spec_yaml: SPEC.into(),
        ..JudgeLookRequest::default()
    }
}

fn analysis(extra: &str) -> Analysis {
    paved_spec::parse(&format!("{SPEC}{extra}"), "paved.yaml").expect("valid").analysis()
}

fn run(analysis: &Analysis, looks: &[JudgeLookRequest]) -> Decision {
    judge(analysis, looks, &Fetched::new(), 1)
}

#[test]
fn an_identical_canary_passes_once_the_interval_is_over_and_the_traffic_suffices() {
    let a = analysis("");
    let looks: Vec<_> = (1..=5).map(|i| look(i, counts(400, 0, 2.0), counts(400, 0, 2.0), i == 5)).collect();
    let mid = run(&a, &looks[..3]);
    assert_eq!(mid.verdict(), Verdict::Continue, "{}", mid.reason);
    let end = run(&a, &looks);
    assert_eq!(end.verdict(), Verdict::Pass, "{}", end.reason);
    assert!(end.reason.contains("5xx answers: 0 of 2000 canary requests"), "{}", end.reason);
    assert!(end.checks.iter().any(|c| c.judge == "slo" && c.metric == "p99"), "{:?}", end.checks);
    // Too little traffic to show anything: inconclusive, never a pass.
    let thin: Vec<_> = (1..=2).map(|i| look(i, counts(20, 0, 2.0), counts(20, 0, 2.0), i == 2)).collect();
    let d = run(&a, &thin);
    assert_eq!(d.verdict(), Verdict::Inconclusive, "{}", d.reason);
    assert!(d.reason.contains("extend the step"), "{}", d.reason);
}

#[test]
fn errors_and_slowness_fail_before_the_interval_ends() {
    let a = analysis("");
    // 5% errors against none: no single look fails a canary (a burst
    // could be all it shows); a few do.
    let bad: Vec<_> = (1..=6).map(|i| look(i, counts(400, 20, 2.0), counts(400, 0, 2.0), false)).collect();
    assert_eq!(run(&a, &bad[..1]).verdict(), Verdict::Continue);
    let first = (1..=6).find(|&n| run(&a, &bad[..n]).verdict() == Verdict::Fail).expect("fails within 6 looks");
    let d = run(&a, &bad[..first]);
    assert!(
        d.reason.starts_with(&format!("errors (5xx answers): {} of {} canary requests against 0 of", 20 * first, 400 * first)),
        "{}",
        d.reason
    );
    // +30% latency: every canary request slower than the baseline's p99
    // as the earlier looks measured it (none before the first look).
    let slow: Vec<_> = (1..=8).map(|i| look(i, counts(400, 0, 13.0), counts(400, 0, 10.0), false)).collect();
    assert_eq!(run(&a, &slow[..1]).verdict(), Verdict::Continue, "no threshold before the first look");
    let first = (2..=8).find(|&n| run(&a, &slow[..n]).verdict() == Verdict::Fail).expect("fails within 8 looks");
    let d = run(&a, &slow[..first]);
    assert!(d.reason.starts_with("p99 (requests slower than the baseline's p99)"), "{}", d.reason);
}

#[test]
fn idle_steps_missing_baselines_and_missing_prometheus_data_say_so() {
    let idle = [look(1, counts(0, 0, 1.0), counts(0, 0, 1.0), true)];
    let d = run(&analysis(""), &idle);
    assert_eq!(d.verdict(), Verdict::Pass, "{}", d.reason);
    assert!(d.reason.starts_with("idle: no requests"), "{}", d.reason);
    let strict = run(&analysis("analysis:\n  require_traffic: true\n"), &idle);
    assert_eq!(strict.verdict(), Verdict::Inconclusive, "{}", strict.reason);

    let no_baseline = [look(1, counts(500, 0, 1.0), counts(0, 0, 1.0), true)];
    let d = run(&analysis(""), &no_baseline);
    assert_eq!(d.verdict(), Verdict::Inconclusive, "{}", d.reason);
    // A baseline that is not ready (no share of traffic) below 100%: no pass.
    let mut unready = no_baseline[0].clone();
    unready.baseline_weight = 0;
    assert_eq!(run(&analysis(""), &[unready]).verdict(), Verdict::Inconclusive);
    // At 100% there is no baseline by design: the SLO guards alone.
    let mut full = no_baseline[0].clone();
    (full.weight, full.baseline_weight) = (100, 0);
    let d = run(&analysis(""), &[full]);
    assert_eq!(d.verdict(), Verdict::Pass, "{}", d.reason);
    assert!(d.reason.starts_with("no baseline at 100% of traffic"), "{}", d.reason);

    let prom = analysis("analysis:\n  metrics:\n    queue:\n      kind: prometheus\n      query: q\n");
    let looks = [look(1, counts(500, 0, 1.0), counts(500, 0, 1.0), true)];
    let down = Fetched::from([("queue".to_string(), Err("Prometheus at http://127.0.0.1:1 is unreachable: refused".to_string()))]);
    let d = judge(&prom, &looks, &down, 1);
    assert_eq!(d.verdict(), Verdict::Inconclusive, "{}", d.reason);
    assert!(d.reason.starts_with("queue: Prometheus at http://127.0.0.1:1 is unreachable"), "{}", d.reason);
    // Values that differ: the Kayenta judge fails the step.
    let up =
        Fetched::from([("queue".to_string(), Ok(((0..30).map(|v| 100.0 + f64::from(v)).collect(), (0..30).map(f64::from).collect())))]);
    let d = judge(&prom, &looks, &up, 1);
    assert_eq!(d.verdict(), Verdict::Fail, "{}", d.reason);
    let same = Fetched::from([("queue".to_string(), Ok(((0..30).map(f64::from).collect(), (0..30).map(f64::from).collect())))]);
    assert_eq!(judge(&prom, &looks, &same, 1).verdict(), Verdict::Pass);
}

#[test]
fn kayenta_groups_weigh_their_metrics_together() {
    let metric = |group: &str, weight: u32| format!("kind: prometheus\n      query: q\n      group: {group}\n      weight: {weight}\n");
    let spec =
        format!("analysis:\n  metrics:\n    a:\n      {}    b:\n      {}    c:\n      {}", metric("g", 1), metric("g", 1), metric("h", 2));
    let a = analysis(&spec);
    let looks = [look(1, counts(500, 0, 1.0), counts(500, 0, 1.0), true)];
    let flat: Vec<f64> = (0..30).map(f64::from).collect();
    let high: Vec<f64> = (0..30).map(|v| 100.0 + f64::from(v)).collect();
    // One of g's two metrics fails: g scores 50% at weight 2, h 100% at
    // weight 2: 75, marginal (pass 95, marginal 75): not a pass.
    let fetched = Fetched::from([
        ("a".to_string(), Ok((high, flat.clone()))),
        ("b".to_string(), Ok((flat.clone(), flat.clone()))),
        ("c".to_string(), Ok((flat.clone(), flat))),
    ]);
    let d = judge(&a, &looks, &fetched, 1);
    assert_eq!(d.verdict(), Verdict::Inconclusive, "{}", d.reason);
    assert!(d.reason.starts_with("Kayenta score 75 "), "{}", d.reason);
}
