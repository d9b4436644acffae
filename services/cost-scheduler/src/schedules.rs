//! The schedule loop: every pass, what the provisioner says of each
//! workload is judged against its spec's schedule (`decide`), and a sleep or
//! wake is a command to the provisioner. Nothing here stops a process: a
//! cost scheduler that is down leaves every workload as it is, and catches
//! up at its first pass when it is back.

use crate::decide::{Act, Seen, decide};
use chrono::{DateTime, Utc};
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{
    GetRevisionRequest, ListWorkloadsRequest, SleepWorkloadRequest, WakeWorkloadRequest, Workload,
    provisioner_service_client::ProvisionerServiceClient,
};
use paved_spec::Schedule;
use std::{collections::HashMap, time::Duration};
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// How often schedules are evaluated.
pub const PASS: Duration = Duration::from_secs(1);

pub struct Scheduler {
    client: ProvisionerServiceClient<AuthChannel>,
    /// Revision id → its spec's schedule (None: it has none), parsed once.
    schedules: HashMap<String, Option<Schedule>>,
    /// Workload id → since when it has been seen awake (Unix ms).
    awake_since: HashMap<String, i64>,
}

impl Scheduler {
    pub fn new(client: ProvisionerServiceClient<AuthChannel>) -> Self {
        Self { client, schedules: HashMap::new(), awake_since: HashMap::new() }
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
        for w in &workloads {
            let Some(schedule) = self.schedule(&w.stable_revision).await? else { continue };
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
                        SleepWorkloadRequest { environment, workload, reason: *reason as i32, note: note.clone(), hold_seconds: 0 };
                    self.client.sleep_workload(request).await.map(drop)
                }
                Act::Wake(reason, note) => {
                    let request =
                        WakeWorkloadRequest { environment, workload, reason: *reason as i32, note: note.clone(), hold_seconds: 0 };
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
        let stable: std::collections::HashSet<&str> = workloads.iter().map(|w| w.stable_revision.as_str()).collect();
        self.schedules.retain(|id, _| stable.contains(id.as_str()));
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

    /// The schedule of a revision's spec (read once per revision).
    async fn schedule(&mut self, revision_id: &str) -> Result<Option<Schedule>, Status> {
        if revision_id.is_empty() {
            return Ok(None);
        }
        if let Some(known) = self.schedules.get(revision_id) {
            return Ok(known.clone());
        }
        let revision = self.client.get_revision(GetRevisionRequest { id: revision_id.to_string() }).await?.into_inner().revision;
        let schedule = match revision.map(|r| paved_spec::parse(&r.spec_yaml, "paved.yaml")) {
            Some(Ok(spec)) => spec.schedule,
            Some(Err(e)) => {
                tracing::warn!(revision = revision_id, error = %e, "a stored spec no longer parses; its schedule is not acted on");
                None
            }
            None => None,
        };
        self.schedules.insert(revision_id.to_string(), schedule.clone());
        Ok(schedule)
    }
}
