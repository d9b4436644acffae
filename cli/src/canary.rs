//! `paved canary explain|replay`: the canary analyzer's decision records,
//! in words and numbers.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
};
use anyhow::Context;
use paved_grpc::client::AuthChannel;
use paved_proto::canary_analyzer::v1::{
    Check, Decision, ExplainRolloutRequest, ReplayRolloutRequest, Verdict, canary_analyzer_service_client::CanaryAnalyzerServiceClient,
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
    Explain { rollout: String },
    /// Judge a rollout's recorded looks again; exits 1 when a look fails.
    Replay {
        rollout: String,
        /// A workload spec whose `analysis` replaces the recorded one.
        #[arg(long)]
        spec: Option<PathBuf>,
    },
}

pub async fn run(args: CanaryArgs) -> anyhow::Result<ExitCode> {
    let channel = connect(&args.endpoint).await?;
    match args.command {
        CanaryCommand::Explain { rollout } => print!("{}", explain_rollout(channel, &rollout).await?),
        CanaryCommand::Replay { rollout, spec } => {
            let (report, failed) = replay(channel, &rollout, spec.as_deref()).await?;
            print!("{report}");
            if failed {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Why a rollout went as it did: per step, its looks and the checks of the
/// look that decided it.
pub async fn explain_rollout(channel: AuthChannel, rollout_id: &str) -> anyhow::Result<String> {
    let request = ExplainRolloutRequest { rollout_id: rollout_id.to_string() };
    let decisions = CanaryAnalyzerServiceClient::new(channel).explain_rollout(request).await.map_err(failed)?.into_inner().decisions;
    Ok(describe(rollout_id, &decisions))
}

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
/// workload spec file) or as recorded. Returns the report and whether the
/// replay found a failure.
pub async fn replay(channel: AuthChannel, rollout_id: &str, spec: Option<&Path>) -> anyhow::Result<(String, bool)> {
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
    let replayed = CanaryAnalyzerServiceClient::new(channel).replay_rollout(request).await.map_err(failed)?.into_inner();
    let rows: Vec<Vec<String>> = replayed
        .decisions
        .iter()
        .filter(|d| d.verdict() != Verdict::Continue)
        .map(|d| vec![d.look.to_string(), (d.step + 1).to_string(), d.verdict().short_name().to_string(), d.reason.clone()])
        .collect();
    let mut out = crate::output::table(&["LOOK", "STEP", "VERDICT", "REASON"], &rows);
    let failed = replayed.first_failure != 0;
    let under = if spec.is_some() { "this analysis" } else { "the analysis recorded" };
    match replayed.decisions.iter().find(|d| d.look == replayed.first_failure && failed) {
        Some(d) => {
            let _ = writeln!(out, "under {under}, rollout {rollout_id} fails at look {} (step {}): {}", d.look, d.step + 1, d.reason);
        }
        None => {
            let _ = writeln!(out, "under {under}, no look of rollout {rollout_id} fails ({} looks judged)", replayed.decisions.len());
        }
    }
    Ok((out, failed))
}
