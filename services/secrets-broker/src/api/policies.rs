//! Policies at the edge: `GetWorkloadPolicy` and `ListWorkloadPolicies`,
//! each grant with its uses (grants never used are candidates to leave the
//! spec).

use crate::policy::{self, GrantUse, Policy};
use paved_grpc::status;
use paved_proto::secrets_broker::v1::{
    self as pb, GetWorkloadPolicyRequest, GetWorkloadPolicyResponse, ListWorkloadPoliciesRequest, ListWorkloadPoliciesResponse,
    WorkloadPolicy,
};
use paved_proto::timestamp_from_millis;
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

pub(super) struct PoliciesApi {
    pub db: DatabaseConnection,
}

impl From<GrantUse> for pb::GrantUse {
    fn from(g: GrantUse) -> Self {
        pb::GrantUse {
            scope: g.scope,
            use_count: g.use_count,
            first_use_time: g.first_use_ms.map(timestamp_from_millis),
            last_use_time: g.last_use_ms.map(timestamp_from_millis),
        }
    }
}

impl From<Policy> for WorkloadPolicy {
    fn from(p: Policy) -> Self {
        WorkloadPolicy {
            spiffe_id: p.spiffe_id,
            environment: p.environment,
            workload: p.workload,
            revision_id: p.revision_id,
            compile_time: Some(timestamp_from_millis(p.compile_time_ms)),
            grants: p.grants.into_iter().map(pb::GrantUse::from).collect(),
        }
    }
}

impl PoliciesApi {
    pub(super) async fn get(&self, request: Request<GetWorkloadPolicyRequest>) -> Result<Response<GetWorkloadPolicyResponse>, Status> {
        let req = request.into_inner();
        let policy = policy::get(&self.db, &req.environment, &req.workload).await.map_err(|e| status::storage(&e))?;
        let Some(policy) = policy else {
            return Err(status::not_found(
                "POLICY_NOT_FOUND",
                format!("no policy compiled for {}/{}: it gets one when a revision of it is deployed", req.environment, req.workload),
            ));
        };
        Ok(Response::new(GetWorkloadPolicyResponse { policy: Some(policy.into()) }))
    }

    pub(super) async fn list(
        &self,
        request: Request<ListWorkloadPoliciesRequest>,
    ) -> Result<Response<ListWorkloadPoliciesResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let (policies, read) =
            policy::list(&self.db, &req.environment, req.unused_only, size, offset).await.map_err(|e| status::storage(&e))?;
        let next_page_token = status::next_page_token(offset, size, read);
        Ok(Response::new(ListWorkloadPoliciesResponse {
            policies: policies.into_iter().map(WorkloadPolicy::from).collect(),
            next_page_token,
        }))
    }
}
