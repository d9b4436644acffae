//! Applying a spec and planning one: the policy gate first (a denied spec
//! records nothing), then the workload, its new revision and its rollout
//! in one transaction, and the rollout's driver started. Also the workload
//! views the API and the CLI read.

use crate::{
    model::{self, Revision, Rollout, RolloutState, State, Workload},
    policy::{Cost, Gate, GateError, Judged},
    records::Records,
    rollout::Driver,
    routing::Routing,
    runner::Runner,
    store,
};
use paved_spec::{SpecError, WorkloadSpec};
use paved_telemetry::propagation::Lineage;
use sea_orm::{DbErr, TransactionTrait};
use std::sync::Arc;
use tracing::Instrument;

/// A spec as a request submits it: its text and the file it was read from,
/// parsed once, at the edge (the API checks the caller may deploy the
/// workload it names before the apply runs).
#[derive(Debug, Clone)]
pub struct Submitted<'a> {
    pub yaml: &'a str,
    /// Where it was read from; may be empty.
    pub path: &'a str,
    pub spec: Result<WorkloadSpec, SpecError>,
}

impl<'a> Submitted<'a> {
    pub fn parse(yaml: &'a str, path: &'a str) -> Self {
        let file = if path.is_empty() { "paved.yaml" } else { path };
        Self { yaml, path, spec: paved_spec::parse(yaml, file) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Spec(#[from] paved_spec::SpecError),
    #[error("invalid environment: {0}")]
    Environment(String),
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("cannot open the workload's proxy port: {0}")]
    Proxy(std::io::Error),
    #[error("denied by policy (bundle {}): {}", .0.bundle_digest, .0.denials.join("; "))]
    Denied(paved_policy::Decision),
    #[error(transparent)]
    Policy(#[from] paved_policy::PolicyError),
    #[error(transparent)]
    Artifact(#[from] crate::artifacts::ArtifactError),
}

impl From<GateError> for ApplyError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::Policy(e) => ApplyError::Policy(e),
            GateError::Artifact(e) => ApplyError::Artifact(e),
        }
    }
}

/// Whether `revision` is a live run of the spec with `digest`. A revision is
/// what runs (the spec's digest, which covers an artifact's digest), never
/// where its file was read from: the same spec applied from another
/// checkout changes nothing. (The path stays with the revision as a label
/// for messages, and as the directory a relative command first ran in.)
fn runs_spec(revision: &Revision, digest: &str) -> bool {
    revision.spec_digest == digest && !matches!(revision.state, State::Failed | State::Stopped)
}

/// Why a plan does what it does, in words for people: for an update of an
/// unchanged spec, the state of the revision that makes it one.
fn plan_reason(current: Option<&Revision>, digest: &str) -> String {
    match current {
        None => "no revision of this workload runs".to_string(),
        Some(r) if r.spec_digest != digest => format!("the spec differs from revision {}'s", r.number),
        Some(r) if matches!(r.state, State::Failed | State::Stopped) => {
            let why = if r.message.is_empty() { String::new() } else { format!(": {}", r.message) };
            format!("revision {} runs this spec but is {}{why}", r.number, r.state.as_str())
        }
        Some(r) => format!("revision {} runs this spec", r.number),
    }
}

/// What an apply would do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub action: PlanAction,
    pub current_revision: Option<String>,
    pub changes: Vec<paved_spec::FieldChange>,
    /// Differences between what was applied and what runs.
    pub drift: Vec<String>,
    pub decision: paved_policy::Decision,
    /// Why this action, in words for people.
    pub reason: String,
    /// What the change costs a month, and the team's budget.
    pub cost: Cost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanAction {
    None,
    Create,
    Update,
}

/// The result of an apply.
#[derive(Debug, Clone)]
pub struct Applied {
    pub workload: WorkloadView,
    pub revision: Revision,
    pub changed: bool,
    /// The rollout the apply started, or the one already under way for the same spec.
    pub rollout: Option<Rollout>,
    /// What the policy gate let pass with a warning.
    pub warnings: Vec<String>,
}

/// A workload with its current revision's state, its endpoint and its newest rollout.
#[derive(Debug, Clone)]
pub struct WorkloadView {
    pub workload: Workload,
    pub state: Option<State>,
    pub endpoint: String,
    pub rollout_id: Option<String>,
    /// While it sleeps by its schedule: when the schedule wakes it (Unix ms).
    pub wake_time_ms: Option<i64>,
    /// The last request its proxy saw (Unix ms) since the platform started.
    pub last_request_ms: Option<i64>,
}

impl WorkloadView {
    pub fn sleeping(&self) -> bool {
        self.workload.sleep_reason.is_some()
    }
}

pub(crate) struct Applier {
    records: Arc<Records>,
    routing: Arc<Routing>,
    runner: Arc<Runner>,
    gate: Arc<Gate>,
    driver: Arc<Driver>,
}

impl Applier {
    pub(crate) fn new(records: Arc<Records>, routing: Arc<Routing>, runner: Arc<Runner>, gate: Arc<Gate>, driver: Arc<Driver>) -> Self {
        Self { records, routing, runner, gate, driver }
    }

    /// Registers the workload if new and deploys a revision of `spec_yaml`,
    /// unless the current revision already runs the same spec.
    pub(crate) async fn apply(&self, environment: &str, submitted: Submitted<'_>, request_id: &str) -> Result<Applied, ApplyError> {
        paved_spec::validate_name(environment).map_err(ApplyError::Environment)?;
        let Submitted { yaml: spec_yaml, path: spec_path, spec } = submitted;
        let spec = spec?;
        let digest = spec.digest();
        // The cheapest decisive check first: a denied spec records nothing.
        let decision = self.gate.decide(environment, &spec, spec_yaml).await?;
        if !decision.allowed() {
            return Err(ApplyError::Denied(decision));
        }
        let warnings = decision.warnings;
        let db = self.records.db();
        let _guard = self.records.apply_lock().await;

        if !request_id.is_empty()
            && let Some(revision) = store::revision_by_request(db, request_id).await?
        {
            let (env, name) = revision.workload();
            let workload = store::get_workload(db, env, name).await?.ok_or_else(|| DbErr::RecordNotFound(revision.workload_id.clone()))?;
            let rollout = store::list_rollouts(db, &workload.id(), 1, 0).await?.into_iter().find(|r| r.revision_id == revision.id);
            return Ok(Applied { workload: self.view(workload).await?, revision, changed: false, rollout, warnings });
        }

        // A new workload's proxy port, free when asked, is recorded with it;
        // its proxy opens there once committed (see `Routing::reserve`).
        let mut reserved = None;
        // A driver may move a rollout of this workload while we write (a
        // step, a pause): then nothing is committed and we read again.
        let mut attempt = 0;
        let (mut workload, revision, rollout, superseded) = loop {
            attempt += 1;
            let txn = db.begin().await?;
            let (workload, new) = match store::get_workload(&txn, environment, &spec.name).await? {
                Some(w) => (w, false),
                None => {
                    if reserved.is_none() {
                        reserved = Some(self.routing.reserve().await.map_err(ApplyError::Proxy)?);
                    }
                    let port = reserved.unwrap_or(0);
                    (store::insert_workload(&txn, environment, &spec.name, port).await?, true)
                }
            };
            let active = if new { Vec::new() } else { store::active_rollouts(&txn, Some(&workload.id())).await? };
            let current = match &workload.current_revision {
                Some(id) => store::get_revision(&txn, id).await?,
                None => None,
            };
            if let Some(revision) = current.clone()
                && runs_spec(&revision, &digest)
            {
                txn.commit().await?;
                let rollout = active.into_iter().find(|r| r.revision_id == revision.id);
                return Ok(Applied { workload: self.view(workload).await?, revision, changed: false, rollout, warnings });
            }
            // A spec sent without where it came from (a change made from the
            // running one, such as `paved cost rightsize --apply`) runs where
            // the revision it replaces ran.
            let spec_path = match (spec_path, &current) {
                ("", Some(revision)) => revision.spec_path.as_str(),
                (path, _) => path,
            };
            let revision =
                store::insert_revision(&txn, &workload, store::NewRevision { spec_yaml, spec_digest: &digest, spec_path, request_id })
                    .await?;
            // A rollout under way gives way to the newer revision; its canary stops.
            let mut superseded = Vec::new();
            for old in &active {
                let change = store::Change {
                    stage: model::Stage::Done,
                    state: RolloutState::Superseded,
                    weight: 0,
                    ..store::Change::from(old, format!("superseded by revision {}", revision.number))
                };
                if store::update_rollout(&txn, old, change).await?.is_none() {
                    break;
                }
                superseded.push(old.revision_id.clone());
            }
            if superseded.len() < active.len() {
                if attempt < 20 {
                    continue;
                }
                return Err(ApplyError::Database(DbErr::Custom("a rollout of this workload keeps changing; retry".into())));
            }
            let rollout = store::insert_rollout(&txn, &workload, &revision.id, workload.stable_revision.as_deref()).await?;
            txn.commit().await?;
            break (workload, revision, rollout, superseded);
        };
        self.records.committed(&workload.id());
        // The call's span, and the rollout's (which the calls it makes carry
        // on to the broker and the analyzer), name what they deploy.
        let lineage = Lineage {
            workload: format!("{environment}/{}", spec.name),
            revision: revision.id.clone(),
            artifact_digest: spec.artifact_digest().unwrap_or_default().to_string(),
        };
        lineage.record(&tracing::Span::current());
        let empty = tracing::field::Empty;
        // In the apply's trace but not its child in-process: the call's span
        // ends with the call, the rollout's with the rollout.
        let span = tracing::info_span!(parent: None, "rollout", rollout.id = %rollout.id, paved.workload = empty, paved.revision = empty, paved.artifact_digest = empty);
        lineage.carry(&span);

        // Committed: the rest runs in a task of its own, so a client that
        // disconnects now cannot leave the rollout recorded but never driven.
        let (routing, runner, driver) = (self.routing.clone(), self.runner.clone(), self.driver.clone());
        let started = tokio::spawn({
            let (workload, rollout_id) = (workload.clone(), rollout.id.clone());
            async move {
                if reserved.is_some()
                    && let Err(e) = routing.ensure(&workload).await
                {
                    tracing::warn!(workload = %workload.id(), error = %e, "cannot open the new workload's proxy; the rollout retries");
                }
                // Stopped in the background: a stop may wait out a grace
                // period, and the apply lock is held until this task ends.
                let keep = [&workload.stable_revision, &workload.standby_revision];
                let stop: Vec<String> = superseded.into_iter().filter(|id| !keep.iter().any(|k| k.as_ref() == Some(id))).collect();
                // A superseded canary leaves the routes before it stops (the
                // new rollout routes nothing to its canary until it is healthy).
                if !stop.is_empty() {
                    routing.route_or_warn(&workload.id()).await;
                }
                runner.stop_later(&routing, &workload.id(), stop);
                // The spec as parsed here: the driver need not parse it again.
                driver.drive(rollout_id, &workload.id(), Some(spec));
            }
            .instrument(span)
        });
        if let Err(e) = started.await {
            tracing::error!(error = %e, "starting a rollout panicked");
        }
        // As committed: no need to read it back.
        workload.current_revision = Some(revision.id.clone());
        let last_request_ms = self.routing.last_request_ms(&workload.id()).await;
        let view = self.view_of(workload, Some(revision.state), Some(rollout.id.clone()), last_request_ms);
        Ok(Applied { workload: view, revision, changed: true, rollout: Some(rollout), warnings })
    }

    /// What `apply` would change for this spec, and the drift of what runs.
    pub(crate) async fn plan(&self, environment: &str, submitted: Submitted<'_>) -> Result<Plan, ApplyError> {
        paved_spec::validate_name(environment).map_err(ApplyError::Environment)?;
        let spec = submitted.spec?;
        let Judged { decision, cost, .. } = self.gate.judge(environment, &spec, submitted.yaml).await?;
        let db = self.records.db();
        let Some(workload) = store::get_workload(db, environment, &spec.name).await? else {
            let changes = paved_spec::diff(None, &spec);
            let reason = format!("no workload {} in {environment}", spec.name);
            let action = PlanAction::Create;
            return Ok(Plan { action, current_revision: None, changes, drift: Vec::new(), decision, reason, cost });
        };
        let current = match &workload.current_revision {
            Some(id) => store::get_revision(db, id).await?,
            None => None,
        };
        let before = current.as_ref().and_then(|r| r.parse_spec().ok());
        let changes = paved_spec::diff(before.as_ref(), &spec);
        let digest = spec.digest();
        let action = match &current {
            Some(r) if runs_spec(r, &digest) => PlanAction::None,
            _ => PlanAction::Update,
        };
        let reason = plan_reason(current.as_ref(), &digest);
        let mut drift = Vec::new();
        let rollouts = store::active_rollouts(db, Some(&workload.id())).await?;
        let desired = workload.stable_revision.iter().chain(&workload.standby_revision).chain(rollouts.iter().map(|r| &r.revision_id));
        for id in desired {
            if let Some(r) = store::get_revision(db, id).await?
                && r.state != State::Healthy
            {
                let why = if r.message.is_empty() { String::new() } else { format!(": {}", r.message) };
                drift.push(format!("revision {} should be healthy but is {}{why}", r.number, r.state.as_str()));
            }
        }
        Ok(Plan { action, current_revision: workload.current_revision, changes, drift, decision, reason, cost })
    }

    pub(crate) async fn workload(&self, environment: &str, name: &str) -> Result<Option<WorkloadView>, DbErr> {
        match store::get_workload(self.records.db(), environment, name).await? {
            Some(w) => Ok(Some(self.view(w).await?)),
            None => Ok(None),
        }
    }

    pub(crate) async fn workloads(&self, environment: &str, limit: u64, offset: u64) -> Result<Vec<WorkloadView>, DbErr> {
        let page = store::list_workloads(self.records.db(), environment, limit, offset).await?;
        let last_requests = if page.is_empty() { Default::default() } else { self.routing.last_requests().await };
        let mut out = Vec::with_capacity(page.len());
        for w in page {
            let last_request_ms = last_requests.get(&w.id()).copied();
            out.push(self.view_with(w, last_request_ms).await?);
        }
        Ok(out)
    }

    pub(crate) async fn view(&self, workload: Workload) -> Result<WorkloadView, DbErr> {
        let last_request_ms = self.routing.last_request_ms(&workload.id()).await;
        self.view_with(workload, last_request_ms).await
    }

    /// The view of `workload`, with when its proxy last had a request.
    async fn view_with(&self, workload: Workload, last_request_ms: Option<i64>) -> Result<WorkloadView, DbErr> {
        let state = match &workload.current_revision {
            Some(id) => store::get_revision(self.records.db(), id).await?.map(|r| r.state),
            None => None,
        };
        let rollout_id = store::list_rollouts(self.records.db(), &workload.id(), 1, 0).await?.into_iter().next().map(|r| r.id);
        let mut view = self.view_of(workload, state, rollout_id, last_request_ms);
        if view.workload.sleep_reason.as_deref() == Some("schedule")
            && let Some(schedule) = self.records.schedule_of(&view.workload).await?
        {
            view.wake_time_ms = schedule.next_change(chrono::Utc::now()).map(|t| t.timestamp_millis());
        }
        Ok(view)
    }

    fn view_of(&self, workload: Workload, state: Option<State>, rollout_id: Option<String>, last_request_ms: Option<i64>) -> WorkloadView {
        let endpoint = self.routing.endpoint(&workload);
        WorkloadView { workload, state, endpoint, rollout_id, wake_time_ms: None, last_request_ms }
    }
}
