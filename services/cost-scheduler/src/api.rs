//! `paved.cost_scheduler.v1.CostSchedulerService`.

use crate::schema::RevisionUsage;
use paved_grpc::status;
use paved_proto::cost_scheduler::v1::{
    ListUsageRequest, ListUsageResponse, Usage,
    cost_scheduler_service_server::{CostSchedulerService, CostSchedulerServiceServer},
};
use paved_proto::timestamp_from_millis;
use sea_orm::{ConnectionTrait, DatabaseConnection, sea_query::Query};
use std::collections::BTreeMap;
use tonic::{Request, Response, Status};

pub fn server(db: DatabaseConnection) -> CostSchedulerServiceServer<Api> {
    CostSchedulerServiceServer::new(Api { db })
}

pub struct Api {
    db: DatabaseConnection,
}

#[tonic::async_trait]
impl CostSchedulerService for Api {
    /// Usage per workload: the sum over its revisions.
    async fn list_usage(&self, request: Request<ListUsageRequest>) -> Result<Response<ListUsageResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let query = Query::select()
            .columns([RevisionUsage::Workload, RevisionUsage::Environment, RevisionUsage::RunningMs, RevisionUsage::RunningSinceMs])
            .from(RevisionUsage::Table)
            .to_owned();
        let rows = self.db.query_all(&query).await.map_err(|e| status::storage(&e))?;
        let mut by_workload: BTreeMap<(String, String), (i64, Option<i64>)> = BTreeMap::new();
        for row in &rows {
            let read = || -> Result<_, sea_orm::DbErr> {
                Ok((
                    row.try_get::<String>("", "environment")?,
                    row.try_get::<String>("", "workload")?,
                    row.try_get::<i64>("", "running_ms")?,
                    row.try_get::<Option<i64>>("", "running_since_ms")?,
                ))
            };
            let (environment, workload, ms, since) = read().map_err(|e| status::internal(&e))?;
            let entry = by_workload.entry((environment, workload)).or_default();
            entry.0 += ms;
            entry.1 = match (entry.1, since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let usage: Vec<Usage> = by_workload
            .into_iter()
            .skip(offset as usize)
            .take(size as usize)
            .map(|((environment, workload), (ms, since))| Usage {
                workload,
                environment,
                running_seconds: ms as f64 / 1000.0,
                running_since: since.map(timestamp_from_millis),
            })
            .collect();
        let next_page_token = status::next_page_token(offset, size, usage.len());
        Ok(Response::new(ListUsageResponse { usage, next_page_token }))
    }
}
