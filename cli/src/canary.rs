//! `paved canary explain|replay`: the canary analyzer's decision records,
//! in words and numbers.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output::Format,
};
use anyhow::Context;
use paved_grpc::client::AuthChannel;
use paved_proto::canary_analyzer::v1::{
    Check, Decision, ExplainRolloutRequest, ReplayRolloutRequest, ReplayRolloutResponse, Verdict,
    canary_analyzer_service_client::CanaryAnalyzerServiceClient,
};
use std::{
    fmt::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

#[derive(clap::Args)]
pub struct CanaryArgs {
    #[command(subcommand)]
    command: CanaryCommand,
    #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
}

#[derive(clap::Subcommand)]
enum CanaryCommand {
    /// Why each step of a rollout passed, failed or was extended: every
    /// judgement's checks, statistics, bounds and effect sizes.
    Explain {
        rollout: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Format,
    },
    /// Judge a rollout's recorded looks again; exits 1 when a look fails.
    Replay {
        rollout: String,
        /// A workload spec whose `analysis` replaces the recorded one.
        #[arg(long)]
        spec: Option<PathBuf>,
        #[arg(long, short, value_enum, default_value_t)]
        output: Format,
    },
}

pub async fn run(args: CanaryArgs) -> anyhow::Result<ExitCode> {
    let channel = connect(&args.endpoint).await?;
    match args.command {
        CanaryCommand::Explain { rollout, output } => {
            let decisions = decisions(channel, &rollout).await?;
            let json =
                || serde_json::json!({ "rollout_id": rollout, "decisions": decisions.iter().map(decision_json).collect::<Vec<_>>() });
            crate::output::print(output, || describe(&rollout, &decisions), json)?;
        }
        CanaryCommand::Replay { rollout, spec, output } => {
            let replayed = replayed(channel, &rollout, spec.as_deref()).await?;
            let failed = replayed.first_failure != 0;
            let json = || {
                serde_json::json!({
                    "rollout_id": rollout, "failed": failed, "first_failure": failed.then_some(replayed.first_failure),
                    "decisions": replayed.decisions.iter().map(decision_json).collect::<Vec<_>>(),
                })
            };
            crate::output::print(output, || replay_report(&rollout, spec.is_some(), &replayed), json)?;
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A rollout's decision records, look by look.
async fn decisions(channel: AuthChannel, rollout_id: &str) -> anyhow::Result<Vec<Decision>> {
    let request = ExplainRolloutRequest { rollout_id: rollout_id.to_string() };
    Ok(CanaryAnalyzerServiceClient::new(channel).explain_rollout(request).await.map_err(failed)?.into_inner().decisions)
}

/// One look for scripts: its step counted from 1 as people see it, every
/// check with its numbers (a number that is not finite is `null`).
fn decision_json(d: &Decision) -> serde_json::Value {
    let checks: Vec<serde_json::Value> = d
        .checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "metric": c.metric, "judge": c.judge, "outcome": c.outcome, "message": c.message,
                "canary_value": c.canary_value, "baseline_value": c.baseline_value, "lower": c.lower, "upper": c.upper,
                "statistic": c.statistic, "threshold": c.threshold, "effect": c.effect, "tolerated": c.tolerated,
                "detectable": c.detectable,
            })
        })
        .collect();
    let time = |t: Option<&prost_types::Timestamp>| t.and_then(crate::output::rfc3339_millis);
    serde_json::json!({
        "look": d.look, "step": d.step + 1, "weight": d.weight, "verdict": d.verdict().short_name(), "reason": d.reason,
        "start_time": time(d.start_time.as_ref()), "end_time": time(d.end_time.as_ref()), "interval_over": d.interval_over,
        "canary_requests": d.canary_requests, "baseline_requests": d.baseline_requests, "detectable_ratio": d.detectable_ratio,
        "checks": checks,
    })
}

/// Why a rollout went as it did: per step, its looks and the checks of the
/// look that decided it.
pub fn describe(rollout_id: &str, decisions: &[Decision]) -> String {
    let mut out = format!("rollout {rollout_id}: {} looks judged\n", decisions.len());
    let start = decisions.first().map_or(0, |d| millis(d.start_time.as_ref()));
    let mut i = 0;
    while i < decisions.len() {
        let step = decisions[i].step;
        let looks: Vec<&Decision> = decisions[i..].iter().take_while(|d| d.step == step).collect();
        i += looks.len();
        let Some(last) = looks.last() else { break };
        let _ = writeln!(
            out,
            "\nstep {} ({}% of traffic): {} looks, {} canary and {} baseline requests",
            step + 1,
            last.weight,
            looks.len(),
            last.canary_requests,
            last.baseline_requests
        );
        for d in looks.iter().filter(|d| d.verdict() != Verdict::Continue) {
            let at = (millis(d.end_time.as_ref()) - start) as f64 / 1000.0;
            let _ = writeln!(out, "  at +{at:.1}s: {}: {}", d.verdict().short_name(), d.reason);
        }
        if last.verdict() == Verdict::Continue {
            let _ = writeln!(out, "  still held: {}", last.reason);
        }
        for c in &last.checks {
            let _ = writeln!(out, "    {}", check(c));
        }
    }
    out
}

/// One check in a line: metric, judge, outcome, then its numbers.
fn check(c: &Check) -> String {
    let mut numbers = Vec::new();
    match c.judge.as_str() {
        "sequential" => {
            numbers.push(format!("likelihood ratio {} (fails at ≥ {:.0})", compact(c.statistic), c.threshold));
            if c.effect > 0.0 {
                numbers.push(format!("rate ratio {:.2}", c.effect));
            }
            if c.detectable > 0.0 {
                numbers.push(format!("could show ≥ {:.2}×", c.detectable));
            }
            if c.tolerated > 0.0 {
                numbers.push(format!("matters at {:.2}×", c.tolerated));
            }
        }
        "kayenta" if c.upper != 0.0 || c.lower != 0.0 => {
            numbers.push(format!(
                "shift interval [{}, {}], p {:.4}, mean ratio {:.3}",
                compact(c.lower),
                compact(c.upper),
                c.statistic,
                c.effect
            ));
        }
        "slo" => numbers.push(format!("{} against {}", compact(c.statistic), compact(c.threshold))),
        _ => {}
    }
    let numbers = if numbers.is_empty() { String::new() } else { format!(" [{}]", numbers.join("; ")) };
    format!("{:<10} {:<10} {:<12} {}{numbers}", c.metric, c.judge, c.outcome, c.message)
}

fn compact(v: f64) -> String {
    if !v.is_finite() || v.abs() >= 1e6 { format!("{v:.2e}") } else { format!("{v:.3}") }
}

fn millis(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, paved_proto::millis_from_timestamp)
}

/// Judges a rollout's stored looks again, with the analysis of `spec` (a
/// workload spec file) or as recorded.
async fn replayed(channel: AuthChannel, rollout_id: &str, spec: Option<&Path>) -> anyhow::Result<ReplayRolloutResponse> {
    let (spec_yaml, spec_path) = match spec {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
            // Checked here, so a bad spec fails with its line and column first.
            paved_spec::parse(&text, &path.display().to_string())?;
            (text, path.display().to_string())
        }
        None => Default::default(),
    };
    let request = ReplayRolloutRequest { rollout_id: rollout_id.to_string(), spec_yaml, spec_path };
    Ok(CanaryAnalyzerServiceClient::new(channel).replay_rollout(request).await.map_err(failed)?.into_inner())
}

/// The looks that decided something, then whether (and where) it fails.
fn replay_report(rollout_id: &str, own_spec: bool, replayed: &ReplayRolloutResponse) -> String {
    let rows: Vec<Vec<String>> = replayed
        .decisions
        .iter()
        .filter(|d| d.verdict() != Verdict::Continue)
        .map(|d| vec![d.look.to_string(), (d.step + 1).to_string(), d.verdict().short_name().to_string(), d.reason.clone()])
        .collect();
    let mut out = crate::output::table(&["LOOK", "STEP", "VERDICT", "REASON"], &rows);
    let failed = replayed.first_failure != 0;
    let under = if own_spec { "this analysis" } else { "the analysis recorded" };
    match replayed.decisions.iter().find(|d| d.look == replayed.first_failure && failed) {
        Some(d) => {
            let _ = writeln!(out, "under {under}, rollout {rollout_id} fails at look {} (step {}): {}", d.look, d.step + 1, d.reason);
        }
        None => {
            let _ = writeln!(out, "under {under}, no look of rollout {rollout_id} fails ({} looks judged)", replayed.decisions.len());
        }
    }
    out
}
