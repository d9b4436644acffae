//! `JudgeLook`: a look validated as the analyzer's API does, then judged
//! with the rollout's looks so far, as the analyzer does; then the
//! rollout replayed from its looks as stored.

use paved_canary_analyzer::{
    judgement::{Fetched, Rollout, millis},
    looks::{decode_fetched, encode_fetched},
    request::{analysis_of, queried, validate},
};
use paved_proto::{
    canary_analyzer::v1::{Decision, JudgeLookRequest, RequestCounts, Verdict},
    timestamp_from_millis,
};
use paved_spec::Analysis;
use prost::Message;

/// The smallest valid spec, for sections to be added to.
pub const BASE: &str = "name: web\ncommand: [hello]\nport: 8080\n";

/// The analyses a look may be judged with, picked by the input's first byte.
pub const ANALYSES: &[&str] = &[
    "",
    "rollout: {steps: [10, 50, 100], max_error_rate: 0.05, max_p99_latency: 200ms}\n",
    "analysis:\n  require_traffic: true\n  max_extensions: 2\n  metrics:\n    errors: {kind: error-rate, slo: 0.01, max_change: 0.5, critical: true}\n    p99: {kind: latency, quantile: 0.99, slo: 500ms, max_change: 0.1}\n",
    "analysis:\n  alpha: 0.05\n  metrics:\n    queue: {kind: prometheus, query: 'sum(queue{revision=\"$REVISION\"})', direction: increase, group: q, nan: 0}\n    cpu: {kind: prometheus, query: 'cpu{revision=\"$REVISION\"}', judges: [kayenta], weight: 3}\n    errors: {kind: error-rate, judges: [sequential, kayenta, slo], slo: 0.02}\n",
];

/// A look of one second, the `i`th of a rollout, at step `step`, with
/// 20% of traffic on the canary and 20% on the baseline.
pub(crate) fn look(i: u64, step: u32, canary: RequestCounts, baseline: RequestCounts, over: bool) -> JudgeLookRequest {
    JudgeLookRequest {
        rollout_id: "r".into(),
        environment: "dev".into(),
        workload: "web".into(),
        canary_revision_id: "canary".into(),
        baseline_revision_id: "stable".into(),
        look: i,
        step,
        weight: 20,
        baseline_weight: 20,
        start_time: Some(timestamp_from_millis((i as i64 - 1) * 1000)),
        end_time: Some(timestamp_from_millis(i as i64 * 1000)),
        step_start_time: Some(timestamp_from_millis(0)),
        interval_over: over,
        canary: Some(canary),
        baseline: Some(baseline),
        ..JudgeLookRequest::default()
    }
}

/// `n` requests, `errors` of them failed, all in one latency bucket.
pub(crate) fn counts(n: u64, errors: u64, bucket: usize) -> RequestCounts {
    let mut latency = vec![0; paved_judge::histogram::BUCKETS];
    latency[bucket] = n;
    RequestCounts { requests: n, errors, latency }
}

/// The first byte picks an analysis; then length-delimited
/// `JudgeLookRequest`s follow, the rollout's looks in order. As the API
/// does, the rollout's analysis is the first valid look's `spec_yaml`
/// (the pick stands in for it when that look sends none, as the provisioner
/// always sends one); a look with a spec that does not parse is refused.
///
/// Then the rollout is replayed (`ReplayRollout`) from its looks as the
/// analyzer stores them: each decision must be the one the look got.
pub fn judge_look(data: &[u8]) {
    let Some((&pick, mut rest)) = data.split_first() else { return };
    let picked = format!("{BASE}{}", ANALYSES[usize::from(pick) % ANALYSES.len()]);
    let mut judging: Option<(Rollout, u32)> = None;
    let mut stored: Vec<(JudgeLookRequest, String, Vec<u8>)> = Vec::new();
    while let Ok(look) = JudgeLookRequest::decode_length_delimited(&mut rest) {
        if validate(&look).is_err() {
            continue;
        }
        let (rollout, _) = match &mut judging {
            Some(judging) => judging,
            None => {
                let text = if look.spec_yaml.is_empty() { &picked } else { &look.spec_yaml };
                match analysis_of(text, &look.spec_path) {
                    Ok((analysis, decisions)) => judging.insert((Rollout::new(analysis, decisions), decisions)),
                    Err(_) if !look.spec_yaml.is_empty() => continue,
                    Err(e) => panic!("analysis {pick} is not a valid spec: {e}"),
                }
            }
        };
        // As the API: a look must come after the last, in time too.
        if rollout.last().is_some_and(|(last, end)| look.look <= last || millis(look.start_time.as_ref()) < end) {
            continue;
        }
        let fetched = fetched(&look, rollout.analysis());
        let decision = judged(rollout, &look, &fetched);
        stored.push((look, encode_fetched(&fetched), decision.encode_to_vec()));
    }
    let Some((rollout, decisions)) = judging else { return };
    let mut replayed = Rollout::new(rollout.analysis().clone(), decisions);
    for (look, fetched, decision) in &stored {
        let Ok(fetched) = decode_fetched(fetched) else { panic!("stored values do not read back: {fetched}") };
        // Compared encoded: a NaN in a decision is the same NaN either way.
        let again = judged(&mut replayed, look, &fetched).encode_to_vec();
        assert!(again == *decision, "look {} is judged otherwise in a replay", look.look);
    }
}

/// Two looks of a step under the analysis of the spec `text`, valid
/// already: an even one, then one where the canary errs.
pub fn judge_two(text: &str) {
    let Ok((analysis, decisions)) = analysis_of(text, "paved.yaml") else { panic!("a valid spec's analysis is refused") };
    let mut rollout = Rollout::new(analysis.clone(), decisions);
    for (i, errors) in [(1u64, 0u64), (2, 40)] {
        let look = look(i, 0, counts(100, errors, 3), counts(100, 0, 3), i == 2);
        assert!(validate(&look).is_ok(), "a made-up look is invalid");
        judged(&mut rollout, &look, &fetched(&look, &analysis));
    }
}

/// The Prometheus series of the metrics `look` queries, made from its own
/// counts; its baseline weight picks how: as they are, with a NaN or an
/// infinity among them (Prometheus answers both), or a failed query.
fn fetched(look: &JudgeLookRequest, analysis: &Analysis) -> Fetched {
    let odd = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][look.look as usize % 3];
    let series = |c: &Option<RequestCounts>| {
        // Thirds: values a stored decimal must read back to the bit.
        let mut values: Vec<f64> = c.as_ref().map_or_else(Vec::new, |c| c.latency.iter().map(|n| *n as f64 / 3.0).collect());
        if look.baseline_weight % 4 == 1
            && let Some(v) = values.get_mut(look.look as usize % paved_judge::histogram::BUCKETS)
        {
            *v = odd;
        }
        values
    };
    let value = || match look.baseline_weight % 4 {
        3 => Err("no data".to_string()),
        _ => Ok((series(&look.canary), series(&look.baseline))),
    };
    queried(analysis, look).map(|(name, _)| (name.clone(), value())).collect()
}

/// Judges `look` with `fetched`, and checks the decision is one a client
/// can read.
fn judged(rollout: &mut Rollout, look: &JudgeLookRequest, fetched: &Fetched) -> Decision {
    let decision = rollout.judge(look, fetched);
    assert!(Verdict::try_from(decision.verdict).is_ok(), "verdict {} is not a Verdict", decision.verdict);
    assert!(!decision.reason.is_empty(), "a decision without a reason");
    decision
}
