//! `paved deploy`: a spec resolved and validated here, applied by the
//! provisioner, and its rollout followed to the end.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output::Format,
    render::render,
    rollouts,
};
use anyhow::Context;
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{ApplyWorkloadRequest, Revision, Rollout, provisioner_service_client::ProvisionerServiceClient};
use paved_telemetry::propagation::Lineage;
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};
use tracing::Instrument;

#[derive(clap::Args)]
pub struct DeployArgs {
    /// A directory with a paved.yaml, or the spec file itself.
    dir: PathBuf,
    #[arg(long)]
    env: String,
    #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
    /// Return at once with the rollout's id instead of following it.
    #[arg(long)]
    detach: bool,
    #[arg(long, short, value_enum, default_value_t)]
    output: Format,
}

pub async fn run(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let DeployArgs { dir, env, endpoint, detach, output } = args;
    let channel = connect(&endpoint).await?;
    let json = output == Format::Json;
    let deployed = deploy(channel, &dir, &env, !detach, |line| {
        if !json {
            eprintln!("{line}");
        }
    })
    .await?;
    let revision = &deployed.revision;
    let (rollout_id, state) = match &deployed.rollout {
        Some(r) => (r.id.clone(), rollouts::state(r).short_name()),
        None => (String::new(), "unchanged"),
    };
    if json {
        let out = serde_json::json!({ "revision_id": revision.id, "revision": revision.number, "rollout_id": rollout_id, "state": state });
        println!("{out}");
    } else if detach && deployed.changed {
        println!("{rollout_id}");
    } else {
        println!("revision {} of {}: {state}", revision.number, revision.workload);
    }
    Ok(ExitCode::SUCCESS)
}

/// What a deploy did: the revision, and the rollout it started (as it ended
/// when followed).
#[derive(Debug)]
pub struct Deployed {
    pub revision: Revision,
    pub rollout: Option<Rollout>,
    pub changed: bool,
}

/// Resolves and validates the spec locally (so a bad spec fails with its
/// file, line and column before anything is sent), applies it, and, when
/// `follow`, follows its rollout until it ends.
pub async fn deploy(
    channel: AuthChannel,
    dir: &Path,
    environment: &str,
    follow: bool,
    progress: impl FnMut(&str),
) -> anyhow::Result<Deployed> {
    let (rendered, file) = render(dir, environment)?;
    let span = deploy_span(environment, &rendered.spec);
    let file = file.display().to_string();
    apply(channel, environment, rendered.text, &file, &rendered.spec.name, follow, progress).instrument(span).await
}

/// The root span of a deploy's trace, carrying what it deploys to every
/// service its calls reach; the revision is added once the apply names it.
fn deploy_span(environment: &str, spec: &paved_spec::WorkloadSpec) -> tracing::Span {
    let empty = tracing::field::Empty;
    let span = tracing::info_span!("paved deploy", paved.workload = empty, paved.revision = empty, paved.artifact_digest = empty);
    let lineage = Lineage {
        workload: format!("{environment}/{}", spec.name),
        artifact_digest: spec.artifact_digest().unwrap_or_default().to_string(),
        ..Lineage::default()
    };
    lineage.carry(&span);
    span
}

/// Applies a spec's text (`spec_path` where it was read from, or empty),
/// and, when `follow`, follows its rollout until it ends: promoted, or an
/// error saying how it ended.
pub async fn apply(
    channel: AuthChannel,
    environment: &str,
    text: String,
    spec_path: &str,
    name: &str,
    follow: bool,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<Deployed> {
    let mut client = ProvisionerServiceClient::new(channel.clone());
    let applied = client
        .apply_workload(ApplyWorkloadRequest {
            environment: environment.to_string(),
            spec_yaml: text,
            spec_path: spec_path.to_string(),
            request_id: uuid::Uuid::new_v4().to_string(),
            spec: None,
        })
        .await
        .map_err(failed)?
        .into_inner();
    let revision = applied.revision.context("the server returned no revision")?;
    for warning in &applied.policy_warnings {
        progress(&format!("policy warns: {warning}"));
    }
    let mut deployed = Deployed { revision, rollout: applied.rollout, changed: applied.changed };
    let number = deployed.revision.number;
    match (&deployed.rollout, applied.changed) {
        (None, _) => {
            progress(&format!("{name} in {environment} already runs this spec (revision {number}); nothing to do"));
            return Ok(deployed);
        }
        (Some(r), false) => progress(&format!("{name} in {environment}: revision {number} is already rolling out (rollout {})", r.id)),
        (Some(r), true) => progress(&format!("deploying {name} revision {number} to {environment} (rollout {})", r.id)),
    }
    if !follow {
        return Ok(deployed);
    }
    let id = deployed.rollout.as_ref().map(|r| r.id.clone()).unwrap_or_default();
    // Following it carries the revision too.
    let empty = tracing::field::Empty;
    let span = tracing::info_span!("follow rollout", paved.workload = empty, paved.revision = empty, paved.artifact_digest = empty);
    let lineage = Lineage { revision: deployed.revision.id.clone(), ..Lineage::default() };
    lineage.record(&tracing::Span::current());
    lineage.carry(&span);
    let ended = rollouts::follow(channel, &id, progress).instrument(span).await?;
    let state = rollouts::state(&ended);
    deployed.rollout = Some(ended.clone());
    if state != paved_proto::provisioner::v1::RolloutState::Promoted {
        anyhow::bail!("revision {number} of {name} was not promoted: rollout {} {}: {}", ended.id, state.short_name(), ended.message);
    }
    Ok(deployed)
}
