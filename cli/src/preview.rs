//! `paved preview open|close|list`: preview environments `pr-<n>`, each
//! deployed from a spec (with `paved.preview.yaml` when there is one) and
//! closed by hand or when its time to live runs out.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output, render, rollouts, status,
    ttl::parse_ttl,
};
use anyhow::Context;
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{
    ClosePreviewRequest, ListPreviewsRequest, OpenPreviewRequest, OpenPreviewResponse, Preview,
    provisioner_service_client::ProvisionerServiceClient,
};
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

#[derive(clap::Args)]
pub struct PreviewArgs {
    #[command(subcommand)]
    command: PreviewCommand,
    #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
}

#[derive(clap::Subcommand)]
enum PreviewCommand {
    /// Deploy <dir>/paved.yaml to pr-<n> and follow its rollout.
    Open {
        dir: PathBuf,
        #[arg(long)]
        pr: u32,
        /// Time to live: the preview closes itself after it (e.g. 48h, 30m, 2d).
        #[arg(long, default_value = "48h", value_parser = parse_ttl)]
        ttl: Duration,
        #[arg(long, short, value_enum, default_value_t)]
        output: output::Format,
    },
    /// Destroy everything pr-<n> created.
    Close {
        #[arg(long)]
        pr: u32,
        #[arg(long, short, value_enum, default_value_t)]
        output: output::Format,
    },
    /// Open previews, their workloads and when they expire.
    List {
        #[arg(long, value_enum, default_value_t)]
        output: output::Format,
    },
}

pub async fn run(args: PreviewArgs) -> anyhow::Result<ExitCode> {
    let endpoint = args.endpoint.as_str();
    let channel = connect(endpoint).await?;
    let expires = |p: &Preview| {
        let ms = p.expire_time.as_ref().map(paved_proto::millis_from_timestamp).unwrap_or_default();
        chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
    };
    match args.command {
        PreviewCommand::Open { dir, pr, ttl, output: format } => {
            let people = format == output::Format::Table;
            let opened = open_preview(channel.clone(), &dir, pr, ttl).await?;
            let preview = opened.preview.ok_or_else(|| anyhow::anyhow!("the server returned no preview"))?;
            if people {
                eprintln!("preview {} open until {}", preview.environment, expires(&preview));
            }
            if let Some(rollout) = opened.applied.and_then(|a| a.rollout) {
                let ended = rollouts::follow(channel, &rollout.id, |line| {
                    if people {
                        eprintln!("{line}")
                    }
                })
                .await?;
                if rollouts::state(&ended).short_name() != "promoted" {
                    anyhow::bail!("the preview's rollout was not promoted: {}", ended.message);
                }
            }
            let status = status::status(connect(endpoint).await?).await?;
            let workloads: Vec<_> = status.workloads.iter().filter(|w| w.environment == preview.environment).collect();
            let lines = || workloads.iter().map(|w| format!("{} in {}: http://{}\n", w.name, w.environment, w.endpoint)).collect();
            let json = || {
                let endpoints: Vec<_> = workloads.iter().map(|w| serde_json::json!({ "name": w.name, "endpoint": w.endpoint })).collect();
                let expire_time = output::rfc3339(preview.expire_time.as_ref());
                serde_json::json!({ "pr": pr, "environment": preview.environment, "expire_time": expire_time, "workloads": endpoints })
            };
            output::print(format, lines, json)?;
        }
        PreviewCommand::Close { pr, output: format } => {
            let closed =
                ProvisionerServiceClient::new(channel).close_preview(ClosePreviewRequest { pr: pr as i32 }).await.map_err(failed)?;
            let destroyed = closed.into_inner().workloads;
            let line = || format!("closed pr-{pr}: destroyed {}\n", destroyed.join(", "));
            output::print(format, line, || serde_json::json!({ "pr": pr, "destroyed": destroyed }))?;
        }
        PreviewCommand::List { output: format } => {
            let previews = ProvisionerServiceClient::new(channel).list_previews(ListPreviewsRequest {}).await.map_err(failed)?.into_inner();
            if format == output::Format::Json {
                let rows: Vec<serde_json::Value> = previews
                    .previews
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "pr": p.pr, "environment": p.environment, "workloads": p.workloads,
                            "expire_time": output::rfc3339(p.expire_time.as_ref()), "create_time": output::rfc3339(p.create_time.as_ref()),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> =
                previews.previews.iter().map(|p| vec![p.environment.clone(), p.workloads.join(","), expires(p)]).collect();
            print!("{}", output::table(&["PREVIEW", "WORKLOADS", "EXPIRES"], &rows));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `paved preview open`: renders `<dir>` for `pr-<pr>` (with
/// `paved.preview.yaml` when there is one) and deploys it there.
pub async fn open_preview(channel: AuthChannel, dir: &Path, pr: u32, ttl: Duration) -> anyhow::Result<OpenPreviewResponse> {
    let environment = format!("pr-{pr}");
    let (rendered, file) = render::render(dir, &environment)?;
    // The deprecated field too, for a platform older than `ttl`.
    #[allow(deprecated)]
    let request = OpenPreviewRequest {
        pr: i32::try_from(pr).context("pr is too large")?,
        ttl: Some(paved_proto::duration_from_std(ttl)),
        ttl_seconds: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        spec_yaml: rendered.text,
        spec_path: file.display().to_string(),
        request_id: uuid::Uuid::new_v4().to_string(),
        spec: None,
    };
    Ok(ProvisionerServiceClient::new(channel).open_preview(request).await.map_err(failed)?.into_inner())
}
