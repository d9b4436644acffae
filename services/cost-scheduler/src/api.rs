//! `paved.cost_scheduler.v1.CostSchedulerService`.

use crate::{attribute::GroupBy, attribute::Line, prices::PriceSheet, report, schema::RevisionUsage};
use paved_grpc::status;
use paved_proto::cost_scheduler::v1::{
    CostGrouping, CostLine, GetCostReportRequest, GetCostReportResponse, ListUsageRequest, ListUsageResponse, Usage,
    cost_scheduler_service_server::{CostSchedulerService, CostSchedulerServiceServer},
};
use paved_proto::{millis_from_timestamp, timestamp_from_millis};
use sea_orm::{ConnectionTrait, DatabaseConnection, sea_query::Query};
use std::collections::BTreeMap;
use tonic::{Request, Response, Status};

pub fn server(db: DatabaseConnection, sheet: PriceSheet) -> CostSchedulerServiceServer<Api> {
    CostSchedulerServiceServer::new(Api { db, sheet })
}

pub struct Api {
    db: DatabaseConnection,
    sheet: PriceSheet,
}

/// A report's default window: the last 30 days.
const DEFAULT_WINDOW_MS: i64 = 30 * 24 * 3_600_000;

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

    async fn get_cost_report(&self, request: Request<GetCostReportRequest>) -> Result<Response<GetCostReportResponse>, Status> {
        let req = request.into_inner();
        let by = match CostGrouping::try_from(req.group_by) {
            Ok(CostGrouping::Team) => GroupBy::Team,
            Ok(CostGrouping::Environment) => GroupBy::Environment,
            Ok(CostGrouping::Workload | CostGrouping::Unspecified) => GroupBy::Workload,
            Err(_) => {
                let why = format!("unknown grouping {}: team, environment or workload", req.group_by);
                return Err(status::invalid_argument("INVALID_GROUPING", why.clone(), [("group_by".to_string(), why)]));
            }
        };
        let end_ms = req.end_time.as_ref().map_or_else(|| chrono::Utc::now().timestamp_millis(), millis_from_timestamp);
        let start_ms = req.start_time.as_ref().map_or(end_ms - DEFAULT_WINDOW_MS, millis_from_timestamp);
        if start_ms >= end_ms {
            let why = "the window's start must come before its end".to_string();
            return Err(status::invalid_argument("INVALID_WINDOW", why.clone(), [("start_time".to_string(), why)]));
        }
        let report = report::report(&self.db, &self.sheet, by, start_ms, end_ms).await.map_err(|e| status::storage(&e))?;
        Ok(Response::new(GetCostReportResponse {
            lines: report.lines.iter().map(line).collect(),
            total: Some(line(&report.total)),
            currency: self.sheet.currency.clone(),
            start_time: Some(timestamp_from_millis(start_ms)),
            end_time: Some(timestamp_from_millis(end_ms)),
        }))
    }
}

fn line(l: &Line) -> CostLine {
    CostLine {
        team: l.team.clone(),
        environment: l.environment.clone(),
        workload: l.workload.clone(),
        replica_hours: l.replica_hours,
        requested_cost: l.requested_cost,
        used_cost: l.used_cost,
        cpu_core_hours: l.cpu_core_hours,
        memory_gib_hours: l.memory_gib_hours,
        slept_hours: l.slept_hours,
        savings: l.savings,
        samples: l.samples,
    }
}
