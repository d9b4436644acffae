//! [`Launch`]: what the runtime is told to start. Its own module, below
//! `identity`, `monitor` and `runtime`, which all read it.

use paved_spec::WorkloadSpec;
use std::path::PathBuf;

/// What the runtime needs to start a revision.
#[derive(Debug, Clone)]
pub struct Launch {
    /// What the runtime knows it by (a baseline's differs from its revision's).
    pub revision_id: String,
    /// The revision it runs: its lineage in traces.
    pub revision: String,
    pub workload: String,
    pub environment: String,
    pub spec: WorkloadSpec,
    /// Working directory: the spec's directory.
    pub workdir: PathBuf,
    /// Environment beyond the spec's (the provisioner gives its own
    /// services, environment `platform`, how they reach their databases).
    pub extra_env: std::collections::BTreeMap<String, String>,
    /// `sha256:…` when the revision runs an artifact of the store.
    pub artifact_digest: String,
}
