//! [`WorkloadSpec`], a validated spec as a whole: what it is made of, the
//! analysis it asks for, and its digest.

use crate::{
    analysis::Analysis,
    delivery::OnRotation,
    parts::{HealthCheck, Resources, RolloutPolicy, Run, Security},
    schedule::Schedule,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// A validated workload spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadSpec {
    pub name: String,
    /// The team that pays for it: cost is attributed to it, and a budget
    /// is set per team. The policy gate requires it in staging and prod.
    /// Absent, it is left out of the canonical form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub run: Run,
    pub port: u16,
    pub health: HealthCheck,
    pub env: BTreeMap<String, String>,
    pub replicas: u32,
    pub resources: Resources,
    pub security: Security,
    /// Names of the secrets the workload may read (`${secret:<name>}` in env).
    pub secrets: Vec<String>,
    /// Declared secrets written at launch to `$PAVED_SECRETS_DIR/<name>`
    /// (see `delivery`). Left out of the canonical form when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secret_files: Vec<String>,
    /// What a new version of a delivered secret does. Left out of the
    /// canonical form when it is the default.
    #[serde(skip_serializing_if = "OnRotation::is_default")]
    pub on_rotation: OnRotation,
    /// Databases configured at the broker whose dynamic credentials the
    /// workload may ask for (`database:creds:<name>`). Left out of the
    /// canonical form when empty, so older digests hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<String>,
    /// Whether its identity may enrol a certificate for its own SPIFFE id
    /// (`certs:issue:<env>/<workload>`), for mTLS. Left out of the
    /// canonical form when false, so older digests hold.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub certificate: bool,
    pub rollout: RolloutPolicy,
    /// As written; [`WorkloadSpec::analysis`] gives the defaults when absent.
    /// Absent, it is left out of the canonical form, so a spec written
    /// before analyses existed keeps its digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    /// When it sleeps (see `schedule`); absent, it never does, and it is
    /// left out of the canonical form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

impl WorkloadSpec {
    /// How the canary analyzer judges this workload's rollout steps: as
    /// written, or the defaults (error rate and p99 against the rollout's
    /// limits).
    pub fn analysis(&self) -> Analysis {
        self.analysis.clone().unwrap_or_else(|| Analysis::defaults(&self.rollout))
    }

    /// Whether a new version of a secret it is delivered changes something
    /// under a running process: a secret file, or env values when it
    /// restarts on rotation.
    pub fn rotates(&self) -> bool {
        !self.secret_files.is_empty() || (self.on_rotation == OnRotation::Restart && self.refers_to_secrets())
    }

    /// Whether the runtime must deliver secrets to start it: a secret file,
    /// or a `${secret:…}` in an env value.
    pub fn delivers_secrets(&self) -> bool {
        !self.secret_files.is_empty() || self.refers_to_secrets()
    }

    fn refers_to_secrets(&self) -> bool {
        self.env.values().any(|v| !crate::delivery::references(v).is_empty())
    }

    /// The artifact the spec runs by digest (`sha256:…`), if it names one
    /// (rather than a command, or an artifact by path).
    pub fn artifact_digest(&self) -> Option<&str> {
        match &self.run {
            Run::Artifact(d) if d.starts_with("sha256:") => Some(d),
            _ => None,
        }
    }

    /// `sha256:<hex>` of the spec's canonical JSON form: the same spec gives
    /// the same digest whatever its YAML formatting.
    pub fn digest(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        format!("sha256:{}", hex::encode(Sha256::digest(&canonical)))
    }
}
