//! The schedule loop: every pass, what the provisioner says of each
//! workload is judged against its spec's schedule (`decide`), and a sleep or
//! wake is a command to the provisioner. Nothing here stops a process: a
//! cost scheduler that is down leaves every workload as it is, and catches
//! up at its first pass when it is back.
//!
//! Reading every workload each pass, it also keeps what runs and what it
//! costs a month ([`Running`]) for forecasts and budgets.

use crate::decide::{Act, Seen, decide};
use crate::forecast::{self, Running};
use crate::prices::PriceSheet;
use chrono::{DateTime, Utc};
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{
    GetRevisionRequest, ListWorkloadsRequest, SleepWorkloadRequest, WakeWorkloadRequest, Workload,
    provisioner_service_client::ProvisionerServiceClient,
};
use paved_spec::{Schedule, ScheduleDefaults};
use std::{collections::HashMap, time::Duration};
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// How often schedules are evaluated.
pub const PASS: Duration = Duration::from_secs(1);

/// What a revision's spec says, read once: its schedule (or its
/// environment's default), its team and its month (recomputed hourly: its schedule's share of the next 30 days moves).
#[derive(Clone)]
struct Described {
    schedule: Option<Schedule>,
    team: String,
    monthly: forecast::Monthly,
    at: DateTime<Utc>,
    /// Requested per replica (0: nothing), and how many replicas.
    cpu_request: f64,
    memory_request: f64,
    replicas: u32,
}

pub struct Scheduler {
    client: ProvisionerServiceClient<AuthChannel>,
    /// Revision id → what its spec says (None: it does not parse).
    revisions: HashMap<String, Option<(paved_spec::WorkloadSpec, Described)>>,
    /// Workload id → since when it has been seen awake (Unix ms).
    awake_since: HashMap<String, i64>,
    running: Running,
    sheet: PriceSheet,
    /// What a workload whose spec has no schedule runs by.
    defaults: ScheduleDefaults,
}

impl Scheduler {
    pub fn new(client: ProvisionerServiceClient<AuthChannel>, running: Running, sheet: PriceSheet, defaults: ScheduleDefaults) -> Self {
        Self { client, revisions: HashMap::new(), awake_since: HashMap::new(), running, sheet, defaults }
    }

    pub async fn run(mut self, every: Duration, shutdown: CancellationToken) {
        let mut ticks = paved_service::Ticks::new(every, shutdown);
        while ticks.next().await {
            if let Err(e) = self.pass(Utc::now()).await {
                tracing::warn!(error = %e, "cannot evaluate schedules; trying again at the next pass");
            }
        }
    }

    /// One pass over every workload; returns how many commands were sent.
    pub async fn pass(&mut self, now: DateTime<Utc>) -> Result<usize, Status> {
        let workloads = self.workloads().await?;
        let mut sent = 0;
        let mut running = HashMap::new();
        for w in &workloads {
            let Some(described) = self.describe(&w.stable_revision, &w.environment, now).await? else { continue };
            let entry = forecast::Entry {
                team: described.team.clone(),
                monthly: described.monthly.cost,
                schedule: described.schedule.clone(),
                awake_share: described.monthly.awake_share,
                revision_id: w.stable_revision.clone(),
                cpu_request: described.cpu_request,
                memory_request: described.memory_request,
                replicas: described.replicas,
            };
            running.insert((w.environment.clone(), w.name.clone()), entry);
            let Some(schedule) = described.schedule else { continue };
            let id = format!("{}/{}", w.environment, w.name);
            let now_ms = now.timestamp_millis();
            let awake_since_ms = if w.sleeping {
                self.awake_since.remove(&id);
                now_ms
            } else {
                *self.awake_since.entry(id).or_insert(now_ms)
            };
            let seen = Seen {
                sleeping: w.sleeping,
                sleep_reason: w.sleep_reason.clone(),
                hold_until_ms: w.hold_until.as_ref().map(paved_proto::millis_from_timestamp),
                last_request_ms: w.last_request_time.as_ref().map(paved_proto::millis_from_timestamp),
                awake_since_ms,
            };
            let Some(act) = decide(now, &schedule, &seen) else { continue };
            let (environment, workload) = (w.environment.clone(), w.name.clone());
            let done = match &act {
                Act::Sleep(reason, note) => {
                    let request =
                        SleepWorkloadRequest { environment, workload, reason: *reason as i32, note: note.clone(), ..Default::default() };
                    self.client.sleep_workload(request).await.map(drop)
                }
                Act::Wake(reason, note) => {
                    let request =
                        WakeWorkloadRequest { environment, workload, reason: *reason as i32, note: note.clone(), ..Default::default() };
                    self.client.wake_workload(request).await.map(drop)
                }
            };
            match done {
                Ok(()) => {
                    sent += 1;
                    tracing::info!(workload = %w.name, environment = %w.environment, ?act, "schedule acted");
                }
                // A rollout under way: asked again at the next pass.
                Err(s) if s.code() == tonic::Code::FailedPrecondition => tracing::debug!(workload = %w.name, status = %s, "not now"),
                Err(s) => tracing::warn!(workload = %w.name, environment = %w.environment, status = %s, "schedule command refused"),
            }
        }
        self.running.set(running);
        let stable: std::collections::HashSet<&str> = workloads.iter().map(|w| w.stable_revision.as_str()).collect();
        self.revisions.retain(|id, _| stable.contains(id.as_str()));
        Ok(sent)
    }

    async fn workloads(&mut self) -> Result<Vec<Workload>, Status> {
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = ListWorkloadsRequest { environment: String::new(), page_size: 1000, page_token };
            let page = self.client.list_workloads(request).await?.into_inner();
            all.extend(page.workloads);
            if page.next_page_token.is_empty() {
                return Ok(all);
            }
            page_token = page.next_page_token;
        }
    }

    /// What a revision's spec says (read once per revision; its month
    /// recomputed hourly). None for no revision, or a spec that no longer parses.
    async fn describe(&mut self, revision_id: &str, environment: &str, now: DateTime<Utc>) -> Result<Option<Described>, Status> {
        if revision_id.is_empty() {
            return Ok(None);
        }
        if !self.revisions.contains_key(revision_id) {
            let revision = self.client.get_revision(GetRevisionRequest { id: revision_id.to_string() }).await?.into_inner().revision;
            let spec = match revision.map(|r| paved_spec::parse(&r.spec_yaml, "paved.yaml")) {
                Some(Ok(spec)) => Some(spec),
                Some(Err(e)) => {
                    tracing::warn!(revision = revision_id, error = %e, "a stored spec no longer parses; its schedule is not acted on");
                    None
                }
                None => None,
            };
            let described = spec.map(|spec| {
                let schedule = self.defaults.of(&spec, environment).cloned();
                let monthly = forecast::monthly(&spec, schedule.as_ref(), environment, &self.sheet, now);
                let team = spec.team.clone().unwrap_or_default();
                let requests = &spec.resources.requests;
                let (cpu_request, memory_request) = (requests.cpu_cores().unwrap_or(0.0), requests.memory_bytes().unwrap_or(0.0));
                let d = Described { schedule, team, monthly, at: now, cpu_request, memory_request, replicas: spec.replicas };
                (spec, d)
            });
            self.revisions.insert(revision_id.to_string(), described);
        }
        let Some(Some((spec, described))) = self.revisions.get_mut(revision_id) else { return Ok(None) };
        if now - described.at > chrono::Duration::hours(1) {
            described.monthly = forecast::monthly(spec, described.schedule.as_ref(), environment, &self.sheet, now);
            described.at = now;
        }
        Ok(Some(described.clone()))
    }
}
