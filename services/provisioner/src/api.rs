//! `paved.provisioner.v1.ProvisionerService`: validation at the edge, errors
//! as canonical codes with field violations.

use crate::{ApplyError, Provisioner, WorkloadView, store};
use paved_grpc::status;
use paved_proto::provisioner::v1::{
    ApplyWorkloadRequest, ApplyWorkloadResponse, GetRevisionRequest, GetRevisionResponse, GetWorkloadRequest, GetWorkloadResponse,
    ListRevisionsRequest, ListRevisionsResponse, ListWorkloadsRequest, ListWorkloadsResponse, RevisionState, Workload,
    provisioner_service_server::{ProvisionerService, ProvisionerServiceServer},
};
use paved_proto::timestamp_from_millis;
use sea_orm::DbErr;
use tonic::{Request, Response, Status};

pub fn server(provisioner: Provisioner) -> ProvisionerServiceServer<Api> {
    ProvisionerServiceServer::new(Api { provisioner })
}

pub struct Api {
    provisioner: Provisioner,
}

impl From<ApplyError> for Status {
    fn from(e: ApplyError) -> Status {
        match e {
            ApplyError::Spec(spec) => {
                let field = if spec.field.is_empty() { "spec_yaml".to_string() } else { format!("spec_yaml.{}", spec.field) };
                status::invalid_argument("INVALID_SPEC", spec.to_string(), [(field, spec.to_string())])
            }
            ApplyError::Environment(message) => {
                status::invalid_argument("INVALID_ENVIRONMENT", message.clone(), [("environment".into(), message)])
            }
            ApplyError::Database(e) => database(e),
            ApplyError::Proxy(e) => status::unavailable("PROXY_PORT", format!("cannot open the workload's proxy: {e}")),
        }
    }
}

fn database(e: DbErr) -> Status {
    tracing::warn!(error = %e, "provisioner database error");
    status::unavailable("DATABASE", "the provisioner's database is unavailable; retry")
}

fn required(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        return Err(status::invalid_argument(
            "MISSING_FIELD",
            format!("{field} is required"),
            [(field.to_string(), "required".to_string())],
        ));
    }
    Ok(())
}

fn to_proto(view: WorkloadView) -> Workload {
    Workload {
        name: view.workload.name,
        environment: view.workload.environment,
        current_revision: view.workload.current_revision.unwrap_or_default(),
        state: view.state.map_or(RevisionState::Unspecified, |s| s.to_proto()) as i32,
        endpoint: view.endpoint,
        create_time: Some(timestamp_from_millis(view.workload.create_time_ms)),
    }
}

#[tonic::async_trait]
impl ProvisionerService for Api {
    async fn apply_workload(&self, request: Request<ApplyWorkloadRequest>) -> Result<Response<ApplyWorkloadResponse>, Status> {
        let req = request.into_inner();
        required("environment", &req.environment)?;
        let applied = self.provisioner.apply(&req.environment, &req.spec_yaml, &req.spec_path, &req.request_id).await?;
        Ok(Response::new(ApplyWorkloadResponse {
            workload: Some(to_proto(applied.workload)),
            revision: Some(applied.revision.to_proto()),
            changed: applied.changed,
        }))
    }

    async fn get_workload(&self, request: Request<GetWorkloadRequest>) -> Result<Response<GetWorkloadResponse>, Status> {
        let req = request.into_inner();
        required("environment", &req.environment)?;
        required("name", &req.name)?;
        let view = self.provisioner.workload(&req.environment, &req.name).await.map_err(database)?;
        let view = view.ok_or_else(|| {
            status::not_found("WORKLOAD_NOT_FOUND", format!("no workload {} in environment {}", req.name, req.environment))
        })?;
        Ok(Response::new(GetWorkloadResponse { workload: Some(to_proto(view)) }))
    }

    async fn list_workloads(&self, request: Request<ListWorkloadsRequest>) -> Result<Response<ListWorkloadsResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let views = self.provisioner.workloads(&req.environment, size, offset).await.map_err(database)?;
        let next_page_token = status::next_page_token(offset, size, views.len());
        Ok(Response::new(ListWorkloadsResponse { workloads: views.into_iter().map(to_proto).collect(), next_page_token }))
    }

    async fn get_revision(&self, request: Request<GetRevisionRequest>) -> Result<Response<GetRevisionResponse>, Status> {
        let req = request.into_inner();
        required("id", &req.id)?;
        let revision = store::get_revision(self.provisioner.db(), &req.id).await.map_err(database)?;
        let revision = revision.ok_or_else(|| status::not_found("REVISION_NOT_FOUND", format!("no revision {}", req.id)))?;
        Ok(Response::new(GetRevisionResponse { revision: Some(revision.to_proto()) }))
    }

    async fn list_revisions(&self, request: Request<ListRevisionsRequest>) -> Result<Response<ListRevisionsResponse>, Status> {
        let req = request.into_inner();
        required("environment", &req.environment)?;
        required("workload", &req.workload)?;
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let revisions =
            store::list_revisions(self.provisioner.db(), &req.environment, &req.workload, size, offset).await.map_err(database)?;
        let next_page_token = status::next_page_token(offset, size, revisions.len());
        Ok(Response::new(ListRevisionsResponse { revisions: revisions.iter().map(|r| r.to_proto()).collect(), next_page_token }))
    }
}
