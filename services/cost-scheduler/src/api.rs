//! `paved.cost_scheduler.v1.CostSchedulerService`.

use crate::{attribute::GroupBy, attribute::Line, budgets, forecast, prices::PriceSheet, report, rightsize, schema::RevisionUsage};
use paved_grpc::status;
use paved_proto::cost_scheduler::v1::{
    Budget, CostForecast, CostGrouping, CostLine, GetCostForecastRequest, GetCostForecastResponse, GetCostReportRequest,
    GetCostReportResponse, GetResourceRecommendationRequest, GetResourceRecommendationResponse, ListBudgetsRequest, ListBudgetsResponse,
    ListUsageRequest, ListUsageResponse, ResourceRecommendation, SetBudgetRequest, SetBudgetResponse, Usage,
    cost_scheduler_service_server::{CostSchedulerService, CostSchedulerServiceServer},
};
use paved_proto::{millis_from_timestamp, timestamp_from_millis};
use paved_spec::ScheduleDefaults;
use sea_orm::{ConnectionTrait, DatabaseConnection, sea_query::Query};
use std::collections::BTreeMap;
use tonic::{Request, Response, Status};

pub fn server(
    db: DatabaseConnection,
    sheet: PriceSheet,
    schedules: ScheduleDefaults,
    running: forecast::Running,
) -> CostSchedulerServiceServer<Api> {
    CostSchedulerServiceServer::new(Api { db, sheet, schedules, running })
}

pub struct Api {
    db: DatabaseConnection,
    sheet: PriceSheet,
    schedules: ScheduleDefaults,
    running: forecast::Running,
}

fn invalid(reason: &str, field: &str, why: String) -> Status {
    status::invalid_argument(reason, format!("{field}: {why}"), [(field.to_string(), why)])
}

impl Api {
    fn budget(&self, b: &budgets::Budget) -> Budget {
        let forecast_monthly = self.running.by_team().and_then(|t| t.get(&(b.team.clone(), b.environment.clone())).copied()).unwrap_or(0.0);
        Budget {
            team: b.team.clone(),
            environment: b.environment.clone(),
            monthly: b.monthly,
            forecast_monthly,
            forecast_ratio: forecast_monthly / b.monthly,
        }
    }
}

/// A report's default window: the last 30 days.
const DEFAULT_WINDOW_MS: i64 = 30 * 24 * 3_600_000;
/// A recommendation's default window: the last 7 days.
const RIGHTSIZE_WINDOW_MS: i64 = 7 * 24 * 3_600_000;

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

    async fn get_cost_forecast(&self, request: Request<GetCostForecastRequest>) -> Result<Response<GetCostForecastResponse>, Status> {
        let req = request.into_inner();
        paved_spec::validate_name(&req.environment).map_err(|e| invalid("INVALID_ARGUMENT", "environment", e))?;
        let spec = paved_spec::parse(&req.spec_yaml, "paved.yaml").map_err(|e| invalid("INVALID_SPEC", "spec_yaml", e.to_string()))?;
        // Before its first pass it does not know what runs: no forecast,
        // rather than one that counts what runs as nothing.
        if !self.running.known() {
            return Err(status::unavailable(
                "NOT_READY",
                "the cost scheduler has not read the running workloads yet; try again in a second",
            ));
        }
        let running = self.running.of(&req.environment, &spec.name);
        let schedule = self.schedules.of(&spec, &req.environment);
        let month = match &running {
            Some(r) if r.schedule.as_ref() == schedule => forecast::at_share(&spec, &req.environment, &self.sheet, r.awake_share),
            _ => forecast::monthly(&spec, schedule, &req.environment, &self.sheet, chrono::Utc::now()),
        };
        let team = spec.team.clone().unwrap_or_default();
        let current_monthly = running.map_or(0.0, |r| r.monthly);
        let (budget_monthly, team_monthly) = if team.is_empty() {
            (0.0, 0.0)
        } else {
            let budget = budgets::get(&self.db, &team, &req.environment).await.map_err(|e| status::storage(&e))?;
            (budget.map_or(0.0, |b| b.monthly), self.running.team_with(&team, &req.environment, &spec.name, month.cost))
        };
        let forecast = CostForecast {
            currency: self.sheet.currency.clone(),
            current_monthly,
            monthly: month.cost,
            awake_share: month.awake_share,
            team,
            budget_monthly,
            team_monthly,
        };
        Ok(Response::new(GetCostForecastResponse { forecast: Some(forecast) }))
    }

    async fn set_budget(&self, request: Request<SetBudgetRequest>) -> Result<Response<SetBudgetResponse>, Status> {
        let req = request.into_inner();
        paved_spec::validate_name(&req.team).map_err(|e| invalid("INVALID_BUDGET", "team", e))?;
        paved_spec::validate_name(&req.environment).map_err(|e| invalid("INVALID_ARGUMENT", "environment", e))?;
        if !(req.monthly.is_finite() && req.monthly >= 0.0) {
            return Err(invalid(
                "INVALID_BUDGET",
                "monthly",
                format!("a budget is an amount of at least 0 (0 removes it), not {}", req.monthly),
            ));
        }
        budgets::set(&self.db, &req.team, &req.environment, req.monthly).await.map_err(|e| status::storage(&e))?;
        let budget = budgets::get(&self.db, &req.team, &req.environment).await.map_err(|e| status::storage(&e))?;
        Ok(Response::new(SetBudgetResponse { budget: budget.as_ref().map(|b| self.budget(b)) }))
    }

    async fn list_budgets(&self, request: Request<ListBudgetsRequest>) -> Result<Response<ListBudgetsResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let all = budgets::list(&self.db).await.map_err(|e| status::storage(&e))?;
        let budgets: Vec<Budget> = all.iter().skip(offset as usize).take(size as usize).map(|b| self.budget(b)).collect();
        let next_page_token = status::next_page_token(offset, size, budgets.len());
        Ok(Response::new(ListBudgetsResponse { budgets, currency: self.sheet.currency.clone(), next_page_token }))
    }

    async fn get_resource_recommendation(
        &self,
        request: Request<GetResourceRecommendationRequest>,
    ) -> Result<Response<GetResourceRecommendationResponse>, Status> {
        let req = request.into_inner();
        paved_spec::validate_name(&req.environment).map_err(|e| invalid("INVALID_ARGUMENT", "environment", e))?;
        paved_spec::validate_name(&req.workload).map_err(|e| invalid("INVALID_ARGUMENT", "workload", e))?;
        let percentile = if req.percentile == 0.0 { rightsize::Method::P95.percentile } else { req.percentile };
        if !(percentile > 0.0 && percentile <= 100.0) {
            return Err(invalid("INVALID_ARGUMENT", "percentile", format!("a percentile is above 0 and at most 100, not {percentile}")));
        }
        if !(req.headroom.is_finite() && (0.0..=10.0).contains(&req.headroom)) {
            return Err(invalid("INVALID_ARGUMENT", "headroom", format!("headroom is a share from 0 to 10, not {}", req.headroom)));
        }
        let end_ms = chrono::Utc::now().timestamp_millis();
        let start_ms = req.start_time.as_ref().map_or(end_ms - RIGHTSIZE_WINDOW_MS, millis_from_timestamp);
        let (samples, revision) =
            report::workload_samples(&self.db, &req.environment, &req.workload, start_ms).await.map_err(|e| status::storage(&e))?;
        let method = rightsize::Method { percentile, headroom: req.headroom };
        let (revision_id, described) = revision.unwrap_or_default();
        let current = rightsize::Quantities { cpu_cores: described.cpu_request, memory_bytes: described.memory_request };
        let prices = self.sheet.prices(&req.environment);
        let Some(r) = rightsize::recommend(&samples, method, current, described.replicas, prices) else {
            return Err(status::failed_precondition(
                "NOT_ENOUGH_SAMPLES",
                format!(
                    "{} in {} has {} usage samples since then: a recommendation needs at least {} (one is taken every sample interval while it runs)",
                    req.workload,
                    req.environment,
                    samples.len(),
                    rightsize::MIN_SAMPLES
                ),
            ));
        };
        let recommendation = ResourceRecommendation {
            revision_id,
            samples: u32::try_from(r.samples).unwrap_or(u32::MAX),
            start_time: Some(timestamp_from_millis(start_ms)),
            end_time: Some(timestamp_from_millis(end_ms)),
            percentile,
            headroom: req.headroom,
            used_cpu_cores: r.used.cpu_cores,
            used_memory_bytes: r.used.memory_bytes,
            memory_peak_bytes: r.memory_peak_bytes,
            cpu_request_cores: r.requests.cpu_cores,
            memory_request_bytes: r.requests.memory_bytes,
            cpu_limit_cores: r.limits.cpu_cores,
            memory_limit_bytes: r.limits.memory_bytes,
            current_cpu_request_cores: current.cpu_cores,
            current_memory_request_bytes: current.memory_bytes,
            replicas: described.replicas.max(1),
            monthly_saving: r.monthly_saving,
            currency: self.sheet.currency.clone(),
        };
        Ok(Response::new(GetResourceRecommendationResponse { recommendation: Some(recommendation) }))
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
