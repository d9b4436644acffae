//! `paved rollout …` and `paved rollback`: following and steering rollouts.

use crate::commands::explain;
use anyhow::Context;
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{
    AbortRolloutRequest, GetRolloutRequest, GetTrafficMetricsRequest, ListRolloutsRequest, PauseRolloutRequest, PromoteRolloutRequest,
    ResumeRolloutRequest, RollbackWorkloadRequest, RollbackWorkloadResponse, Rollout, RolloutStage, RolloutState, WatchRolloutRequest,
    provisioner_service_client::ProvisionerServiceClient,
};

fn stage(r: i32) -> &'static str {
    RolloutStage::try_from(r).unwrap_or_default().short_name()
}

pub fn state(r: &Rollout) -> RolloutState {
    RolloutState::try_from(r.state).unwrap_or_default()
}

fn client(channel: AuthChannel) -> ProvisionerServiceClient<AuthChannel> {
    ProvisionerServiceClient::new(channel)
}

fn failed(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", explain(&s))
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

pub async fn rollback(channel: AuthChannel, workload: &str, environment: &str) -> anyhow::Result<RollbackWorkloadResponse> {
    let request = RollbackWorkloadRequest { environment: environment.into(), workload: workload.into() };
    Ok(client(channel).rollback_workload(request).await.map_err(failed)?.into_inner())
}

/// A rollout for people: its state, then its transitions.
pub fn describe(r: &Rollout) -> String {
    let mut out = format!(
        "rollout {}\n  workload   {} ({})\n  revision   {}\n  stable     {}\n  state      {} at stage {}, {}% of traffic on the new revision\n  steps      {:?}\n\n",
        r.id,
        r.workload,
        r.environment,
        r.revision_id,
        if r.stable_revision_id.is_empty() { "(none: first revision)" } else { &r.stable_revision_id },
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
    out.push_str(&crate::output::table(&["TIME", "STAGE", "STATE", "WEIGHT", "MESSAGE"], &rows));
    out
}

/// Per-revision traffic through a workload's proxy, as a table.
pub async fn traffic(channel: AuthChannel, workload: &str, environment: &str) -> anyhow::Result<String> {
    let request = GetTrafficMetricsRequest { environment: environment.into(), workload: workload.into() };
    let metrics = client(channel).get_traffic_metrics(request).await.map_err(failed)?.into_inner();
    let rows: Vec<Vec<String>> = metrics
        .revisions
        .iter()
        .map(|r| {
            let total: u64 = r.requests.values().sum();
            let errors = r.requests.get("5xx").copied().unwrap_or(0);
            vec![
                r.revision_id.clone(),
                format!("{}%", r.weight),
                total.to_string(),
                errors.to_string(),
                format!("{:.1} ms", r.p50_seconds * 1000.0),
                format!("{:.1} ms", r.p99_seconds * 1000.0),
            ]
        })
        .collect();
    Ok(crate::output::table(&["REVISION", "WEIGHT", "REQUESTS", "5XX", "P50", "P99"], &rows))
}
