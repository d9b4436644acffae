//! The provisioner's reads and writes. Every state change enqueues its event
//! in the same transaction (the outbox), so the stream never misses one.

use crate::model::{Revision, Rollout, RolloutState, Stage, State, Transition, Workload, now_ms, workload_id};
use crate::schema::{Revisions, Rollouts, Workloads};
use paved_proto::events::v1::envelope::Payload;
use paved_proto::provisioner::v1 as pb;
use paved_stream::{event, outbox};
use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Alias, Expr, ExprTrait, Func, Order, Query, SelectStatement},
};

pub const SOURCE: &str = "provisioner";

fn stream() -> String {
    paved_stream::stream_name(SOURCE)
}

const WORKLOAD_COLUMNS: [Workloads; 9] = [
    Workloads::Name,
    Workloads::Environment,
    Workloads::CurrentRevision,
    Workloads::StableRevision,
    Workloads::StandbyRevision,
    Workloads::ProxyPort,
    Workloads::CreateTimeMs,
    Workloads::SleepReason,
    Workloads::HoldUntilMs,
];
const ROLLOUT_COLUMNS: [Rollouts; 14] = [
    Rollouts::Id,
    Rollouts::WorkloadId,
    Rollouts::RevisionId,
    Rollouts::StableRevision,
    Rollouts::Stage,
    Rollouts::State,
    Rollouts::Step,
    Rollouts::Weight,
    Rollouts::Message,
    Rollouts::History,
    Rollouts::Version,
    Rollouts::StepStartMs,
    Rollouts::CreateTimeMs,
    Rollouts::UpdateTimeMs,
];
const REVISION_COLUMNS: [Revisions; 10] = [
    Revisions::Id,
    Revisions::WorkloadId,
    Revisions::Number,
    Revisions::State,
    Revisions::Message,
    Revisions::SpecYaml,
    Revisions::SpecDigest,
    Revisions::SpecPath,
    Revisions::CreateTimeMs,
    Revisions::UpdateTimeMs,
];

fn select_workloads() -> SelectStatement {
    Query::select().columns(WORKLOAD_COLUMNS).from(Workloads::Table).to_owned()
}

fn select_revisions() -> SelectStatement {
    Query::select().columns(REVISION_COLUMNS).from(Revisions::Table).to_owned()
}

pub async fn get_workload<C: ConnectionTrait>(db: &C, environment: &str, name: &str) -> Result<Option<Workload>, DbErr> {
    let query = select_workloads().and_where(Expr::col(Workloads::Id).eq(workload_id(environment, name))).to_owned();
    db.query_one(&query).await?.as_ref().map(Workload::from_row).transpose()
}

pub async fn list_workloads<C: ConnectionTrait>(db: &C, environment: &str, limit: u64, offset: u64) -> Result<Vec<Workload>, DbErr> {
    let mut query = select_workloads().order_by(Workloads::Id, Order::Asc).limit(limit).offset(offset).to_owned();
    if !environment.is_empty() {
        query.and_where(Expr::col(Workloads::Environment).eq(environment));
    }
    db.query_all(&query).await?.iter().map(Workload::from_row).collect()
}

pub async fn get_revision<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<Revision>, DbErr> {
    let query = select_revisions().and_where(Expr::col(Revisions::Id).eq(id)).to_owned();
    db.query_one(&query).await?.as_ref().map(Revision::from_row).transpose()
}

pub async fn revision_by_request<C: ConnectionTrait>(db: &C, request_id: &str) -> Result<Option<Revision>, DbErr> {
    let query = select_revisions().and_where(Expr::col(Revisions::RequestId).eq(request_id)).to_owned();
    db.query_one(&query).await?.as_ref().map(Revision::from_row).transpose()
}

/// Revisions of a workload, newest first.
pub async fn list_revisions<C: ConnectionTrait>(
    db: &C,
    environment: &str,
    name: &str,
    limit: u64,
    offset: u64,
) -> Result<Vec<Revision>, DbErr> {
    let query = select_revisions()
        .and_where(Expr::col(Revisions::WorkloadId).eq(workload_id(environment, name)))
        .order_by(Revisions::Number, Order::Desc)
        .limit(limit)
        .offset(offset)
        .to_owned();
    db.query_all(&query).await?.iter().map(Revision::from_row).collect()
}

/// Revisions a runtime was (or should be) running, of one workload or of all, oldest first.
pub async fn active_revisions<C: ConnectionTrait>(db: &C, workload_id: Option<&str>) -> Result<Vec<Revision>, DbErr> {
    let mut query = select_revisions()
        .and_where(Expr::col(Revisions::State).is_in(State::ACTIVE.map(State::as_str)))
        .order_by(Revisions::CreateTimeMs, Order::Asc)
        .to_owned();
    if let Some(id) = workload_id {
        query.and_where(Expr::col(Revisions::WorkloadId).eq(id));
    }
    db.query_all(&query).await?.iter().map(Revision::from_row).collect()
}

pub async fn all_workloads<C: ConnectionTrait>(db: &C) -> Result<Vec<Workload>, DbErr> {
    db.query_all(&select_workloads()).await?.iter().map(Workload::from_row).collect()
}

/// Inserts a workload and enqueues `workload.registered`.
pub async fn insert_workload<C: ConnectionTrait>(txn: &C, environment: &str, name: &str, proxy_port: u16) -> Result<Workload, DbErr> {
    let workload = Workload {
        name: name.to_string(),
        environment: environment.to_string(),
        current_revision: None,
        stable_revision: None,
        standby_revision: None,
        proxy_port,
        create_time_ms: now_ms(),
        sleep_reason: None,
        hold_until_ms: None,
    };
    let insert = Query::insert()
        .into_table(Workloads::Table)
        .columns([Workloads::Id, Workloads::Name, Workloads::Environment, Workloads::ProxyPort, Workloads::CreateTimeMs])
        .values_panic([workload.id().into(), name.into(), environment.into(), i32::from(proxy_port).into(), workload.create_time_ms.into()])
        .to_owned();
    txn.execute(&insert).await?;
    let payload = Payload::WorkloadRegistered(pb::WorkloadRegistered { workload: name.into(), environment: environment.into() });
    emit(txn, "paved.provisioner.v1.workload.registered", environment, name, payload).await?;
    Ok(workload)
}

pub async fn set_proxy_port<C: ConnectionTrait>(db: &C, workload: &Workload, port: u16) -> Result<(), DbErr> {
    let update = Query::update()
        .table(Workloads::Table)
        .value(Workloads::ProxyPort, i32::from(port))
        .and_where(Expr::col(Workloads::Id).eq(workload.id()))
        .to_owned();
    db.execute(&update).await?;
    Ok(())
}

pub struct NewRevision<'a> {
    pub spec_yaml: &'a str,
    pub spec_digest: &'a str,
    pub spec_path: &'a str,
    pub request_id: &'a str,
}

/// What `insert_revision` names a workload's highest revision number in its
/// query: an expression's alias, not a column of `revisions`.
const LAST_NUMBER: &str = "n";

/// Inserts the next revision of `workload` as its current one and enqueues
/// `revision.deployed`.
pub async fn insert_revision<C: ConnectionTrait>(txn: &C, workload: &Workload, new: NewRevision<'_>) -> Result<Revision, DbErr> {
    let max = Query::select()
        .expr_as(Func::coalesce([Expr::col(Revisions::Number).max(), Expr::val(0i64)]), Alias::new(LAST_NUMBER))
        .from(Revisions::Table)
        .and_where(Expr::col(Revisions::WorkloadId).eq(workload.id()))
        .to_owned();
    let number: i64 = txn.query_one(&max).await?.map(|r| r.try_get("", LAST_NUMBER)).transpose()?.unwrap_or(0) + 1;
    let now = now_ms();
    let revision = Revision {
        id: uuid::Uuid::now_v7().to_string(),
        workload_id: workload.id(),
        number,
        state: State::Pending,
        message: String::new(),
        spec_yaml: new.spec_yaml.to_string(),
        spec_digest: new.spec_digest.to_string(),
        spec_path: new.spec_path.to_string(),
        create_time_ms: now,
        update_time_ms: now,
    };
    let request_id: Option<String> = (!new.request_id.is_empty()).then(|| new.request_id.to_string());
    let insert = Query::insert()
        .into_table(Revisions::Table)
        .columns(REVISION_COLUMNS.into_iter().chain([Revisions::RequestId]))
        .values_panic([
            revision.id.clone().into(),
            revision.workload_id.clone().into(),
            number.into(),
            revision.state.as_str().into(),
            "".into(),
            revision.spec_yaml.clone().into(),
            revision.spec_digest.clone().into(),
            revision.spec_path.clone().into(),
            now.into(),
            now.into(),
            request_id.into(),
        ])
        .to_owned();
    txn.execute(&insert).await?;
    let update = Query::update()
        .table(Workloads::Table)
        .value(Workloads::CurrentRevision, revision.id.clone())
        .and_where(Expr::col(Workloads::Id).eq(workload.id()))
        .to_owned();
    txn.execute(&update).await?;
    let payload = Payload::RevisionDeployed(pb::RevisionDeployed {
        workload: workload.name.clone(),
        environment: workload.environment.clone(),
        revision_id: revision.id.clone(),
        number,
        spec_digest: revision.spec_digest.clone(),
    });
    emit(txn, "paved.provisioner.v1.revision.deployed", &workload.environment, &workload.name, payload).await?;
    Ok(revision)
}

/// Moves a revision to `to` and enqueues `revision.state_changed` (when the
/// state changes); returns the revision as now recorded, or None when it is
/// unknown.
pub async fn set_state<C: ConnectionTrait>(txn: &C, revision_id: &str, to: State, message: &str) -> Result<Option<Revision>, DbErr> {
    let Some(mut revision) = get_revision(txn, revision_id).await? else {
        return Ok(None);
    };
    if revision.state == to && revision.message == message {
        return Ok(Some(revision));
    }
    let now = now_ms();
    let update = Query::update()
        .table(Revisions::Table)
        .value(Revisions::State, to.as_str())
        .value(Revisions::Message, message)
        .value(Revisions::UpdateTimeMs, now)
        .and_where(Expr::col(Revisions::Id).eq(revision_id))
        .to_owned();
    txn.execute(&update).await?;
    if revision.state != to {
        let (environment, name) = revision.workload();
        // `from` is kept, deprecated, for the consumers that read it.
        #[allow(deprecated)]
        let payload = Payload::RevisionStateChanged(pb::RevisionStateChanged {
            workload: name.to_string(),
            environment: environment.to_string(),
            revision_id: revision_id.to_string(),
            from: revision.state.to_proto() as i32,
            from_state: revision.state.to_proto() as i32,
            to: to.to_proto() as i32,
            message: message.to_string(),
        });
        emit(txn, "paved.provisioner.v1.revision.state_changed", environment, name, payload).await?;
    }
    revision.state = to;
    revision.message = message.to_string();
    revision.update_time_ms = now;
    Ok(Some(revision))
}

/// Records which revisions a workload runs and routes to, and enqueues
/// `workload.rolled_back` when `rolled_back` says why.
pub async fn set_routing<C: ConnectionTrait>(
    txn: &C,
    workload: &Workload,
    current: Option<&str>,
    stable: Option<&str>,
    standby: Option<&str>,
    rolled_back: Option<(&str, &str)>,
) -> Result<(), DbErr> {
    let update = Query::update()
        .table(Workloads::Table)
        .value(Workloads::CurrentRevision, current.map(str::to_string))
        .value(Workloads::StableRevision, stable.map(str::to_string))
        .value(Workloads::StandbyRevision, standby.map(str::to_string))
        .and_where(Expr::col(Workloads::Id).eq(workload.id()))
        .to_owned();
    txn.execute(&update).await?;
    if let Some((from, reason)) = rolled_back {
        let payload = Payload::WorkloadRolledBack(pb::WorkloadRolledBack {
            workload: workload.name.clone(),
            environment: workload.environment.clone(),
            from_revision_id: from.to_string(),
            to_revision_id: stable.unwrap_or_default().to_string(),
            reason: reason.to_string(),
        });
        emit(txn, "paved.provisioner.v1.workload.rolled_back", &workload.environment, &workload.name, payload).await?;
    }
    Ok(())
}

/// Records that a workload sleeps (`reason`) or is awake (None), held so
/// until `hold_until_ms` if a person asked, and enqueues `workload.slept` or
/// `workload.woke` with who asked and why.
pub async fn set_sleep<C: ConnectionTrait>(
    txn: &C,
    workload: &Workload,
    reason: Option<&str>,
    hold_until_ms: Option<i64>,
    event: pb::WorkloadPowered,
) -> Result<(), DbErr> {
    let update = Query::update()
        .table(Workloads::Table)
        .value(Workloads::SleepReason, reason.map(str::to_string))
        .value(Workloads::HoldUntilMs, hold_until_ms)
        .and_where(Expr::col(Workloads::Id).eq(workload.id()))
        .to_owned();
    txn.execute(&update).await?;
    let kind = if event.awake { "paved.provisioner.v1.workload.woke" } else { "paved.provisioner.v1.workload.slept" };
    emit(txn, kind, &workload.environment, &workload.name, Payload::WorkloadPowered(event)).await
}

fn select_rollouts() -> SelectStatement {
    Query::select().columns(ROLLOUT_COLUMNS).from(Rollouts::Table).to_owned()
}

pub async fn get_rollout<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<Rollout>, DbErr> {
    let query = select_rollouts().and_where(Expr::col(Rollouts::Id).eq(id)).to_owned();
    db.query_one(&query).await?.as_ref().map(Rollout::from_row).transpose()
}

/// Rollouts of a workload, newest first.
pub async fn list_rollouts<C: ConnectionTrait>(db: &C, workload_id: &str, limit: u64, offset: u64) -> Result<Vec<Rollout>, DbErr> {
    let query = select_rollouts()
        .and_where(Expr::col(Rollouts::WorkloadId).eq(workload_id))
        .order_by(Rollouts::CreateTimeMs, Order::Desc)
        .order_by(Rollouts::Id, Order::Desc)
        .limit(limit)
        .offset(offset)
        .to_owned();
    db.query_all(&query).await?.iter().map(Rollout::from_row).collect()
}

/// Running and paused rollouts, of one workload or of all.
pub async fn active_rollouts<C: ConnectionTrait>(db: &C, workload_id: Option<&str>) -> Result<Vec<Rollout>, DbErr> {
    let mut query = select_rollouts()
        .and_where(Expr::col(Rollouts::State).is_in(RolloutState::ACTIVE.map(RolloutState::as_str)))
        .order_by(Rollouts::CreateTimeMs, Order::Asc)
        .to_owned();
    if let Some(id) = workload_id {
        query.and_where(Expr::col(Rollouts::WorkloadId).eq(id));
    }
    db.query_all(&query).await?.iter().map(Rollout::from_row).collect()
}

/// Creates a rollout of `revision_id` at its first stage and enqueues its first transition.
pub async fn insert_rollout<C: ConnectionTrait>(
    txn: &C,
    workload: &Workload,
    revision_id: &str,
    stable: Option<&str>,
) -> Result<Rollout, DbErr> {
    let now = now_ms();
    let message = "rollout created".to_string();
    let first = Transition { time_ms: now, stage: Stage::Validate, state: RolloutState::Running, weight: 0, message: message.clone() };
    let rollout = Rollout {
        id: uuid::Uuid::now_v7().to_string(),
        workload_id: workload.id(),
        revision_id: revision_id.to_string(),
        stable_revision: stable.map(str::to_string),
        stage: first.stage,
        state: first.state,
        step: 0,
        weight: 0,
        message,
        history: vec![first],
        version: 1,
        step_start_ms: now,
        create_time_ms: now,
        update_time_ms: now,
    };
    let history = serde_json::to_string(&rollout.history).map_err(|e| DbErr::Custom(format!("rollout history: {e}")))?;
    let insert = Query::insert()
        .into_table(Rollouts::Table)
        .columns(ROLLOUT_COLUMNS)
        .values_panic([
            rollout.id.clone().into(),
            rollout.workload_id.clone().into(),
            rollout.revision_id.clone().into(),
            rollout.stable_revision.clone().into(),
            rollout.stage.as_str().into(),
            rollout.state.as_str().into(),
            0i32.into(),
            0i32.into(),
            rollout.message.clone().into(),
            history.into(),
            rollout.version.into(),
            now.into(),
            now.into(),
            now.into(),
        ])
        .to_owned();
    txn.execute(&insert).await?;
    emit_transition(txn, &rollout).await?;
    Ok(rollout)
}

/// The next stage, state, step and weight of a rollout, and why.
#[derive(Debug, Clone)]
pub struct Change {
    pub stage: Stage,
    pub state: RolloutState,
    pub step: u32,
    pub weight: u32,
    pub message: String,
    /// Restart the step's clock.
    pub restart_step: bool,
}

impl Change {
    /// The rollout as it is, to be modified.
    pub fn from(rollout: &Rollout, message: impl Into<String>) -> Self {
        Self {
            stage: rollout.stage,
            state: rollout.state,
            step: rollout.step,
            weight: rollout.weight,
            message: message.into(),
            restart_step: false,
        }
    }
}

/// Applies `change` to the rollout as `read` (its version) saw it, appends
/// the transition and enqueues its event. None when another writer updated
/// the rollout since it was read: the caller reads it again and decides anew.
pub async fn update_rollout<C: ConnectionTrait>(txn: &C, read: &Rollout, change: Change) -> Result<Option<Rollout>, DbErr> {
    let now = now_ms();
    let mut rollout = read.clone();
    rollout.stage = change.stage;
    rollout.state = change.state;
    rollout.step = change.step;
    rollout.weight = change.weight;
    rollout.message = change.message.clone();
    rollout.version += 1;
    rollout.update_time_ms = now;
    if change.restart_step {
        rollout.step_start_ms = now;
    }
    rollout.history.push(Transition {
        time_ms: now,
        stage: change.stage,
        state: change.state,
        weight: change.weight,
        message: change.message,
    });
    let history = serde_json::to_string(&rollout.history).map_err(|e| DbErr::Custom(format!("rollout history: {e}")))?;
    let int = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let update = Query::update()
        .table(Rollouts::Table)
        .value(Rollouts::Stage, rollout.stage.as_str())
        .value(Rollouts::State, rollout.state.as_str())
        .value(Rollouts::Step, int(rollout.step))
        .value(Rollouts::Weight, int(rollout.weight))
        .value(Rollouts::Message, rollout.message.clone())
        .value(Rollouts::History, history)
        .value(Rollouts::Version, rollout.version)
        .value(Rollouts::StepStartMs, rollout.step_start_ms)
        .value(Rollouts::UpdateTimeMs, now)
        .and_where(Expr::col(Rollouts::Id).eq(read.id.clone()))
        .and_where(Expr::col(Rollouts::Version).eq(read.version))
        .to_owned();
    if txn.execute(&update).await?.rows_affected() == 0 {
        return Ok(None);
    }
    emit_transition(txn, &rollout).await?;
    Ok(Some(rollout))
}

/// Records the measurement window of the step being held, if the rollout
/// is still at that step (begun at `step_start_ms`).
pub async fn save_step_window<C: ConnectionTrait>(db: &C, id: &str, step: u32, step_start_ms: i64, window: String) -> Result<(), DbErr> {
    let update = Query::update()
        .table(Rollouts::Table)
        .value(Rollouts::StepWindow, window)
        .and_where(Expr::col(Rollouts::Id).eq(id))
        .and_where(Expr::col(Rollouts::Step).eq(i32::try_from(step).unwrap_or(i32::MAX)))
        .and_where(Expr::col(Rollouts::StepStartMs).eq(step_start_ms))
        .to_owned();
    db.execute(&update).await?;
    Ok(())
}

/// The measurement window recorded for a rollout's step, if any.
pub async fn step_window<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<String>, DbErr> {
    let query = Query::select().column(Rollouts::StepWindow).from(Rollouts::Table).and_where(Expr::col(Rollouts::Id).eq(id)).to_owned();
    match db.query_one(&query).await? {
        Some(row) => row.try_get::<Option<String>>("", "step_window"),
        None => Ok(None),
    }
}

/// [`update_rollout`] in place: `at` becomes the rollout as updated. False,
/// with `at` untouched, when another writer came first.
pub async fn advance_rollout<C: ConnectionTrait>(txn: &C, at: &mut Rollout, change: Change) -> Result<bool, DbErr> {
    match update_rollout(txn, at, change).await? {
        Some(next) => {
            *at = next;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Enqueues `policy.decided` for a rollout's revision.
pub async fn emit_policy_decision<C: ConnectionTrait>(
    txn: &C,
    rollout: &Rollout,
    decision: &paved_policy::Decision,
    seen: Option<&crate::artifacts::Seen>,
) -> Result<(), DbErr> {
    let (environment, name) = rollout.workload();
    let payload = Payload::PolicyDecided(pb::PolicyDecided {
        rollout_id: rollout.id.clone(),
        workload: name.to_string(),
        environment: environment.to_string(),
        revision_id: rollout.revision_id.clone(),
        bundle_digest: decision.bundle_digest.clone(),
        allowed: decision.allowed(),
        denials: decision.denials.clone(),
        warnings: decision.warnings.clone(),
        artifact_digest: seen.map(|s| s.digest.clone()).unwrap_or_default(),
        attestations: seen
            .map(|s| &s.attestations[..])
            .unwrap_or_default()
            .iter()
            .map(|a| pb::AttestationSeen {
                kind: a.kind.clone(),
                signer: a.signer.clone(),
                verified: a.verified,
                payload_digest: a.payload_digest.clone(),
            })
            .collect(),
    });
    emit(txn, "paved.provisioner.v1.policy.decided", environment, name, payload).await
}

async fn emit_transition<C: ConnectionTrait>(txn: &C, rollout: &Rollout) -> Result<(), DbErr> {
    let (environment, name) = rollout.workload();
    let payload = Payload::RolloutTransitioned(pb::RolloutTransitioned {
        rollout_id: rollout.id.clone(),
        workload: name.to_string(),
        environment: environment.to_string(),
        revision_id: rollout.revision_id.clone(),
        stage: rollout.stage.to_proto() as i32,
        state: rollout.state.to_proto() as i32,
        weight: i32::try_from(rollout.weight).unwrap_or(i32::MAX),
        message: rollout.message.clone(),
    });
    emit(txn, "paved.provisioner.v1.rollout.transitioned", environment, name, payload).await
}

/// Enqueues an event about workload `name` of `environment` (the
/// environment itself when `name` is empty).
pub async fn emit<C: ConnectionTrait>(txn: &C, kind: &str, environment: &str, name: &str, payload: Payload) -> Result<(), DbErr> {
    let subject =
        if name.is_empty() { format!("environments/{environment}") } else { format!("environments/{environment}/workloads/{name}") };
    let mut envelope = event::envelope(SOURCE, kind, subject, payload);
    envelope.traceparent = paved_telemetry::propagation::current_traceparent();
    outbox::enqueue(txn, &stream(), &envelope).await
}
