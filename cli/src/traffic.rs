//! `paved traffic`: requests per revision through a workload's proxy —
//! weight, volume, 5xx and latency — to see a rollout's split as it is.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output, revisions,
};
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{GetTrafficMetricsRequest, provisioner_service_client::ProvisionerServiceClient};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct TrafficArgs {
    workload: String,
    #[arg(long)]
    env: String,
    #[arg(long, value_enum, default_value_t)]
    output: output::Format,
    #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
}

pub async fn run(args: TrafficArgs) -> anyhow::Result<ExitCode> {
    print!("{}", traffic(connect(&args.endpoint).await?, &args.workload, &args.env, args.output).await?);
    Ok(ExitCode::SUCCESS)
}

/// Per-revision traffic through a workload's proxy, as a table (revisions
/// by number) or as JSON (by number and id).
pub async fn traffic(channel: AuthChannel, workload: &str, environment: &str, format: output::Format) -> anyhow::Result<String> {
    let request = GetTrafficMetricsRequest { environment: environment.into(), workload: workload.into() };
    let metrics = ProvisionerServiceClient::new(channel.clone()).get_traffic_metrics(request).await.map_err(failed)?.into_inner();
    let numbers = revisions::numbers(&channel, metrics.revisions.iter().map(|r| r.revision_id.as_str())).await?;
    if format == output::Format::Json {
        let rows: Vec<serde_json::Value> = metrics
            .revisions
            .iter()
            .map(|r| {
                serde_json::json!({
                    "revision": numbers.get(&r.revision_id), "revision_id": r.revision_id, "weight": r.weight,
                    "requests": r.requests, "p50_seconds": r.p50_seconds, "p99_seconds": r.p99_seconds,
                })
            })
            .collect();
        return Ok(format!("{}\n", serde_json::to_string_pretty(&rows)?));
    }
    let rows: Vec<Vec<String>> = metrics
        .revisions
        .iter()
        .map(|r| {
            let total: u64 = r.requests.values().sum();
            let errors = r.requests.get("5xx").copied().unwrap_or(0);
            vec![
                revisions::label(&numbers, &r.revision_id),
                format!("{}%", r.weight),
                total.to_string(),
                errors.to_string(),
                format!("{:.1} ms", r.p50_seconds * 1000.0),
                format!("{:.1} ms", r.p99_seconds * 1000.0),
            ]
        })
        .collect();
    Ok(output::table(&["REVISION", "WEIGHT", "REQUESTS", "5XX", "P50", "P99"], &rows))
}
