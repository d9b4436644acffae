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
}

pub async fn run(args: RollbackArgs) -> anyhow::Result<ExitCode> {
    let RollbackArgs { workload, env, endpoint } = args;
    let started = std::time::Instant::now();
    let channel = connect(&endpoint).await?;
    let done = rollback(channel.clone(), &workload, &env).await?;
    let took = started.elapsed().as_millis();
    let numbers = revisions::numbers(&channel, [done.revision_id.as_str()]).await?;
    println!("{workload} in {env}: all traffic on revision {} ({took} ms)", revisions::label(&numbers, &done.revision_id));
    Ok(ExitCode::SUCCESS)
}

pub async fn rollback(channel: AuthChannel, workload: &str, environment: &str) -> anyhow::Result<RollbackWorkloadResponse> {
    let request = RollbackWorkloadRequest { environment: environment.into(), workload: workload.into() };
    Ok(ProvisionerServiceClient::new(channel).rollback_workload(request).await.map_err(failed)?.into_inner())
}
