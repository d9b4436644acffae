//! `paved rollout get|watch|list|pause|resume|abort|promote`: following
//! and steering rollouts.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, explain, failed},
    output, revisions,
};
use anyhow::Context;
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{
    AbortRolloutRequest, GetRolloutRequest, ListRolloutsRequest, PauseRolloutRequest, PromoteRolloutRequest, ResumeRolloutRequest, Rollout,
    RolloutStage, RolloutState, WatchRolloutRequest, provisioner_service_client::ProvisionerServiceClient,
};
use std::collections::HashMap;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    command: RolloutCommand,
    #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
    /// A table (or lines) for people, or JSON for scripts: the rollout as
    /// `rollout list` shows each (with its stage, stable revision and
    /// history for `get`).
    #[arg(long, short, global = true, value_enum, default_value_t)]
    output: output::Format,
}

#[derive(clap::Subcommand)]
enum RolloutCommand {
    /// A rollout's state and transitions.
    Get { id: String },
    /// Follow a rollout until it ends; exits 0 when promoted.
    Watch { id: String },
    /// A workload's rollouts, newest first.
    List {
        workload: String,
        #[arg(long)]
        env: String,
    },
    /// Hold the current traffic step.
    Pause { id: String },
    /// Continue a paused rollout.
    Resume { id: String },
    /// Stop the rollout; all traffic back to the stable revision.
    Abort { id: String },
    /// Skip the remaining steps: the new revision takes all traffic now.
    Promote { id: String },
}

pub async fn run(args: RolloutArgs) -> anyhow::Result<ExitCode> {
    let channel = connect(&args.endpoint).await?;
    let format = args.output;
    match args.command {
        RolloutCommand::Get { id } => {
            let rollout = get(channel.clone(), &id).await?;
            let numbers = revisions::numbers(&channel, [rollout.revision_id.as_str(), rollout.stable_revision_id.as_str()]).await?;
            output::print(format, || describe(&rollout, &numbers), || detail(&rollout, &numbers))?;
        }
        RolloutCommand::Watch { id } => {
            let lines = format == output::Format::Table;
            let ended = follow(channel.clone(), &id, |line| {
                if lines {
                    eprintln!("{line}")
                }
            })
            .await?;
            let numbers = revisions::numbers(&channel, [ended.revision_id.as_str()]).await?;
            print_state(format, &ended, &numbers)?;
            if state(&ended) != RolloutState::Promoted {
                return Ok(ExitCode::FAILURE);
            }
        }
        RolloutCommand::List { workload, env } => {
            let rollouts = list(channel.clone(), &workload, &env).await?;
            let numbers = revisions::numbers(&channel, rollouts.iter().map(|r| r.revision_id.as_str())).await?;
            if format == output::Format::Json {
                let rows: Vec<serde_json::Value> = rollouts.iter().map(|r| row(r, &numbers)).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = rollouts
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        revisions::label(&numbers, &r.revision_id),
                        state(r).short_name().to_string(),
                        format!("{}%", r.weight),
                        r.message.clone(),
                    ]
                })
                .collect();
            print!("{}", output::table(&["ROLLOUT", "REVISION", "STATE", "WEIGHT", "MESSAGE"], &rows));
        }
        RolloutCommand::Pause { id } => steer(format, &channel, &id, Operation::Pause).await?,
        RolloutCommand::Resume { id } => steer(format, &channel, &id, Operation::Resume).await?,
        RolloutCommand::Abort { id } => steer(format, &channel, &id, Operation::Abort).await?,
        RolloutCommand::Promote { id } => steer(format, &channel, &id, Operation::Promote).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn steer(format: output::Format, channel: &AuthChannel, id: &str, operation: Operation) -> anyhow::Result<()> {
    let rollout = operate(channel.clone(), id, operation).await?;
    let numbers = revisions::numbers(channel, [rollout.revision_id.as_str()]).await?;
    print_state(format, &rollout, &numbers)
}

fn print_state(format: output::Format, rollout: &Rollout, numbers: &HashMap<String, i64>) -> anyhow::Result<()> {
    let line = || format!("rollout {}: {} ({})\n", rollout.id, state(rollout).short_name(), rollout.message);
    output::print(format, line, || row(rollout, numbers))
}

/// A rollout for scripts, as `rollout list` shows each.
fn row(r: &Rollout, numbers: &HashMap<String, i64>) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "revision": numbers.get(&r.revision_id), "revision_id": r.revision_id,
        "state": state(r).short_name(), "weight": r.weight, "message": r.message,
        "create_time": output::rfc3339(r.create_time.as_ref()),
    })
}

/// [`row`], with what `rollout get` shows besides: the workload, the stage,
/// the stable revision, the steps and every transition.
fn detail(r: &Rollout, numbers: &HashMap<String, i64>) -> serde_json::Value {
    let mut out = row(r, numbers);
    let history: Vec<serde_json::Value> = r
        .history
        .iter()
        .map(|t| {
            serde_json::json!({
                "time": t.time.as_ref().and_then(output::rfc3339_millis), "stage": stage(t.stage),
                "state": RolloutState::try_from(t.state).unwrap_or_default().short_name(), "weight": t.weight, "message": t.message,
            })
        })
        .collect();
    let extra = serde_json::json!({
        "workload": r.workload, "environment": r.environment, "stage": stage(r.stage),
        "stable_revision": numbers.get(&r.stable_revision_id), "stable_revision_id": r.stable_revision_id,
        "steps": r.steps, "history": history,
    });
    if let (Some(out), Some(extra)) = (out.as_object_mut(), extra.as_object()) {
        out.extend(extra.clone());
    }
    out
}

fn stage(r: i32) -> &'static str {
    RolloutStage::try_from(r).unwrap_or_default().short_name()
}

pub fn state(r: &Rollout) -> RolloutState {
    RolloutState::try_from(r.state).unwrap_or_default()
}

fn client(channel: AuthChannel) -> ProvisionerServiceClient<AuthChannel> {
    ProvisionerServiceClient::new(channel)
}

/// Follows a rollout until it ends, passing each new transition to
/// `progress` as a line; returns the rollout as it ended.
pub async fn follow(channel: AuthChannel, id: &str, mut progress: impl FnMut(&str)) -> anyhow::Result<Rollout> {
    let mut stream = client(channel).watch_rollout(WatchRolloutRequest { id: id.to_string() }).await.map_err(failed)?.into_inner();
    let mut shown = 0;
    let mut last = None;
    while let Some(update) = stream.message().await.map_err(|s| anyhow::anyhow!("watching rollout {id}: {}", explain(&s)))? {
        let Some(rollout) = update.rollout else { continue };
        for t in rollout.history.iter().skip(shown) {
            progress(&format!("  {:<9} {:>3}%  {}", stage(t.stage), t.weight, t.message));
        }
        shown = rollout.history.len();
        last = Some(rollout);
    }
    let rollout = last.context("the platform sent no rollout")?;
    if matches!(state(&rollout), RolloutState::Running | RolloutState::Paused) {
        anyhow::bail!("the platform stopped sending updates of rollout {id} before it ended");
    }
    Ok(rollout)
}

pub async fn get(channel: AuthChannel, id: &str) -> anyhow::Result<Rollout> {
    let r = client(channel).get_rollout(GetRolloutRequest { id: id.to_string() }).await.map_err(failed)?.into_inner();
    r.rollout.context("the server returned no rollout")
}

pub async fn list(channel: AuthChannel, workload: &str, environment: &str) -> anyhow::Result<Vec<Rollout>> {
    let request =
        ListRolloutsRequest { environment: environment.into(), workload: workload.into(), page_size: 20, page_token: String::new() };
    Ok(client(channel).list_rollouts(request).await.map_err(failed)?.into_inner().rollouts)
}

/// The operations that steer a rollout.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Operation {
    Pause,
    Resume,
    Abort,
    Promote,
}

pub async fn operate(channel: AuthChannel, id: &str, operation: Operation) -> anyhow::Result<Rollout> {
    let mut c = client(channel);
    let id = id.to_string();
    let rollout = match operation {
        Operation::Pause => c.pause_rollout(PauseRolloutRequest { id }).await.map_err(failed)?.into_inner().rollout,
        Operation::Resume => c.resume_rollout(ResumeRolloutRequest { id }).await.map_err(failed)?.into_inner().rollout,
        Operation::Abort => c.abort_rollout(AbortRolloutRequest { id }).await.map_err(failed)?.into_inner().rollout,
        Operation::Promote => c.promote_rollout(PromoteRolloutRequest { id }).await.map_err(failed)?.into_inner().rollout,
    };
    rollout.context("the server returned no rollout")
}

/// A rollout for people: its state (revisions by number: `numbers`, see
/// [`revisions::numbers`]), then its transitions.
pub fn describe(r: &Rollout, numbers: &HashMap<String, i64>) -> String {
    let stable = if r.stable_revision_id.is_empty() {
        "(none: first revision)".to_string()
    } else {
        revisions::label(numbers, &r.stable_revision_id)
    };
    let mut out = format!(
        "rollout {}\n  workload   {} ({})\n  revision   {}\n  stable     {}\n  state      {} at stage {}, {}% of traffic on the new revision\n  steps      {:?}\n\n",
        r.id,
        r.workload,
        r.environment,
        revisions::label(numbers, &r.revision_id),
        stable,
        state(r).short_name(),
        stage(r.stage),
        r.weight,
        r.steps,
    );
    let rows: Vec<Vec<String>> = r
        .history
        .iter()
        .map(|t| {
            let time = t.time.as_ref().map(paved_proto::millis_from_timestamp).unwrap_or_default();
            let time = chrono::DateTime::from_timestamp_millis(time).map(|t| t.format("%H:%M:%S%.3f").to_string()).unwrap_or_default();
            vec![
                time,
                stage(t.stage).to_string(),
                RolloutState::try_from(t.state).unwrap_or_default().short_name().to_string(),
                format!("{}%", t.weight),
                t.message.clone(),
            ]
        })
        .collect();
    out.push_str(&output::table(&["TIME", "STAGE", "STATE", "WEIGHT", "MESSAGE"], &rows));
    out
}
