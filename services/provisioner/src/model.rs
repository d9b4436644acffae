//! The provisioner's domain types, between the database rows and the API.

use paved_proto::provisioner::v1 as pb;
use paved_proto::timestamp_from_millis;
use sea_orm::{DbErr, QueryResult};

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    pub environment: String,
    pub current_revision: Option<String>,
    pub proxy_port: u16,
    pub create_time_ms: i64,
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
            proxy_port: u16::try_from(port).map_err(|_| DbErr::Type(format!("proxy_port {port} out of range")))?,
            create_time_ms: row.try_get("", "create_time_ms")?,
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
