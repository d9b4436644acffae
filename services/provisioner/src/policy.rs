//! The policy gate: the bundle's decision on deploying a spec to an
//! environment. An artifact named by digest must exist, and its
//! attestations are part of the input; so is what the spec would cost a
//! month and its team's budget, from the cost scheduler (`input.cost`).
//! Asked by an apply (before anything is recorded) and again by the
//! rollout's policy stage (the bundle may have changed since).

use crate::artifacts::{self, ArtifactError};
use paved_grpc::client::AuthChannel;
use paved_policy::{Bundle, Decision, PolicyError};
use paved_proto::cost_scheduler::v1::{CostForecast, GetCostForecastRequest, cost_scheduler_service_client::CostSchedulerServiceClient};
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// The cost scheduler, asked what a spec costs a month.
pub type Costs = CostSchedulerServiceClient<AuthChannel>;

/// What the cost scheduler said of a spec's month, or why it said nothing.
#[derive(Debug, Clone)]
pub enum Cost {
    /// No cost scheduler is configured.
    Unasked,
    /// It did not answer: budgets are not checked (the policy warns).
    Unavailable(String),
    Known(CostForecast),
}

impl Cost {
    /// As the policy reads it: null, `{error}`, or the forecast's fields.
    fn input(&self) -> serde_json::Value {
        match self {
            Cost::Unasked => serde_json::Value::Null,
            Cost::Unavailable(e) => serde_json::json!({ "error": e }),
            Cost::Known(f) => serde_json::json!({
                "currency": f.currency, "current_monthly": f.current_monthly, "monthly": f.monthly,
                "awake_share": f.awake_share, "team": f.team, "budget_monthly": f.budget_monthly, "team_monthly": f.team_monthly,
            }),
        }
    }
}

/// The gate's decision, with what it saw: the artifact (none when the spec
/// names none by digest) and the cost.
pub(crate) struct Judged {
    pub(crate) decision: Decision,
    pub(crate) seen: Option<artifacts::Seen>,
    pub(crate) cost: Cost,
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
}

pub(crate) struct Gate {
    policy: Bundle,
    artifacts: Arc<artifacts::Store>,
    db: DatabaseConnection,
    costs: Option<Costs>,
}

impl Gate {
    pub(crate) fn new(policy: Bundle, artifacts: Arc<artifacts::Store>, db: DatabaseConnection, costs: Option<Costs>) -> Self {
        Self { policy, artifacts, db, costs }
    }

    /// The policy gate's decision on deploying `spec` (written as `yaml`)
    /// to `environment`; an artifact named by digest must exist.
    pub(crate) async fn decide(&self, environment: &str, spec: &paved_spec::WorkloadSpec, yaml: &str) -> Result<Decision, GateError> {
        Ok(self.judge(environment, spec, yaml).await?.decision)
    }

    /// [`Gate::decide`], with what the decision saw.
    pub(crate) async fn judge(&self, environment: &str, spec: &paved_spec::WorkloadSpec, yaml: &str) -> Result<Judged, GateError> {
        let (artifact, seen) = match spec.artifact_digest() {
            Some(digest) => {
                let (input, seen) = self.artifacts.policy_input(&self.db, digest).await?;
                (input, Some(seen))
            }
            None => (serde_json::Value::Null, None),
        };
        let cost = self.cost(environment, yaml).await;
        let input = serde_json::json!({ "environment": environment, "workload": spec, "artifact": artifact, "cost": cost.input() });
        Ok(Judged { decision: self.policy.decide(&input)?, seen, cost })
    }

    /// The cost scheduler's forecast; a deploy does not wait on a cost
    /// scheduler that is down (its budgets go unchecked, and the policy says so).
    async fn cost(&self, environment: &str, yaml: &str) -> Cost {
        let Some(costs) = &self.costs else { return Cost::Unasked };
        let request = GetCostForecastRequest { environment: environment.to_string(), spec_yaml: yaml.to_string() };
        let asked = tokio::time::timeout(std::time::Duration::from_secs(2), costs.clone().get_cost_forecast(request)).await;
        match asked {
            Ok(Ok(answer)) => answer.into_inner().forecast.map_or_else(|| Cost::Unavailable("an empty answer".into()), Cost::Known),
            Ok(Err(status)) => {
                tracing::warn!(%status, "the cost scheduler gave no forecast; budgets are not checked");
                Cost::Unavailable(format!("the cost scheduler answered {:?}", status.code()))
            }
            Err(_) => {
                tracing::warn!("the cost scheduler did not answer within 2 s; budgets are not checked");
                Cost::Unavailable("the cost scheduler did not answer within 2 s".into())
            }
        }
    }
}
