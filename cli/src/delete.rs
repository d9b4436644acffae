//! `paved delete`: a workload destroyed — its rollouts end, its processes
//! stop, its proxy closes and its records go (the audit log keeps what it
//! was).

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output::{self, Format},
};
use paved_proto::provisioner::v1::{DeleteWorkloadRequest, provisioner_service_client::ProvisionerServiceClient};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DeleteArgs {
    workload: String,
    #[arg(long)]
    env: String,
    #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
    #[arg(long, short, value_enum, default_value_t)]
    output: Format,
}

pub async fn run(args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let DeleteArgs { workload, env, endpoint, output } = args;
    let channel = connect(&endpoint).await?;
    let request = DeleteWorkloadRequest { environment: env.clone(), workload: workload.clone() };
    let deleted = ProvisionerServiceClient::new(channel).delete_workload(request).await.map_err(failed)?.into_inner();
    let endpoint = deleted.workload.map(|w| w.endpoint).unwrap_or_default();
    output::print(
        output,
        || format!("deleted {workload} in {env} ({} revision(s)); {endpoint} is given up\n", deleted.revisions),
        || serde_json::json!({ "workload": workload, "environment": env, "revisions": deleted.revisions, "endpoint": endpoint }),
    )?;
    Ok(ExitCode::SUCCESS)
}
