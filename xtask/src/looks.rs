//! `cargo xtask bench looks`: what judging one look costs early and late
//! in a long rollout. The canary analyzer keeps a rollout's running totals
//! (`paved_canary_analyzer::judgement::Rollout`), so a look costs the same
//! at look 10 as at look 5,000; the baseline, measured in the same run, is
//! judging the look from the whole history again, as each look did before.
//!
//! Looks of 1 s, 400 requests a side, 0.5% errors, latencies spread over
//! the histogram; the default analysis (error rate and p99, sequential and
//! SLO judges). Target: the cost at look 5,000 within 1.5× of look 10's.

use crate::measure::median;
use paved_canary_analyzer::judgement::{self, Fetched, Rollout};
use paved_proto::{
    canary_analyzer::v1::{JudgeLookRequest, RequestCounts},
    timestamp_from_millis,
};
use std::time::{Duration, Instant};

const SPEC: &str = "name: web\ncommand: [hello]\n";
/// Looks judged at each point, for a stable median.
const SAMPLES: usize = 200;

fn look(i: u64) -> JudgeLookRequest {
    let counts = |salt: u64| {
        let mut latency = vec![0u64; paved_judge::histogram::BUCKETS];
        for r in 0..400u64 {
            let ms = 1.0 + ((r * 7919 + i * 104_729 + salt) % 97) as f64;
            latency[paved_judge::histogram::bucket_of(ms / 1000.0)] += 1;
        }
        RequestCounts { requests: 400, errors: u64::from((i + salt).is_multiple_of(200)) * 2, latency }
    };
    let ms = i64::try_from(i).unwrap_or(i64::MAX) * 1000;
    JudgeLookRequest {
        rollout_id: "bench".into(),
        baseline_revision_id: "stable".into(),
        look: i,
        weight: 20,
        baseline_weight: 20,
        start_time: Some(timestamp_from_millis(ms - 1000)),
        end_time: Some(timestamp_from_millis(ms)),
        step_start_time: Some(timestamp_from_millis((ms / 60_000) * 60_000)),
        step: u32::try_from(i / 60).unwrap_or(u32::MAX),
        canary: Some(counts(1)),
        baseline: Some(counts(2)),
        spec_yaml: SPEC.into(),
        ..JudgeLookRequest::default()
    }
}

/// (incremental, whole history) median cost of judging look `at`.
fn cost_at(analysis: &paved_spec::Analysis, at: u64) -> (Duration, Duration) {
    let looks: Vec<JudgeLookRequest> = (1..=at + SAMPLES as u64).map(look).collect();
    let fetched = Fetched::new();
    let mut rollout = Rollout::new(analysis.clone(), 5);
    for l in &looks[..at as usize - 1] {
        rollout.observe(l);
    }
    let mut incremental = Vec::with_capacity(SAMPLES);
    let mut whole = Vec::with_capacity(SAMPLES);
    for k in 0..SAMPLES {
        let now = &looks[at as usize - 1 + k];
        let start = Instant::now();
        std::hint::black_box(rollout.judge(now, &fetched));
        incremental.push(start.elapsed());
        // The whole history is slow at look 5,000: a few samples suffice.
        if k < 15 {
            let start = Instant::now();
            std::hint::black_box(judgement::judge(analysis, &looks[..at as usize + k], &fetched, 5));
            whole.push(start.elapsed());
        }
    }
    (median(incremental), median(whole))
}

pub fn run() -> anyhow::Result<()> {
    let analysis = paved_spec::parse(SPEC, "paved.yaml").map_err(|e| anyhow::anyhow!("{e}"))?.analysis();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (early, early_whole) = cost_at(&analysis, 10);
    let (late, late_whole) = cost_at(&analysis, 5000);
    let ratio = late.as_secs_f64() / early.as_secs_f64();
    println!("bench looks: judging one look of a rollout (default analysis), median of {SAMPLES}");
    println!("  running totals: look 10 {:.1} µs, look 5,000 {:.1} µs: {ratio:.2}× (target ≤ 1.5×)", us(early), us(late));
    println!(
        "  baseline, the whole history judged again (as before): look 10 {:.1} µs, look 5,000 {:.1} µs: {:.0}×",
        us(early_whole),
        us(late_whole),
        late_whole.as_secs_f64() / early_whole.as_secs_f64()
    );
    println!(
        "  at look 5,000 the running totals take {:.1}% of the whole history's time",
        100.0 * late.as_secs_f64() / late_whole.as_secs_f64()
    );
    if ratio > 1.5 {
        anyhow::bail!("a look at 5,000 costs {ratio:.2}× a look at 10");
    }
    Ok(())
}
