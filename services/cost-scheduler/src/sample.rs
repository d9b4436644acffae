//! The sampling loop: every `every`, what each replica uses is read from
//! the provisioner's runtime (`ListInstanceUsage`, which reads `/proc`) and
//! stored as one sample per replica: the CPU time it used since the last
//! read, and its memory now. A revision seen for the first time is
//! described once (its team, replicas and requests, from its spec).
//!
//! A replica's first read only starts its count; a restarted replica (a
//! new process) counts from its start. What runs between a cost
//! scheduler's stop and its first read after is not sampled (its running
//! time still is, from the events).

use crate::schema::{RevisionCosts, RevisionUsage, RunningIntervals, UsageSamples};
use paved_grpc::client::AuthChannel;
use paved_proto::provisioner::v1::{
    GetRevisionRequest, InstanceUsage, ListInstanceUsageRequest, provisioner_service_client::ProvisionerServiceClient,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often replicas are read, unless configured (`PAVED_SAMPLE_SECONDS`).
pub const EVERY: Duration = Duration::from_secs(15);

/// A replica: its revision, whether it is a baseline's, its index.
type Replica = (String, bool, u32);

struct Last {
    process: String,
    cpu_seconds: f64,
    at_ms: i64,
}

pub struct Sampler {
    client: ProvisionerServiceClient<AuthChannel>,
    db: DatabaseConnection,
    last: HashMap<Replica, Last>,
    /// Revisions described in `revision_costs`.
    described: HashSet<String>,
}

impl Sampler {
    pub fn new(client: ProvisionerServiceClient<AuthChannel>, db: DatabaseConnection) -> Self {
        Self { client, db, last: HashMap::new(), described: HashSet::new() }
    }

    pub async fn run(mut self, every: Duration, shutdown: CancellationToken) {
        let mut ticks = paved_service::Ticks::new(every, shutdown);
        while ticks.next().await {
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "cannot sample usage; trying again at the next pass");
            }
        }
    }

    /// One read; returns how many samples were stored.
    pub async fn pass(&mut self) -> anyhow::Result<usize> {
        let read = self.client.list_instance_usage(ListInstanceUsageRequest {}).await?.into_inner();
        let at_ms = read.read_time.as_ref().map_or_else(|| chrono::Utc::now().timestamp_millis(), paved_proto::millis_from_timestamp);
        let mut rows = Vec::new();
        let mut next = HashMap::new();
        // A rollout's baseline is scaffolding its running time does not
        // count (it has no revision of its own): its use is not counted either.
        for i in read.instances.iter().filter(|i| !i.baseline) {
            let replica = (i.revision_id.clone(), i.baseline, i.instance);
            next.insert(replica.clone(), Last { process: i.process.clone(), cpu_seconds: i.cpu_seconds, at_ms });
            let Some(last) = self.last.get(&replica) else { continue };
            // A new process counts from its own start.
            let used = if last.process == i.process { (i.cpu_seconds - last.cpu_seconds).max(0.0) } else { i.cpu_seconds };
            rows.push(sample(i, at_ms, at_ms - last.at_ms, used));
        }
        let stored = rows.len();
        if !rows.is_empty() {
            let mut insert = Query::insert()
                .into_table(UsageSamples::Table)
                .columns([
                    UsageSamples::AtMs,
                    UsageSamples::RevisionId,
                    UsageSamples::Instance,
                    UsageSamples::IntervalMs,
                    UsageSamples::CpuMs,
                    UsageSamples::MemoryBytes,
                    UsageSamples::MemoryPeakBytes,
                ])
                .to_owned();
            for row in rows {
                insert.values_panic(row);
            }
            self.db.execute(&insert).await?;
        }
        // Only once stored: a failed write is retried from the same reads.
        self.last = next;
        let mut revisions: HashSet<String> = read.instances.iter().map(|i| i.revision_id.clone()).collect();
        revisions.extend(self.undescribed_running().await?);
        for id in revisions {
            self.describe(&id).await?;
        }
        Ok(stored)
    }

    /// Revisions with running time but no description yet (on a target
    /// that is not sampled, events are all there is).
    async fn undescribed_running(&mut self) -> anyhow::Result<Vec<String>> {
        let query = Query::select().distinct().column(RunningIntervals::RevisionId).from(RunningIntervals::Table).to_owned();
        let mut missing = Vec::new();
        for row in self.db.query_all(&query).await? {
            let id: String = row.try_get("", "revision_id")?;
            if !self.described.contains(&id) {
                missing.push(id);
            }
        }
        Ok(missing)
    }

    /// Stores what a revision asked for and who pays, once.
    async fn describe(&mut self, id: &str) -> anyhow::Result<()> {
        if self.described.contains(id) {
            return Ok(());
        }
        let found = self.client.get_revision(GetRevisionRequest { id: id.to_string() }).await;
        let revision = match found {
            Ok(r) => r.into_inner().revision,
            Err(s) if s.code() == tonic::Code::NotFound => None,
            Err(s) => return Err(s.into()),
        };
        let Some(revision) = revision else {
            // Gone from the provisioner (deleted before its first sample):
            // its requests and team are lost, but its running time is
            // counted still, under the names its state changes carried.
            self.describe_gone(id).await?;
            self.described.insert(id.to_string());
            return Ok(());
        };
        let spec = match paved_spec::parse(&revision.spec_yaml, "paved.yaml") {
            Ok(spec) => spec,
            Err(e) => {
                tracing::warn!(revision = id, error = %e, "a stored spec no longer parses; its cost has no team or requests");
                self.described.insert(id.to_string());
                return Ok(());
            }
        };
        let requests = &spec.resources.requests;
        let described = Described {
            environment: revision.environment,
            workload: revision.workload,
            team: spec.team.clone().unwrap_or_default(),
            replicas: i32::try_from(spec.replicas).unwrap_or(1),
            cpu_cores: requests.cpu_cores().unwrap_or(0.0),
            memory_bytes: requests.memory_bytes().unwrap_or(0.0),
        };
        self.store_description(id, described).await?;
        self.described.insert(id.to_string());
        Ok(())
    }

    /// A revision the provisioner no longer has, by the names in
    /// `revision_usage`: no team, nothing requested.
    async fn describe_gone(&self, id: &str) -> anyhow::Result<()> {
        let query = Query::select()
            .columns([RevisionUsage::Environment, RevisionUsage::Workload])
            .from(RevisionUsage::Table)
            .and_where(Expr::col(RevisionUsage::RevisionId).eq(id))
            .to_owned();
        let Some(row) = self.db.query_one(&query).await? else { return Ok(()) };
        let (environment, workload) = (row.try_get("", "environment")?, row.try_get("", "workload")?);
        let described = Described { environment, workload, team: String::new(), replicas: 1, cpu_cores: 0.0, memory_bytes: 0.0 };
        self.store_description(id, described).await
    }

    async fn store_description(&self, id: &str, d: Described) -> anyhow::Result<()> {
        let insert = Query::insert()
            .into_table(RevisionCosts::Table)
            .columns(RevisionCosts::COLUMNS)
            .values_panic([
                id.into(),
                d.environment.into(),
                d.workload.into(),
                d.team.into(),
                d.replicas.into(),
                d.cpu_cores.into(),
                d.memory_bytes.into(),
            ])
            .on_conflict(OnConflict::column(RevisionCosts::RevisionId).do_nothing().to_owned())
            .to_owned();
        self.db.execute(&insert).await?;
        Ok(())
    }
}

/// A `revision_costs` row: what a revision asked for and who pays.
struct Described {
    environment: String,
    workload: String,
    team: String,
    replicas: i32,
    cpu_cores: f64,
    memory_bytes: f64,
}

fn sample(i: &InstanceUsage, at_ms: i64, interval_ms: i64, cpu_seconds: f64) -> [sea_orm::sea_query::SimpleExpr; 7] {
    let bytes = |b: u64| i64::try_from(b).unwrap_or(i64::MAX);
    [
        at_ms.into(),
        i.revision_id.clone().into(),
        i32::try_from(i.instance).unwrap_or(i32::MAX).into(),
        interval_ms.into(),
        ((cpu_seconds * 1000.0).round() as i64).into(),
        bytes(i.memory_bytes).into(),
        bytes(i.memory_peak_bytes).into(),
    ]
}
