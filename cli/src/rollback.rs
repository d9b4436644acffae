//! `paved rollback`: all of a workload's traffic back on its last
//! known-good revision at once, without a rollout.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    revisions,
};
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{
    RollbackWorkloadRequest, RollbackWorkloadResponse, provisioner_service_client::ProvisionerServiceClient,
};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RollbackArgs {
    workload: String,
    #[arg(long)]
    env: String,
    #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
    #[arg(long, short, value_enum, default_value_t)]
    output: crate::output::Format,
}

pub async fn run(args: RollbackArgs) -> anyhow::Result<ExitCode> {
    let RollbackArgs { workload, env, endpoint, output } = args;
    let started = std::time::Instant::now();
    let channel = connect(&endpoint).await?;
    let done = rollback(channel.clone(), &workload, &env).await?;
    let took = started.elapsed().as_millis();
    let numbers = revisions::numbers(&channel, [done.revision_id.as_str()]).await?;
    crate::output::print(
        output,
        || format!("{workload} in {env}: all traffic on revision {} ({took} ms)\n", revisions::label(&numbers, &done.revision_id)),
        || {
            serde_json::json!({
                "workload": workload, "environment": env, "revision": numbers.get(&done.revision_id),
                "revision_id": done.revision_id, "took_ms": took,
            })
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

pub async fn rollback(channel: AuthChannel, workload: &str, environment: &str) -> anyhow::Result<RollbackWorkloadResponse> {
    let request = RollbackWorkloadRequest { environment: environment.into(), workload: workload.into() };
    Ok(ProvisionerServiceClient::new(channel).rollback_workload(request).await.map_err(failed)?.into_inner())
}
