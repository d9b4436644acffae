//! How the provisioner's errors reach a client: each as its canonical code,
//! reason and field violations; a storage cause logged under an error id.

use crate::{apply::ApplyError, artifacts::ArtifactError, power::PowerError, rollout::RolloutError};
use paved_grpc::status;
use sea_orm::DbErr;
use tonic::Status;

impl From<ApplyError> for Status {
    fn from(e: ApplyError) -> Status {
        applied(e, "spec_yaml")
    }
}

/// An apply's error, naming the spec's fields under `spec_field` (the
/// request's `spec_yaml`, or `spec` for a message).
pub(super) fn applied(e: ApplyError, spec_field: &str) -> Status {
    match e {
        ApplyError::Spec(spec) => status::invalid_argument("INVALID_SPEC", spec.to_string(), [spec.violation(spec_field)]),
        ApplyError::Environment(message) => {
            status::invalid_argument("INVALID_ENVIRONMENT", message.clone(), [("environment".into(), message)])
        }
        ApplyError::Database(e) => database(e),
        ApplyError::Proxy(e) => status::logged(tonic::Code::Unavailable, "PROXY_PORT", "cannot open the workload's proxy; retry", &e),
        ApplyError::Denied(decision) => status::failed_precondition(
            "POLICY_DENIED",
            format!("denied by policy (bundle {}):\n  {}", decision.bundle_digest, decision.denials.join("\n  ")),
        ),
        ApplyError::Policy(e) => status::internal(&e),
        ApplyError::Artifact(ArtifactError::Unknown(digest)) => {
            let message = format!("no artifact {digest}: push it with `paved artifact push`");
            status::invalid_argument("UNKNOWN_ARTIFACT", message.clone(), [(format!("{spec_field}.artifact"), message)])
        }
        ApplyError::Artifact(e) => Status::from(e),
    }
}

impl From<RolloutError> for Status {
    fn from(e: RolloutError) -> Status {
        match e {
            RolloutError::NotFound(message) => status::not_found("ROLLOUT_NOT_FOUND", message),
            RolloutError::NoWorkload(message) => status::not_found("WORKLOAD_NOT_FOUND", message),
            RolloutError::Precondition(message) => status::failed_precondition("ROLLOUT_STATE", message),
            RolloutError::Database(e) => database(e),
        }
    }
}

impl From<PowerError> for Status {
    fn from(e: PowerError) -> Status {
        match e {
            PowerError::NotFound(message) => status::not_found("WORKLOAD_NOT_FOUND", message),
            PowerError::Precondition(message) => status::failed_precondition("WORKLOAD_STATE", message),
            PowerError::Database(e) => database(e),
        }
    }
}

impl From<ArtifactError> for Status {
    fn from(e: ArtifactError) -> Status {
        match e {
            ArtifactError::Mismatch { .. } => {
                status::invalid_argument("DIGEST_MISMATCH", e.to_string(), [("expected_digest".into(), e.to_string())])
            }
            ArtifactError::Unknown(_) => status::not_found("ARTIFACT_NOT_FOUND", e.to_string()),
            ArtifactError::Invalid(inner) => {
                let field = match inner {
                    paved_attest::AttestError::Digest(_) => "digest",
                    paved_attest::AttestError::Kind(_) => "kind",
                    paved_attest::AttestError::Key(_) => "public_key",
                    paved_attest::AttestError::Signature(_) => "signature",
                };
                status::invalid_argument("INVALID_ATTESTATION", inner.to_string(), [(field.to_string(), inner.to_string())])
            }
            ArtifactError::Payload(_) => {
                status::invalid_argument("INVALID_PAYLOAD", e.to_string(), [("payload_json".into(), e.to_string())])
            }
            ArtifactError::Untrusted(_) => status::permission_denied("UNTRUSTED_KEY", e.to_string()),
            ArtifactError::Io(io) => {
                status::logged(tonic::Code::Unavailable, "ARTIFACT_STORE", "the artifact store cannot be written; retry", &io)
            }
            ArtifactError::Database(db) => database(db),
        }
    }
}

pub(super) fn pr_number(pr: i32) -> Result<u32, Status> {
    u32::try_from(pr).ok().filter(|n| *n > 0).ok_or_else(|| {
        status::invalid_argument(
            "INVALID_PR",
            format!("pr must be a positive pull request number, got {pr}"),
            [("pr".into(), "must be positive".into())],
        )
    })
}

pub(super) fn database(e: DbErr) -> Status {
    status::storage(&e)
}

pub(super) fn required(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        return Err(status::invalid_argument(
            "MISSING_FIELD",
            format!("{field} is required"),
            [(field.to_string(), "required".to_string())],
        ));
    }
    Ok(())
}

pub(super) fn workload_not_found(environment: &str, name: &str) -> Status {
    status::not_found("WORKLOAD_NOT_FOUND", format!("no workload {name} in environment {environment}"))
}
