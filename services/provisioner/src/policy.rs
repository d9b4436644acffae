//! The policy gate: the bundle's decision on deploying a spec to an
//! environment. An artifact named by digest must exist, and its
//! attestations are part of the input. Asked by an apply (before anything
//! is recorded) and again by the rollout's policy stage (the bundle may
//! have changed since).

use crate::artifacts::{self, ArtifactError};
use paved_policy::{Bundle, Decision, PolicyError};
use sea_orm::DatabaseConnection;
use std::sync::Arc;

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
}

impl Gate {
    pub(crate) fn new(policy: Bundle, artifacts: Arc<artifacts::Store>, db: DatabaseConnection) -> Self {
        Self { policy, artifacts, db }
    }

    /// The policy gate's decision on deploying `spec` to `environment`; an
    /// artifact named by digest must exist, and its attestations are input.
    pub(crate) async fn decide(&self, environment: &str, spec: &paved_spec::WorkloadSpec) -> Result<Decision, GateError> {
        Ok(self.decide_seeing(environment, spec).await?.0)
    }

    /// [`Gate::decide`], with the artifact the decision saw (none when the
    /// spec names no artifact by digest).
    pub(crate) async fn decide_seeing(
        &self,
        environment: &str,
        spec: &paved_spec::WorkloadSpec,
    ) -> Result<(Decision, Option<artifacts::Seen>), GateError> {
        let (artifact, seen) = match &spec.run {
            paved_spec::Run::Artifact(digest) if digest.starts_with("sha256:") => {
                let (input, seen) = self.artifacts.policy_input(&self.db, digest).await?;
                (input, Some(seen))
            }
            _ => (serde_json::Value::Null, None),
        };
        let input = serde_json::json!({ "environment": environment, "workload": spec, "artifact": artifact });
        Ok((self.policy.decide(&input)?, seen))
    }
}
