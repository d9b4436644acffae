//! `paved traffic`: requests per revision through a workload's proxy —
//! weight, volume, 5xx and latency — to see a rollout's split as it is.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output,
};
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{GetTrafficMetricsRequest, provisioner_service_client::ProvisionerServiceClient};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct TrafficArgs {
    workload: String,
    #[arg(long)]
    env: String,
    #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
}

pub async fn run(args: TrafficArgs) -> anyhow::Result<ExitCode> {
    print!("{}", traffic(connect(&args.endpoint).await?, &args.workload, &args.env).await?);
    Ok(ExitCode::SUCCESS)
}

/// Per-revision traffic through a workload's proxy, as a table.
pub async fn traffic(channel: AuthChannel, workload: &str, environment: &str) -> anyhow::Result<String> {
    let request = GetTrafficMetricsRequest { environment: environment.into(), workload: workload.into() };
    let metrics = ProvisionerServiceClient::new(channel).get_traffic_metrics(request).await.map_err(failed)?.into_inner();
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
    Ok(output::table(&["REVISION", "WEIGHT", "REQUESTS", "5XX", "P50", "P99"], &rows))
}
