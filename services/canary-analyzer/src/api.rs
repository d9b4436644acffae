//! `paved.canary_analyzer.v1.CanaryAnalyzerService`.

use crate::judgement::Rollout;
use crate::looks::Looks;
use crate::request::{analysis_of, invalid, missing_rollout_id, queried, validate};
use crate::{
    judgement::{self, Fetched},
    looks::{self, Stored},
    schema::Observations,
};
use paved_grpc::status;
use paved_prometheus::Prometheus;
use paved_proto::canary_analyzer::v1::{
    CanaryJudged, Decision, ExplainRolloutRequest, ExplainRolloutResponse, JudgeLookRequest, JudgeLookResponse, ListObservationsRequest,
    ListObservationsResponse, Observation, ReplayRolloutRequest, ReplayRolloutResponse, Verdict,
    canary_analyzer_service_server::{CanaryAnalyzerService, CanaryAnalyzerServiceServer},
};
use paved_proto::{events::v1::envelope::Payload, timestamp_from_millis};
use paved_spec::Analysis;
use paved_stream::outbox::Relay;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait,
    sea_query::{Expr, ExprTrait, Order, Query},
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, UNIX_EPOCH},
};
use tonic::{Request, Response, Status};

/// The event source and stream name of this service's events.
pub const SOURCE: &str = "canary-analyzer";

pub fn server(db: DatabaseConnection, relay: Relay, prometheus: Option<Prometheus>) -> CanaryAnalyzerServiceServer<Api> {
    CanaryAnalyzerServiceServer::new(Api { db, relay, prometheus, judging: Default::default() })
}

pub struct Api {
    db: DatabaseConnection,
    relay: Relay,
    /// Where `prometheus` metrics are queried; None: such metrics are
    /// inconclusive, saying that none is configured.
    prometheus: Option<Prometheus>,
    /// Rollouts being judged, by id, with their running totals: a look
    /// costs the same whatever the rollout's length. Rebuilt from the
    /// decision records when missing (after a restart), and brought up to
    /// date with looks another replica judged.
    judging: Arc<Mutex<HashMap<String, Rollout>>>,
}

/// Rollouts kept judging at once; beyond, the map starts again (a rollout
/// whose totals are gone rebuilds them from its records).
const JUDGING: usize = 4096;

#[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct VerdictLabels {
    /// `<environment>/<name>`, as the proxy's metrics label workloads.
    workload: String,
    verdict: String,
}

/// `paved_canary_judgements_total{workload,verdict}`: every look judged,
/// for the rollouts dashboard.
static JUDGEMENTS: std::sync::LazyLock<
    prometheus_client::metrics::family::Family<VerdictLabels, prometheus_client::metrics::counter::Counter>,
> = std::sync::LazyLock::new(|| {
    let family = prometheus_client::metrics::family::Family::default();
    paved_telemetry::register("canary_judgements", "Looks at rollout steps judged by the canary analyzer, by verdict", family.clone());
    family
});

fn database(e: DbErr) -> Status {
    status::storage(&e)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Api {
    /// The running totals of `req`'s rollout, up to date with its recorded
    /// looks. Its analysis is the one the rollout's first look sent; a look
    /// may send it again (the provisioner sends it until a look is judged).
    async fn rollout(&self, req: &JudgeLookRequest) -> Result<Rollout, Status> {
        let kept = lock(&self.judging).remove(&req.rollout_id);
        let (mut rollout, newer) = match kept {
            Some(rollout) => {
                let after = rollout.last().map_or(0, |(look, _)| look);
                (rollout, looks::list(&self.db, &req.rollout_id, Looks::After(after)).await.map_err(database)?)
            }
            None => {
                let all = looks::list(&self.db, &req.rollout_id, Looks::All).await.map_err(database)?;
                // The rollout's own analysis: its first look carried it.
                let first = all.iter().map(|l| &l.request).find(|r| !r.spec_yaml.is_empty()).unwrap_or(req);
                if first.spec_yaml.is_empty() {
                    return Err(status::failed_precondition(
                        "ANALYSIS_UNKNOWN",
                        format!("no analysis for rollout {}: send its spec_yaml with this look", req.rollout_id),
                    ));
                }
                let (analysis, decisions) = analysis_of(&first.spec_yaml, &first.spec_path)?;
                (Rollout::new(analysis, decisions), all)
            }
        };
        for look in &newer {
            rollout.observe(&look.request);
        }
        Ok(rollout)
    }

    /// Keeps a rollout's totals for its next look, unless a call that
    /// ended first kept totals of a later look (these would then miss it:
    /// only looks after the kept one are read again).
    fn keep(&self, rollout_id: &str, rollout: Rollout) {
        let mut judging = lock(&self.judging);
        if judging.get(rollout_id).is_some_and(|kept| kept.last() >= rollout.last()) {
            return;
        }
        if judging.len() >= JUDGING {
            judging.clear();
        }
        judging.insert(rollout_id.to_string(), rollout);
    }

    /// The Prometheus metrics of the analysis, for canary and baseline over
    /// the step so far.
    async fn fetch(&self, analysis: &Analysis, req: &JudgeLookRequest) -> Fetched {
        let mut fetched = Fetched::new();
        for (name, query) in queried(analysis, req) {
            let Some(prometheus) = &self.prometheus else {
                fetched.insert(
                    name.clone(),
                    Err("no Prometheus is configured for the canary analyzer (prometheus_url, PAVED_PROMETHEUS_URL)".into()),
                );
                continue;
            };
            let at =
                |t: Option<&prost_types::Timestamp>| UNIX_EPOCH + Duration::from_millis(u64::try_from(judgement::millis(t)).unwrap_or(0));
            let (start, end) = (at(req.step_start_time.as_ref()), at(req.end_time.as_ref()));
            // About 60 points over the step, at least one a second.
            let step = end.duration_since(start).unwrap_or_default().div_f64(60.0).max(Duration::from_secs(1));
            let values = async |revision: &str| -> Result<Vec<f64>, String> {
                let series =
                    prometheus.query_range(&query.replace("$REVISION", revision), start, end, step).await.map_err(|e| e.to_string())?;
                Ok(series.into_iter().flat_map(|s| s.values.into_iter().map(|(_, v)| v)).collect())
            };
            // No baseline at this step (100%): the canary's values alone.
            let baseline = async {
                if req.baseline_weight == 0 || req.baseline_instance.is_empty() {
                    Ok(Vec::new())
                } else {
                    values(&req.baseline_instance).await
                }
            };
            let result = match (values(&req.canary_revision_id).await, baseline.await) {
                (Ok(c), Ok(b)) => Ok((c, b)),
                (Err(e), _) => Err(format!("canary: {e}")),
                (_, Err(e)) => Err(format!("baseline: {e}")),
            };
            fetched.insert(name.clone(), result);
        }
        fetched
    }

    /// Stores the look with its decision and event in one transaction.
    /// When a retry of the same call stored the look first, its decision
    /// stands and is returned instead.
    async fn record(&self, look: &Stored) -> Result<Option<Decision>, DbErr> {
        let txn = self.db.begin().await?;
        if let Err(e) = looks::insert(&txn, look).await {
            // Rolled back first: on SQLite the transaction holds the connection.
            drop(txn);
            let stored = looks::list(&self.db, &look.request.rollout_id, Looks::Only(look.request.look)).await?;
            let first = stored.into_iter().find(|l| l.request.look == look.request.look).map(|l| l.decision);
            return first.map(Some).ok_or(e);
        }
        let (r, d) = (&look.request, &look.decision);
        let kind = if d.verdict() == Verdict::Continue { "judged" } else { "verdict" };
        let payload = Payload::CanaryJudged(CanaryJudged {
            rollout_id: r.rollout_id.clone(),
            environment: r.environment.clone(),
            workload: r.workload.clone(),
            canary_revision_id: r.canary_revision_id.clone(),
            baseline_revision_id: r.baseline_revision_id.clone(),
            look: r.look,
            step: r.step,
            weight: r.weight,
            verdict: d.verdict,
            reason: d.reason.clone(),
            canary_requests: d.canary_requests,
            baseline_requests: d.baseline_requests,
        });
        let subject = format!("environments/{}/workloads/{}", r.environment, r.workload);
        let envelope = paved_stream::event::envelope(SOURCE, &format!("paved.canary_analyzer.v1.canary.{kind}"), subject, payload);
        paved_stream::outbox::enqueue(&txn, &paved_stream::stream_name(SOURCE), &envelope).await?;
        txn.commit().await?;
        self.relay.wake();
        let workload = format!("{}/{}", r.environment, r.workload);
        // The `fail` series exists from the workload's first look, at 0: an
        // alert on its increase sees the first rollback too.
        JUDGEMENTS.get_or_create(&VerdictLabels { workload: workload.clone(), verdict: "fail".into() }).inc_by(0);
        JUDGEMENTS.get_or_create(&VerdictLabels { workload, verdict: d.verdict().short_name().to_string() }).inc();
        Ok(None)
    }
}

#[tonic::async_trait]
impl CanaryAnalyzerService for Api {
    async fn list_observations(&self, request: Request<ListObservationsRequest>) -> Result<Response<ListObservationsResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let mut query = Query::select()
            .columns([
                Observations::RevisionId,
                Observations::Workload,
                Observations::Environment,
                Observations::State,
                Observations::Message,
                Observations::ObserveTimeMs,
            ])
            .from(Observations::Table)
            .order_by(Observations::Id, Order::Asc)
            .limit(size)
            .offset(offset)
            .to_owned();
        if !req.revision_id.is_empty() {
            query.and_where(Expr::col(Observations::RevisionId).eq(req.revision_id));
        }
        let rows = self.db.query_all(&query).await.map_err(|e| status::storage(&e))?;
        let observations = rows
            .iter()
            .map(|row| {
                Ok(Observation {
                    revision_id: row.try_get("", "revision_id")?,
                    workload: row.try_get("", "workload")?,
                    environment: row.try_get("", "environment")?,
                    state: row.try_get("", "state")?,
                    message: row.try_get("", "message")?,
                    observe_time: Some(timestamp_from_millis(row.try_get("", "observe_time_ms")?)),
                })
            })
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()
            .map_err(|e| status::internal(&e))?;
        let next_page_token = status::next_page_token(offset, size, observations.len());
        Ok(Response::new(ListObservationsResponse { observations, next_page_token }))
    }

    async fn judge_look(&self, request: Request<JudgeLookRequest>) -> Result<Response<JudgeLookResponse>, Status> {
        let req = request.into_inner();
        validate(&req)?;
        let mut rollout = self.rollout(&req).await?;
        if let Some((last, end)) = rollout.last() {
            if req.look <= last {
                // A retry of a look judged already gets its decision again.
                let done = looks::list(&self.db, &req.rollout_id, Looks::Only(req.look)).await.map_err(database)?;
                self.keep(&req.rollout_id, rollout);
                return match done.into_iter().next() {
                    Some(done) => Ok(Response::new(JudgeLookResponse { decision: Some(done.decision) })),
                    None => Err(invalid("look", format!("look {} comes before look {last}, judged already", req.look))),
                };
            }
            // Counted once: a look may not cover time an earlier one did.
            if judgement::millis(req.start_time.as_ref()) < end {
                self.keep(&req.rollout_id, rollout);
                return Err(invalid("start_time", format!("look {} starts before look {last} ended", req.look)));
            }
        }
        let fetched = self.fetch(rollout.analysis(), &req).await;
        let decision = rollout.judge(&req, &fetched);
        let look = Stored { request: req, fetched, decision };
        // Not kept when the record fails: the totals would count a look
        // that is not recorded.
        if let Some(first) = self.record(&look).await.map_err(database)? {
            return Ok(Response::new(JudgeLookResponse { decision: Some(first) }));
        }
        self.keep(&look.request.rollout_id, rollout);
        if look.decision.verdict() != Verdict::Continue {
            tracing::info!(
                rollout = %look.request.rollout_id,
                step = look.request.step + 1,
                verdict = look.decision.verdict().as_str_name(),
                reason = %look.decision.reason,
                "canary judged"
            );
        }
        Ok(Response::new(JudgeLookResponse { decision: Some(look.decision) }))
    }

    async fn explain_rollout(&self, request: Request<ExplainRolloutRequest>) -> Result<Response<ExplainRolloutResponse>, Status> {
        let req = request.into_inner();
        if req.rollout_id.is_empty() {
            return Err(missing_rollout_id());
        }
        let stored = looks::list(&self.db, &req.rollout_id, Looks::All).await.map_err(database)?;
        if stored.is_empty() {
            return Err(status::not_found("ROLLOUT_NOT_JUDGED", format!("no judged look of rollout {}", req.rollout_id)));
        }
        Ok(Response::new(ExplainRolloutResponse { decisions: stored.into_iter().map(|l| l.decision).collect() }))
    }

    async fn replay_rollout(&self, request: Request<ReplayRolloutRequest>) -> Result<Response<ReplayRolloutResponse>, Status> {
        let req = request.into_inner();
        if req.rollout_id.is_empty() {
            return Err(missing_rollout_id());
        }
        let stored = looks::list(&self.db, &req.rollout_id, Looks::All).await.map_err(database)?;
        let Some(first) = stored.first() else {
            return Err(status::not_found("ROLLOUT_NOT_JUDGED", format!("no judged look of rollout {}", req.rollout_id)));
        };
        // The rollout's own analysis came with its first look.
        let (analysis, decisions) = match req.spec_yaml.is_empty() {
            true => analysis_of(&first.request.spec_yaml, &first.request.spec_path)?,
            false => analysis_of(&req.spec_yaml, &req.spec_path)?,
        };
        let mut rollout = Rollout::new(analysis, decisions);
        let decisions: Vec<Decision> = stored.iter().map(|look| rollout.judge(&look.request, &look.fetched)).collect();
        let first_failure = decisions.iter().find(|d| d.verdict() == Verdict::Fail).map_or(0, |d| d.look);
        Ok(Response::new(ReplayRolloutResponse { decisions, first_failure }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paved_proto::canary_analyzer::v1::RequestCounts;

    fn field_of(status: &Status) -> String {
        let details = tonic_types::StatusExt::get_details_bad_request(status).expect("field violations");
        details.field_violations[0].field.clone()
    }

    #[test]
    fn impossible_looks_are_refused_with_the_field() {
        let good = JudgeLookRequest {
            rollout_id: "r".into(),
            environment: "dev".into(),
            workload: "web".into(),
            look: 1,
            weight: 20,
            baseline_weight: 20,
            canary: Some(RequestCounts { requests: 10, errors: 1, latency: vec![10] }),
            ..JudgeLookRequest::default()
        };
        assert!(validate(&good).is_ok());
        type Spoil = fn(&mut JudgeLookRequest);
        let cases: [(&str, Spoil); 10] = [
            ("rollout_id", |r| r.rollout_id.clear()),
            ("environment", |r| r.environment.clear()),
            ("workload", |r| r.workload = "web/other".into()),
            ("look", |r| r.look = 0),
            ("weight", |r| r.baseline_weight = 90),
            ("canary", |r| r.canary = None),
            ("canary.errors", |r| r.canary = Some(RequestCounts { requests: 1, errors: 2, latency: vec![] })),
            ("canary.requests", |r| r.canary = Some(RequestCounts { requests: u64::MAX, errors: 0, latency: vec![] })),
            ("canary.latency", |r| r.canary = Some(RequestCounts { requests: 1, errors: 0, latency: vec![u64::MAX, 2] })),
            ("end_time", |r| r.end_time = Some(prost_types::Timestamp { seconds: i64::MAX, nanos: 0 })),
        ];
        for (field, spoil) in cases {
            let mut bad = good.clone();
            spoil(&mut bad);
            let status = validate(&bad).expect_err(field);
            assert_eq!((status.code(), field_of(&status)), (tonic::Code::InvalidArgument, field.to_string()), "{}", status.message());
        }
    }
}
