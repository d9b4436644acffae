//! The stages before anything runs — validate, policy, identity. They are
//! decisions without side effects, so a rollout passes them all in one
//! transaction, or is rolled back with the policy's denials.

use super::{step::Next, transitions::Transitions};
use crate::{
    artifacts::ArtifactError,
    model::{Revision, Rollout, RolloutState, Stage},
    policy::{Gate, GateError},
    records::Records,
    store::{self, Change},
};
use sea_orm::{DbErr, TransactionTrait};
use std::sync::Arc;

pub(super) struct Admission {
    records: Arc<Records>,
    gate: Arc<Gate>,
    transitions: Arc<Transitions>,
}

impl Admission {
    pub(super) fn new(records: Arc<Records>, gate: Arc<Gate>, transitions: Arc<Transitions>) -> Self {
        Self { records, gate, transitions }
    }

    /// The stages before anything runs — validate, policy, identity — are
    /// decisions without side effects, so their transitions (and the policy
    /// decision) are committed together, from whichever of them the rollout
    /// is at, in one transaction: on to start, or rolled back with the
    /// denials.
    pub(super) async fn admit(&self, r: &Rollout, revision: &Revision, spec: &paved_spec::WorkloadSpec) -> Result<Next, DbErr> {
        let (environment, name) = r.workload();
        // Decided again (the apply checked too): after a restart the bundle
        // may be another, and the decision recorded is this one.
        let (decision, seen) = match self.gate.judge(environment, spec, &revision.spec_yaml).await {
            Ok(judged) => (judged.decision, judged.seen),
            Err(e) => {
                // A rollout's history is read by clients: the artifact
                // store's own failure is logged under an id, not kept there.
                let why = match &e {
                    GateError::Artifact(ArtifactError::Database(_) | ArtifactError::Io(_)) => {
                        let id = paved_grpc::status::error_id();
                        tracing::error!(rollout = %r.id, error_id = %id, error = %e, "policy evaluation failed");
                        format!("policy evaluation failed: the artifact store could not be read (error id {id})")
                    }
                    e => format!("policy evaluation failed: {e}"),
                };
                return self.transitions.finish(r, RolloutState::RolledBack, &why).await.map(|_| Next::Again);
            }
        };
        let txn = self.records.db().begin().await?;
        let mut at = r.clone();
        let to = |at: &Rollout, stage, message: String| Change { stage, ..Change::from(at, message) };
        if at.stage == Stage::Validate {
            let change = to(&at, Stage::Policy, format!("spec valid ({})", revision.spec_digest));
            if !store::advance_rollout(&txn, &mut at, change).await? {
                return Ok(Next::Again);
            }
        }
        if at.stage == Stage::Policy {
            if decision.allowed() {
                let warnings =
                    if decision.warnings.is_empty() { String::new() } else { format!("; warnings: {}", decision.warnings.join("; ")) };
                let change = to(&at, Stage::Identity, format!("allowed by policy bundle {}{warnings}", decision.bundle_digest));
                if !store::advance_rollout(&txn, &mut at, change).await? {
                    return Ok(Next::Again);
                }
            }
            store::emit_policy_decision(&txn, &at, &decision, seen.as_ref()).await?;
        }
        if at.stage == Stage::Identity {
            let change = to(&at, Stage::Start, format!("identity spiffe://paved/{environment}/{name}; the secrets broker issues it"));
            if !store::advance_rollout(&txn, &mut at, change).await? {
                return Ok(Next::Again);
            }
        }
        txn.commit().await?;
        self.records.committed(&r.workload_id);
        if at.stage == Stage::Policy {
            let reason = format!("denied by policy bundle {}: {}", decision.bundle_digest, decision.denials.join("; "));
            self.transitions.finish(&at, RolloutState::RolledBack, &reason).await?;
        }
        Ok(Next::Again)
    }
}
