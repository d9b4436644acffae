//! `paved status`: the health of the five services and the workloads a
//! running platform has, for people or as JSON.

use crate::{
    DEFAULT_ENDPOINT, SERVICES,
    client::{connect, explain},
    output,
};
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{
    GetRevisionRequest, ListWorkloadsRequest, RevisionState, provisioner_service_client::ProvisionerServiceClient,
};
use serde::Serialize;
use std::process::ExitCode;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

#[derive(clap::Args)]
pub struct StatusArgs {
    #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
    #[arg(long, short, value_enum, default_value_t)]
    output: output::Format,
}

pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let status = status(connect(&args.endpoint).await?).await?;
    print_status(&status, args.output)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub services: Vec<ServiceStatus>,
    pub workloads: Vec<WorkloadStatus>,
}

#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    pub state: String,
}

#[derive(Debug, Serialize)]
pub struct WorkloadStatus {
    pub name: String,
    pub environment: String,
    pub revision: i64,
    pub revision_id: String,
    /// `sleeping` while it sleeps, else its current revision's state.
    pub state: String,
    pub endpoint: String,
    /// While sleeping: when its schedule wakes it (RFC 3339), if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wakes_at: Option<String>,
}

pub async fn status(channel: AuthChannel) -> anyhow::Result<Status> {
    let mut health = HealthClient::new(channel.clone());
    let mut services = Vec::new();
    for (name, grpc) in SERVICES {
        let state = match health.check(HealthCheckRequest { service: grpc.to_string() }).await {
            Ok(r) => match r.into_inner().status() {
                ServingStatus::Serving => "serving",
                ServingStatus::NotServing => "not_serving",
                _ => "unknown",
            },
            Err(s) if s.code() == tonic::Code::NotFound => "absent",
            Err(_) => "unreachable",
        };
        services.push(ServiceStatus { name: name.to_string(), state: state.to_string() });
    }
    let mut client = ProvisionerServiceClient::new(channel.clone());
    let mut workloads = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_workloads(ListWorkloadsRequest { environment: String::new(), page_size: 500, page_token })
            .await
            .map_err(|s| anyhow::anyhow!("list workloads: {}", explain(&s)))?
            .into_inner();
        for w in page.workloads {
            let revision = match w.current_revision.as_str() {
                "" => None,
                id => client.get_revision(GetRevisionRequest { id: id.to_string() }).await.ok().and_then(|r| r.into_inner().revision),
            };
            let state = workload_state(&w);
            workloads.push(WorkloadStatus {
                name: w.name,
                environment: w.environment,
                revision: revision.as_ref().map_or(0, |r| r.number),
                revision_id: w.current_revision,
                state,
                endpoint: w.endpoint,
                wakes_at: output::rfc3339(w.wake_time.as_ref()),
            });
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(Status { services, workloads })
}

pub fn print_status(status: &Status, format: output::Format) -> anyhow::Result<()> {
    print!("{}", status_text(status, format)?);
    Ok(())
}

/// [`print_status`]'s text.
pub fn status_text(status: &Status, format: output::Format) -> anyhow::Result<String> {
    Ok(match format {
        output::Format::Json => format!("{}\n", serde_json::to_string_pretty(status)?),
        output::Format::Table => {
            let rows: Vec<Vec<String>> = status.services.iter().map(|s| vec![s.name.clone(), s.state.clone()]).collect();
            let services = output::table(&["SERVICE", "STATE"], &rows);
            let rows: Vec<Vec<String>> = status
                .workloads
                .iter()
                .map(|w| {
                    let state = match &w.wakes_at {
                        Some(at) => format!("{} (wakes {at})", w.state),
                        None => w.state.clone(),
                    };
                    vec![w.name.clone(), w.environment.clone(), w.revision.to_string(), state, format!("http://{}", w.endpoint)]
                })
                .collect();
            format!("{services}\n{}", output::table(&["WORKLOAD", "ENVIRONMENT", "REVISION", "STATE", "ENDPOINT"], &rows))
        }
    })
}

/// A workload's state as people read it: `sleeping` while it sleeps, else
/// its current revision's (`healthy`, `starting`, …).
pub fn workload_state(w: &paved_proto::provisioner::v1::Workload) -> String {
    if w.sleeping { "sleeping".to_string() } else { RevisionState::try_from(w.state).unwrap_or_default().short_name().to_string() }
}
