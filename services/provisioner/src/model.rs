//! The provisioner's domain types, between the database rows and the API.

use paved_proto::provisioner::v1 as pb;
use paved_proto::timestamp_from_millis;
use sea_orm::{DbErr, QueryResult};

/// Now, as the records keep time (every `*_ms` field): milliseconds since
/// the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Pending,
    Starting,
    Healthy,
    Unhealthy,
    Failed,
    Stopped,
}

impl State {
    pub const ACTIVE: [State; 4] = [State::Pending, State::Starting, State::Healthy, State::Unhealthy];

    pub fn to_proto(self) -> pb::RevisionState {
        match self {
            State::Pending => pb::RevisionState::Pending,
            State::Starting => pb::RevisionState::Starting,
            State::Healthy => pb::RevisionState::Healthy,
            State::Unhealthy => pb::RevisionState::Unhealthy,
            State::Failed => pb::RevisionState::Failed,
            State::Stopped => pb::RevisionState::Stopped,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.to_proto().short_name()
    }

    pub fn parse(s: &str) -> Option<State> {
        [State::Pending, State::Starting, State::Healthy, State::Unhealthy, State::Failed, State::Stopped]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// The runtime's states are the ones it reports; `Pending` is the record's
/// alone (recorded, not yet asked to start).
impl From<paved_local::State> for State {
    fn from(state: paved_local::State) -> Self {
        match state {
            paved_local::State::Starting => State::Starting,
            paved_local::State::Healthy => State::Healthy,
            paved_local::State::Unhealthy => State::Unhealthy,
            paved_local::State::Failed => State::Failed,
            paved_local::State::Stopped => State::Stopped,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    pub environment: String,
    pub current_revision: Option<String>,
    /// Takes the stable share of traffic.
    pub stable_revision: Option<String>,
    /// The known-good revision before the stable one, kept running.
    pub standby_revision: Option<String>,
    pub proxy_port: u16,
    pub create_time_ms: i64,
    /// Why it sleeps (`schedule`, `idle`, `person`); None while awake.
    pub sleep_reason: Option<String>,
    /// Until when a person's sleep or wake holds against the schedule (Unix ms).
    pub hold_until_ms: Option<i64>,
}

impl Workload {
    pub fn id(&self) -> String {
        workload_id(&self.environment, &self.name)
    }

    pub fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        let port: i32 = row.try_get("", "proxy_port")?;
        Ok(Self {
            name: row.try_get("", "name")?,
            environment: row.try_get("", "environment")?,
            current_revision: row.try_get("", "current_revision")?,
            stable_revision: row.try_get("", "stable_revision")?,
            standby_revision: row.try_get("", "standby_revision")?,
            proxy_port: u16::try_from(port).map_err(|_| DbErr::Type(format!("proxy_port {port} out of range")))?,
            create_time_ms: row.try_get("", "create_time_ms")?,
            sleep_reason: row.try_get("", "sleep_reason")?,
            hold_until_ms: row.try_get("", "hold_until_ms")?,
        })
    }
}

pub fn workload_id(environment: &str, name: &str) -> String {
    format!("{environment}/{name}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub id: String,
    pub workload_id: String,
    pub number: i64,
    pub state: State,
    pub message: String,
    pub spec_yaml: String,
    pub spec_digest: String,
    pub spec_path: String,
    pub create_time_ms: i64,
    pub update_time_ms: i64,
}

impl Revision {
    pub fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        let state: String = row.try_get("", "state")?;
        Ok(Self {
            id: row.try_get("", "id")?,
            workload_id: row.try_get("", "workload_id")?,
            number: row.try_get("", "number")?,
            state: State::parse(&state).ok_or_else(|| DbErr::Type(format!("unknown revision state {state:?}")))?,
            message: row.try_get("", "message")?,
            spec_yaml: row.try_get("", "spec_yaml")?,
            spec_digest: row.try_get("", "spec_digest")?,
            spec_path: row.try_get("", "spec_path")?,
            create_time_ms: row.try_get("", "create_time_ms")?,
            update_time_ms: row.try_get("", "update_time_ms")?,
        })
    }

    /// (environment, name) of the workload.
    pub fn workload(&self) -> (&str, &str) {
        self.workload_id.split_once('/').unwrap_or(("", &self.workload_id))
    }

    /// The spec this revision runs, parsed. A revision's spec never changes,
    /// so it is parsed where a revision is loaded to be run or judged, once,
    /// and passed on from there (a rollout's driver keeps it for all its
    /// passes). It was valid when applied; one that no longer parses (a
    /// stricter parser since) is each caller's to report.
    pub fn parse_spec(&self) -> Result<paved_spec::WorkloadSpec, paved_spec::SpecError> {
        paved_spec::parse(&self.spec_yaml, &self.spec_path)
    }

    pub fn to_proto(&self) -> pb::Revision {
        let (environment, workload) = self.workload();
        pb::Revision {
            id: self.id.clone(),
            workload: workload.to_string(),
            environment: environment.to_string(),
            number: self.number,
            state: self.state.to_proto() as i32,
            message: self.message.clone(),
            spec_yaml: self.spec_yaml.clone(),
            spec_digest: self.spec_digest.clone(),
            create_time: Some(timestamp_from_millis(self.create_time_ms)),
            update_time: Some(timestamp_from_millis(self.update_time_ms)),
        }
    }
}

/// Where a rollout is in its pipeline. Each stage has a machine-evaluable
/// outcome; the stage is committed before it acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Validate,
    Policy,
    Identity,
    Start,
    Step,
    Promote,
    Done,
}

impl Stage {
    pub fn to_proto(self) -> pb::RolloutStage {
        match self {
            Stage::Validate => pb::RolloutStage::Validate,
            Stage::Policy => pb::RolloutStage::Policy,
            Stage::Identity => pb::RolloutStage::Identity,
            Stage::Start => pb::RolloutStage::Start,
            Stage::Step => pb::RolloutStage::Step,
            Stage::Promote => pb::RolloutStage::Promote,
            Stage::Done => pb::RolloutStage::Done,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.to_proto().short_name()
    }

    pub fn parse(s: &str) -> Option<Stage> {
        [Stage::Validate, Stage::Policy, Stage::Identity, Stage::Start, Stage::Step, Stage::Promote, Stage::Done]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    Running,
    Paused,
    Promoted,
    RolledBack,
    Aborted,
    Superseded,
}

impl RolloutState {
    pub const ACTIVE: [RolloutState; 2] = [RolloutState::Running, RolloutState::Paused];

    pub fn is_active(self) -> bool {
        Self::ACTIVE.contains(&self)
    }

    pub fn to_proto(self) -> pb::RolloutState {
        match self {
            RolloutState::Running => pb::RolloutState::Running,
            RolloutState::Paused => pb::RolloutState::Paused,
            RolloutState::Promoted => pb::RolloutState::Promoted,
            RolloutState::RolledBack => pb::RolloutState::RolledBack,
            RolloutState::Aborted => pb::RolloutState::Aborted,
            RolloutState::Superseded => pb::RolloutState::Superseded,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.to_proto().short_name()
    }

    pub fn parse(s: &str) -> Option<RolloutState> {
        [
            RolloutState::Running,
            RolloutState::Paused,
            RolloutState::Promoted,
            RolloutState::RolledBack,
            RolloutState::Aborted,
            RolloutState::Superseded,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// One recorded transition of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transition {
    pub time_ms: i64,
    pub stage: Stage,
    pub state: RolloutState,
    pub weight: u32,
    pub message: String,
}

/// The runtime's name for a rollout's baseline: instances of the stable
/// revision that take the same share of traffic as the canary, so that the
/// two are compared under the same conditions (a stable revision serving
/// the rest of the traffic runs warmer caches and fuller pools). It has no
/// record of its own: it lives and dies with the rollout's step stage.
pub fn baseline_key(stable_revision: &str) -> String {
    format!("{stable_revision}{BASELINE}")
}

/// Whether a runtime key names a baseline rather than a revision.
pub fn is_baseline(key: &str) -> bool {
    key.ends_with(BASELINE)
}

pub(crate) const BASELINE: &str = "~baseline";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub id: String,
    pub workload_id: String,
    /// The new revision (the canary).
    pub revision_id: String,
    /// The revision it takes over from; None for a workload's first.
    pub stable_revision: Option<String>,
    pub stage: Stage,
    pub state: RolloutState,
    /// Index into the revision's rollout steps.
    pub step: u32,
    /// The canary's traffic share now, in percent.
    pub weight: u32,
    pub message: String,
    pub history: Vec<Transition>,
    pub version: i64,
    pub step_start_ms: i64,
    pub create_time_ms: i64,
    pub update_time_ms: i64,
}

impl Rollout {
    pub fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        let stage: String = row.try_get("", "stage")?;
        let state: String = row.try_get("", "state")?;
        let history: String = row.try_get("", "history")?;
        let int = |name: &str| -> Result<u32, DbErr> {
            let v: i32 = row.try_get("", name)?;
            u32::try_from(v).map_err(|_| DbErr::Type(format!("rollout {name} {v} out of range")))
        };
        Ok(Self {
            id: row.try_get("", "id")?,
            workload_id: row.try_get("", "workload_id")?,
            revision_id: row.try_get("", "revision_id")?,
            stable_revision: row.try_get("", "stable_revision")?,
            stage: Stage::parse(&stage).ok_or_else(|| DbErr::Type(format!("unknown rollout stage {stage:?}")))?,
            state: RolloutState::parse(&state).ok_or_else(|| DbErr::Type(format!("unknown rollout state {state:?}")))?,
            step: int("step")?,
            weight: int("weight")?,
            message: row.try_get("", "message")?,
            history: serde_json::from_str(&history).map_err(|e| DbErr::Type(format!("rollout history: {e}")))?,
            version: row.try_get("", "version")?,
            step_start_ms: row.try_get("", "step_start_ms")?,
            create_time_ms: row.try_get("", "create_time_ms")?,
            update_time_ms: row.try_get("", "update_time_ms")?,
        })
    }

    /// (environment, name) of the workload.
    pub fn workload(&self) -> (&str, &str) {
        self.workload_id.split_once('/').unwrap_or(("", &self.workload_id))
    }

    /// `steps` are the revision's rollout steps.
    pub fn to_proto(&self, steps: &[u32]) -> pb::Rollout {
        let (environment, workload) = self.workload();
        let to_i32 = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        pb::Rollout {
            id: self.id.clone(),
            workload: workload.to_string(),
            environment: environment.to_string(),
            revision_id: self.revision_id.clone(),
            stable_revision_id: self.stable_revision.clone().unwrap_or_default(),
            stage: self.stage.to_proto() as i32,
            state: self.state.to_proto() as i32,
            step: to_i32(self.step),
            weight: to_i32(self.weight),
            steps: steps.iter().copied().map(to_i32).collect(),
            message: self.message.clone(),
            step_start_time: Some(timestamp_from_millis(self.step_start_ms)),
            create_time: Some(timestamp_from_millis(self.create_time_ms)),
            update_time: Some(timestamp_from_millis(self.update_time_ms)),
            history: self
                .history
                .iter()
                .map(|t| pb::RolloutTransition {
                    time: Some(timestamp_from_millis(t.time_ms)),
                    stage: t.stage.to_proto() as i32,
                    state: t.state.to_proto() as i32,
                    weight: to_i32(t.weight),
                    message: t.message.clone(),
                })
                .collect(),
        }
    }
}
