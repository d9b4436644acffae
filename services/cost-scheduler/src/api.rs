//! `paved.cost_scheduler.v1.CostSchedulerService`.

use crate::{
    attribute::GroupBy, attribute::Line, budgets, forecast, prices::PriceSheet, promusage::PromUsage, report, rightsize,
    schema::RevisionUsage,
};
use paved_grpc::status;
use paved_prometheus::ProviderError;
use paved_proto::cost_scheduler::v1::{
    Budget, CostForecast, CostGrouping, CostLine, GetCostForecastRequest, GetCostForecastResponse, GetCostReportRequest,
    GetCostReportResponse, GetResourceRecommendationRequest, GetResourceRecommendationResponse, ListBudgetsRequest, ListBudgetsResponse,
    ListUsageRequest, ListUsageResponse, ResourceRecommendation, SetBudgetRequest, SetBudgetResponse, Usage, UsageSource,
    cost_scheduler_service_server::{CostSchedulerService, CostSchedulerServiceServer},
};
use paved_proto::{millis_from_timestamp, timestamp_from_millis};
use paved_spec::ScheduleDefaults;
use sea_orm::{ConnectionTrait, DatabaseConnection, sea_query::Query};
use std::collections::BTreeMap;
use tonic::{Request, Response, Status};

/// What the API reads besides its database: the operator's settings, what
/// runs (kept by the schedule loop), and Prometheus when configured.
pub struct Parts {
    pub db: DatabaseConnection,
    pub sheet: PriceSheet,
    pub schedules: ScheduleDefaults,
    pub running: forecast::Running,
    pub prometheus: Option<PromUsage>,
}

pub fn server(parts: Parts) -> CostSchedulerServiceServer<Api> {
    let Parts { db, sheet, schedules, running, prometheus } = parts;
    CostSchedulerServiceServer::new(Api { db, sheet, schedules, running, prometheus })
}

pub struct Api {
    db: DatabaseConnection,
    sheet: PriceSheet,
    schedules: ScheduleDefaults,
    running: forecast::Running,
    prometheus: Option<PromUsage>,
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
        paved_spec::validate_name(&req.environment).map_err(|e| invalid("INVALID_ENVIRONMENT", "environment", e))?;
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
        paved_spec::validate_name(&req.environment).map_err(|e| invalid("INVALID_ENVIRONMENT", "environment", e))?;
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
        paved_spec::validate_name(&req.environment).map_err(|e| invalid("INVALID_ENVIRONMENT", "environment", e))?;
        paved_spec::validate_name(&req.workload).map_err(|e| invalid("INVALID_WORKLOAD", "workload", e))?;
        let percentile = if req.percentile == 0.0 { rightsize::Method::P95.percentile } else { req.percentile };
        if !(percentile > 0.0 && percentile <= 100.0) {
            return Err(invalid("INVALID_PERCENTILE", "percentile", format!("a percentile is above 0 and at most 100, not {percentile}")));
        }
        if !(req.headroom.is_finite() && (0.0..=10.0).contains(&req.headroom)) {
            return Err(invalid("INVALID_HEADROOM", "headroom", format!("headroom is a share from 0 to 10, not {}", req.headroom)));
        }
        let end_ms = chrono::Utc::now().timestamp_millis();
        let start_ms = req.start_time.as_ref().map_or(end_ms - RIGHTSIZE_WINDOW_MS, millis_from_timestamp);
        let source = match (UsageSource::try_from(req.source), &self.prometheus) {
            (Ok(UsageSource::Unspecified | UsageSource::Prometheus), Some(_)) => UsageSource::Prometheus,
            (Ok(UsageSource::Prometheus), None) => {
                return Err(status::failed_precondition(
                    "NO_PROMETHEUS",
                    "the cost scheduler has no Prometheus configured (PAVED_PROMETHEUS_URL): ask for its samples instead",
                ));
            }
            (Ok(_), _) => UsageSource::Samples,
            (Err(_), _) => return Err(invalid("INVALID_SOURCE", "source", format!("unknown usage source {}", req.source))),
        };
        let measured = match source {
            UsageSource::Prometheus => self.measured_by_prometheus(&req.environment, &req.workload, start_ms, end_ms).await?,
            _ => self.measured_by_samples(&req.environment, &req.workload, start_ms).await?,
        };
        let Measured { usage, current, replicas, revision_id, asked } = measured;
        let method = rightsize::Method { percentile, headroom: req.headroom };
        let prices = self.sheet.prices(&req.environment);
        let samples = usage.samples();
        let Some(r) = rightsize::recommend(usage, method, current, replicas, prices) else {
            let found = match &asked {
                Some(a) => format!("{samples} points from Prometheus at a {}s step", a.step.as_secs()),
                None => format!("{samples} usage samples"),
            };
            return Err(status::failed_precondition(
                "NOT_ENOUGH_SAMPLES",
                format!(
                    "{} in {} has {found} since then: a recommendation needs at least {} (one is taken every sample interval while it runs)",
                    req.workload,
                    req.environment,
                    rightsize::MIN_SAMPLES
                ),
            ));
        };
        let asked = asked.unwrap_or_default();
        #[allow(deprecated)] // `step_seconds` set for clients built before `step`
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
            replicas: replicas.max(1),
            monthly_saving: r.monthly_saving,
            currency: self.sheet.currency.clone(),
            source: source as i32,
            cpu_query: asked.cpu_query,
            memory_query: asked.memory_query,
            step_seconds: u32::try_from(asked.step.as_secs()).unwrap_or(u32::MAX),
            step: (!asked.step.is_zero()).then(|| paved_proto::duration_from_std(asked.step)),
        };
        Ok(Response::new(GetResourceRecommendationResponse { recommendation: Some(recommendation) }))
    }
}

/// What a recommendation is made from.
struct Measured {
    usage: rightsize::Usage,
    current: rightsize::Quantities,
    replicas: u32,
    revision_id: String,
    /// What Prometheus was asked, when it was.
    asked: Option<crate::promusage::Asked>,
}

impl Api {
    /// The samples, and the requests of the latest sampled revision.
    async fn measured_by_samples(&self, environment: &str, workload: &str, start_ms: i64) -> Result<Measured, Status> {
        let (samples, revision) =
            report::workload_samples(&self.db, environment, workload, start_ms).await.map_err(|e| status::storage(&e))?;
        let (revision_id, described) = revision.unwrap_or_default();
        let current = rightsize::Quantities { cpu_cores: described.cpu_request, memory_bytes: described.memory_request };
        Ok(Measured { usage: rightsize::Usage::from_samples(&samples), current, replicas: described.replicas, revision_id, asked: None })
    }

    /// Prometheus' series, and the requests of what runs now.
    async fn measured_by_prometheus(&self, environment: &str, workload: &str, start_ms: i64, end_ms: i64) -> Result<Measured, Status> {
        let Some(prometheus) = &self.prometheus else { return Err(status::internal(&"no Prometheus")) };
        if !self.running.known() {
            return Err(status::unavailable(
                "NOT_READY",
                "the cost scheduler has not read the running workloads yet; try again in a second",
            ));
        }
        let Some(running) = self.running.of(environment, workload) else {
            return Err(status::failed_precondition(
                "WORKLOAD_NOT_RUNNING",
                format!("{workload} does not run in {environment}: its current requests are those of what runs"),
            ));
        };
        let at = |ms: i64| std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
        let (asked, usage) = prometheus.usage(environment, workload, at(start_ms), at(end_ms)).await;
        let usage = match usage {
            Ok(usage) => usage,
            // Too few points is said as such, below.
            Err(ProviderError::NoData { .. }) => rightsize::Usage::default(),
            Err(ProviderError::Query { kind, message }) => {
                return Err(status::failed_precondition(
                    "PROMETHEUS_QUERY",
                    format!(
                        "Prometheus refused the usage query ({kind}: {message}); check PAVED_USAGE_CPU_QUERY and PAVED_USAGE_MEMORY_QUERY"
                    ),
                ));
            }
            Err(e) => {
                return Err(status::logged(
                    tonic::Code::Unavailable,
                    "PROMETHEUS_UNAVAILABLE",
                    "Prometheus did not answer the usage query",
                    &e,
                ));
            }
        };
        let current = rightsize::Quantities { cpu_cores: running.cpu_request, memory_bytes: running.memory_request };
        Ok(Measured { usage, current, replicas: running.replicas, revision_id: running.revision_id, asked: Some(asked) })
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
