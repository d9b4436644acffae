//! The rollout driver: one task per rollout in this process, each pass
//! reading the rollout's last committed transition and acting on its stage —
//! admit (validate, policy, identity), start the canary (and a baseline for
//! the analyzer), hold each traffic step while looking at it, promote.

use super::{
    admit::Admission,
    step::{Next, baseline_instance, gate, look_every, step_message},
    transitions::Transitions,
    window::Window,
};
use crate::{
    model::{Revision, Rollout, RolloutState, Stage, State, now_ms},
    policy::Gate,
    records::Records,
    routing::Routing,
    runner::Runner,
    store::{self, Change},
    sync::lock,
};
use paved_local::Traffic;
use paved_proto::{
    canary_analyzer::v1::{JudgeLookRequest, RequestCounts, Verdict},
    timestamp_from_millis,
};
use paved_spec::WorkloadSpec;
use paved_stream::consumer::Backoff;
use sea_orm::{DbErr, TransactionTrait};
use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub(crate) type Analyzer =
    paved_proto::canary_analyzer::v1::canary_analyzer_service_client::CanaryAnalyzerServiceClient<paved_grpc::client::AuthChannel>;

/// Rollout drivers advancing at once; the others wait their turn. A burst of
/// a thousand applies starts a thousand drivers, and unbounded they would
/// queue a thousand transactions ahead of every API request on the
/// database (one connection on SQLite). Waiting — for health, for a step's
/// interval — takes no turn.
const DRIVING: usize = 4;

pub(crate) struct Driver {
    records: Arc<Records>,
    routing: Arc<Routing>,
    runner: Arc<Runner>,
    admission: Admission,
    transitions: Arc<Transitions>,
    /// See `Options::analyzer_url`.
    analyzer: Option<Analyzer>,
    /// Rollouts with a driver in this process.
    drivers: Mutex<HashSet<String>>,
    /// Rollouts a look of which the analyzer has judged: it holds their
    /// analysis, so their looks go without the spec (see `look_request`).
    analysed: Mutex<HashSet<String>>,
    /// Drivers advancing at once (see [`DRIVING`]).
    driving: tokio::sync::Semaphore,
    /// When this process started (ms): a rollout step begun earlier had its
    /// traffic counted by another process.
    started_ms: i64,
    shutdown: CancellationToken,
}

impl Driver {
    pub(crate) fn new(
        records: Arc<Records>,
        routing: Arc<Routing>,
        runner: Arc<Runner>,
        gate: Arc<Gate>,
        transitions: Arc<Transitions>,
        analyzer: Option<Analyzer>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            admission: Admission::new(records.clone(), gate, transitions.clone()),
            records,
            routing,
            runner,
            transitions,
            analyzer,
            drivers: Mutex::new(HashSet::new()),
            analysed: Mutex::new(HashSet::new()),
            driving: tokio::sync::Semaphore::new(DRIVING),
            started_ms: now_ms(),
            shutdown,
        }
    }

    /// Drives a rollout to its end in a task of its own (once per process).
    /// `spec`: its revision's spec, when the caller has it parsed already.
    pub(crate) fn drive(self: &Arc<Self>, id: String, workload_id: &str, spec: Option<WorkloadSpec>) {
        if !lock(&self.drivers).insert(id.clone()) {
            return;
        }
        let this = self.clone();
        // Woken by changes to this workload only: a burst of applies to
        // other workloads must not wake every driver (a thousand rollouts
        // would each reread their state a thousand times).
        let changes = self.records.subscribe(workload_id);
        // In the caller's span: an apply's rollout span, so that the calls
        // the driver makes join the deploy's trace.
        tokio::spawn(
            async move {
                this.drive_loop(&id, changes, spec).await;
                lock(&this.drivers).remove(&id);
                lock(&this.analysed).remove(&id);
            }
            .in_current_span(),
        );
    }

    /// Whether the rollout has a driver in this process.
    pub(crate) fn is_driving(&self, id: &str) -> bool {
        lock(&self.drivers).contains(id)
    }

    async fn drive_loop(&self, id: &str, mut changes: tokio::sync::watch::Receiver<u64>, mut spec: Option<WorkloadSpec>) {
        let mut window = None;
        let mut backoff = Backoff::default();
        let shutdown = self.shutdown.clone();
        loop {
            // Anything recorded from here on wakes the wait below.
            changes.borrow_and_update();
            let pass = async {
                let turn = self.driving.acquire().await.ok();
                self.advance_rollout(id, &mut window, &mut spec, turn).await
            };
            let next = tokio::select! {
                next = pass => next,
                _ = shutdown.cancelled() => return,
            };
            match next {
                Ok(Next::Done) => return,
                Ok(Next::Again) => backoff.reset(),
                Ok(Next::Wait(until)) => {
                    backoff.reset();
                    let deadline = async {
                        match until {
                            Some(at) => tokio::time::sleep_until(at).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        _ = changes.changed() => {}
                        _ = deadline => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
                Err(e) => {
                    tracing::warn!(rollout = %id, error = %e, "rollout driver: cannot proceed; retrying");
                    tokio::select! {
                        _ = backoff.wait() => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    /// One pass: reads the rollout and acts on its committed stage.
    /// `spec`: the revision's spec, parsed on the first pass unless the
    /// driver was given it, and kept (a revision's spec never changes).
    /// `turn`: this driver's turn to advance (see [`DRIVING`]),
    /// given back while it waits on the analyzer.
    async fn advance_rollout(
        &self,
        id: &str,
        window: &mut Option<Window>,
        spec: &mut Option<WorkloadSpec>,
        turn: Option<tokio::sync::SemaphorePermit<'_>>,
    ) -> Result<Next, DbErr> {
        let db = self.records.db();
        let Some(r) = store::get_rollout(db, id).await? else { return Ok(Next::Done) };
        if !r.state.is_active() {
            return Ok(Next::Done);
        }
        if r.state == RolloutState::Paused {
            return Ok(Next::Wait(None));
        }
        let Some(revision) = store::get_revision(db, &r.revision_id).await? else {
            return self.transitions.finish(&r, RolloutState::RolledBack, "its revision no longer exists").await.map(|_| Next::Again);
        };
        let spec: &WorkloadSpec = match spec {
            Some(spec) => spec,
            None => match revision.parse_spec() {
                Ok(parsed) => spec.insert(parsed),
                Err(e) => {
                    return self.transitions.finish(&r, RolloutState::RolledBack, &format!("spec invalid: {e}")).await.map(|_| Next::Again);
                }
            },
        };
        let (environment, name) = r.workload();
        let steps = &spec.rollout.steps;
        let transition = |stage, message: String| Change { stage, ..Change::from(&r, message) };
        match r.stage {
            Stage::Validate | Stage::Policy | Stage::Identity => self.admission.admit(&r, &revision, spec).await,
            Stage::Start | Stage::Step => {
                let Some(workload) = store::get_workload(db, environment, name).await? else { return Ok(Next::Done) };
                // Judged before anything is started: a failed revision is not
                // started again by its own rollout.
                if revision.state == State::Failed {
                    let reason = format!("revision {} failed: {}", revision.number, revision.message);
                    return self.transitions.finish(&r, RolloutState::RolledBack, &reason).await.map(|_| Next::Again);
                }
                self.routing.ensure(&workload).await.map_err(|e| DbErr::Custom(format!("cannot open the workload's proxy: {e}")))?;
                // Idempotent: a no-op while the revision runs.
                self.runner.start(&revision, spec.clone());
                // A baseline is for the analyzer to compare with.
                if let (Some(stable), Some(_)) = (&r.stable_revision, &self.analyzer) {
                    self.start_baseline(stable).await?;
                }
                if r.stage == Stage::Start {
                    if revision.state != State::Healthy {
                        return Ok(Next::Wait(None));
                    }
                    if r.stable_revision.is_none() {
                        return self
                            .transitions
                            .promote(&r, Some(transition(Stage::Promote, "healthy; a first revision takes all traffic".into())))
                            .await;
                    }
                    let weight = steps.first().copied().unwrap_or(100);
                    let message = step_message(0, steps, spec.rollout.interval, "canary healthy");
                    return self
                        .commit_step(&r, Change { step: 0, weight, restart_step: true, ..transition(Stage::Step, message) }, window)
                        .await;
                }
                // Read again rather than from `r`: an abort or a newer apply
                // may have committed since this pass began.
                self.routing.route(&r.workload_id).await?;
                self.hold_step(&r, &revision, spec, window, turn).await
            }
            Stage::Promote => self.transitions.promote(&r, None).await,
            Stage::Done => Ok(Next::Done),
        }
    }

    /// Holds the current step for its interval (and any extensions),
    /// looking at it every [`look_every`]: each look goes to the canary
    /// analyzer, whose verdict moves the rollout on — the next step,
    /// promotion, a rollback, or an extension of the step.
    async fn hold_step(
        &self,
        r: &Rollout,
        revision: &Revision,
        spec: &paved_spec::WorkloadSpec,
        window: &mut Option<Window>,
        turn: Option<tokio::sync::SemaphorePermit<'_>>,
    ) -> Result<Next, DbErr> {
        let now = now_ms();
        let policy = &spec.rollout;
        let w = match window {
            Some(w) if w.step == r.step && w.step_start_ms == r.step_start_ms => w,
            _ => {
                let counters = self.step_counters(r).await;
                // A step this driver did not start: begun before this
                // process started, its window is resumed as recorded (the
                // data plane's host counted on); unless the counts began
                // again, when it is held again in full rather than judged
                // on part of its interval. Or resumed through the API: its
                // traffic is counted from now.
                if r.step_start_ms < self.started_ms {
                    let recorded = store::step_window(self.records.db(), &r.id).await?;
                    let Some(resumed) = recorded.and_then(|w| Window::resume(&w, r.step, r.step_start_ms, &counters)) else {
                        let message = format!("step {} held again from now: the counts of its earlier part are gone", r.step + 1);
                        return self.commit_step(r, Change { restart_step: true, ..Change::from(r, message) }, window).await;
                    };
                    *window = Some(resumed);
                    let message = format!("step {} resumed after a restart, on the traffic counted meanwhile", r.step + 1);
                    return self.commit(r, Change::from(r, message)).await;
                }
                let opened = Window::open(r.step, r.step_start_ms, counters);
                self.keep(r, &opened).await;
                window.insert(opened)
            }
        };
        let interval_ms = i64::try_from(policy.interval.as_millis()).unwrap_or(i64::MAX);
        let due = r.step_start_ms.saturating_add(interval_ms.saturating_mul(i64::from(w.extensions) + 1));
        let look_ms = i64::try_from(look_every(policy.interval).as_millis()).unwrap_or(i64::MAX);
        let next_look = w.last_look_ms.saturating_add(look_ms).min(due);
        if now < next_look {
            let wait = Duration::from_millis(u64::try_from(next_look - now).unwrap_or(0));
            return Ok(Next::Wait(Some(tokio::time::Instant::now() + wait)));
        }
        let interval_over = now >= due;
        // Taken when a look is due, not on every wake-up.
        let counters = self.step_counters(r).await;
        // A canary restarting mid-step (its platform restarted, a crash it
        // recovers from) is given the interval; at its end it must be healthy.
        if interval_over && revision.state != State::Healthy {
            let why = if revision.message.is_empty() { String::new() } else { format!(": {}", revision.message) };
            let reason = format!("step {} ({}% of traffic) failed: the canary is {}{why}", r.step + 1, r.weight, revision.state.as_str());
            return self.transitions.finish(r, RolloutState::RolledBack, &reason).await.map(|_| Next::Again);
        }
        let (verdict, reason) = match &self.analyzer {
            Some(analyzer) => {
                let (request, ends_at) = match w.pending.take() {
                    Some(pending) => pending,
                    None => (self.look_request(r, revision, w, &counters, now, interval_over).await, counters),
                };
                // Recorded before it is sent: a provisioner that restarts
                // before the answer sends the same look again.
                w.pending = Some((request.clone(), ends_at.clone()));
                self.keep(r, w).await;
                w.pending = None;
                // Judging can take seconds (Prometheus queries): other
                // rollouts advance meanwhile.
                drop(turn);
                let answer = analyzer.clone().judge_look(request.clone()).await;
                let _turn = self.driving.acquire().await;
                match answer {
                    Ok(response) => {
                        lock(&self.analysed).insert(r.id.clone());
                        let decision = response.into_inner().decision.unwrap_or_default();
                        let end = request.end_time.as_ref().map_or(now, paved_proto::millis_from_timestamp);
                        (w.canary, w.baseline, w.last_look_ms) = (ends_at.0, ends_at.1, end);
                        self.keep(r, w).await;
                        match decision.verdict() {
                            // A look sent before the interval ended: the
                            // closing look follows at once.
                            Verdict::Continue if !request.interval_over => return Ok(Next::Again),
                            Verdict::Continue | Verdict::Unspecified => {
                                (Verdict::Inconclusive, format!("the canary analyzer did not decide: {}", decision.reason))
                            }
                            verdict => (verdict, decision.reason),
                        }
                    }
                    // The analyzer has no look of this rollout (its records
                    // were lost, or the first look's answer was): the same
                    // look again at once, with the analysis.
                    Err(e)
                        if tonic_types::StatusExt::get_details_error_info(&e).is_some_and(|i| i.reason == "ANALYSIS_UNKNOWN")
                            && request.spec_yaml.is_empty() =>
                    {
                        lock(&self.analysed).remove(&r.id);
                        let request =
                            JudgeLookRequest { spec_yaml: revision.spec_yaml.clone(), spec_path: revision.spec_path.clone(), ..request };
                        w.pending = Some((request, ends_at));
                        self.keep(r, w).await;
                        return Ok(Next::Again);
                    }
                    // A look the analyzer refuses as invalid would be refused
                    // again as it is: dropped, so that the next one is
                    // counted afresh from where this one began.
                    Err(e) if e.code() == tonic::Code::InvalidArgument => {
                        tracing::warn!(rollout = %r.id, error = %e.message(), "the canary analyzer refused a look as invalid; counting it again");
                        self.keep(r, w).await;
                        if !interval_over {
                            return Ok(Next::Wait(Some(tokio::time::Instant::now() + look_every(policy.interval))));
                        }
                        (Verdict::Inconclusive, format!("the canary analyzer refused the look: {}", e.message()))
                    }
                    Err(e) => {
                        w.pending = Some((request, ends_at));
                        if !interval_over {
                            tracing::warn!(rollout = %r.id, error = %e.message(), "canary analyzer unavailable; looking again later");
                            return Ok(Next::Wait(Some(tokio::time::Instant::now() + look_every(policy.interval))));
                        }
                        // A step cannot pass without a judgement.
                        (Verdict::Inconclusive, format!("the canary analyzer did not judge: {}", e.message()))
                    }
                }
            }
            None if !interval_over => {
                let wait = Duration::from_millis(u64::try_from(due - now).unwrap_or(0));
                return Ok(Next::Wait(Some(tokio::time::Instant::now() + wait)));
            }
            None => match gate(&counters.0.since(&w.canary), policy) {
                Ok(summary) => (Verdict::Pass, summary),
                Err(why) => (Verdict::Fail, why),
            },
        };
        match verdict {
            Verdict::Pass => {
                let next = r.step as usize + 1;
                let passed = format!("step {} passed: {reason}", r.step + 1);
                match policy.steps.get(next) {
                    Some(&weight) => {
                        let message = step_message(next, &policy.steps, policy.interval, &passed);
                        let step = u32::try_from(next).unwrap_or(u32::MAX);
                        self.commit_step(r, Change { step, weight, restart_step: true, ..Change::from(r, message) }, window).await
                    }
                    None => self.commit(r, Change { stage: Stage::Promote, ..Change::from(r, passed) }).await,
                }
            }
            Verdict::Fail => {
                let reason = format!("step {} ({}% of traffic) failed: {reason}", r.step + 1, r.weight);
                self.transitions.finish(r, RolloutState::RolledBack, &reason).await.map(|_| Next::Again)
            }
            Verdict::Inconclusive => {
                let limit = spec.analysis().max_extensions;
                if w.extensions >= limit {
                    let reason = format!("step {} ({}% of traffic) inconclusive after {limit} extensions: {reason}", r.step + 1, r.weight);
                    return self.transitions.finish(r, RolloutState::RolledBack, &reason).await.map(|_| Next::Again);
                }
                w.extensions += 1;
                self.keep(r, w).await;
                let message = format!("step {} extended by {:?} ({} of {limit}): {reason}", r.step + 1, policy.interval, w.extensions);
                self.commit(r, Change::from(r, message)).await
            }
            Verdict::Continue | Verdict::Unspecified => Ok(Next::Again),
        }
    }

    /// The canary's and the baseline's counters through the workload's proxy.
    async fn step_counters(&self, r: &Rollout) -> (Traffic, Traffic) {
        self.routing.traffic_pair(&r.workload_id, &r.revision_id, &baseline_instance(r)).await
    }

    /// A look at the step: the requests since the last one.
    async fn look_request(
        &self,
        r: &Rollout,
        revision: &Revision,
        w: &Window,
        (canary, baseline): &(Traffic, Traffic),
        now: i64,
        interval_over: bool,
    ) -> JudgeLookRequest {
        let (environment, name) = r.workload();
        let instance = baseline_instance(r);
        let baseline_weight = self
            .routing
            .routes(&r.workload_id)
            .await
            .into_iter()
            .find(|route| route.revision == instance && !route.addrs.is_empty())
            .map_or(0, |route| route.weight);
        let counts = |t: Traffic| RequestCounts { requests: t.total(), errors: t.errors(), latency: t.latency };
        let sent = lock(&self.analysed).contains(&r.id);
        JudgeLookRequest {
            rollout_id: r.id.clone(),
            environment: environment.to_string(),
            workload: name.to_string(),
            canary_revision_id: r.revision_id.clone(),
            baseline_revision_id: r.stable_revision.clone().unwrap_or_default(),
            baseline_instance: instance,
            // Milliseconds since the rollout began: increasing, and the
            // same for a retry of this look.
            look: u64::try_from(now - r.create_time_ms).unwrap_or(0).max(1),
            step: r.step,
            weight: r.weight,
            baseline_weight,
            start_time: Some(timestamp_from_millis(w.last_look_ms)),
            end_time: Some(timestamp_from_millis(now)),
            step_start_time: Some(timestamp_from_millis(r.step_start_ms)),
            interval_over,
            extensions: w.extensions,
            canary: Some(counts(canary.since(&w.canary))),
            baseline: Some(counts(baseline.since(&w.baseline))),
            // The analysis goes with a rollout's looks until the analyzer
            // has judged one: it keeps it for the rest, and a look costs
            // the analyzer the same however long the rollout.
            spec_yaml: if sent { String::new() } else { revision.spec_yaml.clone() },
            spec_path: revision.spec_path.clone(),
        }
    }

    /// Records the step's window in the rollout's row. A failed write is
    /// logged, not fatal: the window in memory holds while this process
    /// lives, and a verdict already given is not thrown away for it; only a
    /// restart before the next write resumes an older window.
    async fn keep(&self, r: &Rollout, w: &Window) {
        if let Err(e) = store::save_step_window(self.records.db(), &r.id, w.step, w.step_start_ms, w.record()).await {
            tracing::warn!(rollout = %r.id, error = %e, "cannot record the step's window");
        }
    }

    async fn commit(&self, r: &Rollout, change: Change) -> Result<Next, DbErr> {
        let txn = self.records.db().begin().await?;
        if store::update_rollout(&txn, r, change).await?.is_some() {
            txn.commit().await?;
            self.records.committed(&r.workload_id);
        }
        Ok(Next::Again)
    }

    /// Commits the start of a step and opens its measurement window at once,
    /// so the step's traffic is counted from its first moment.
    async fn commit_step(&self, r: &Rollout, change: Change, window: &mut Option<Window>) -> Result<Next, DbErr> {
        let txn = self.records.db().begin().await?;
        if let Some(started) = store::update_rollout(&txn, r, change).await? {
            let counters = self.step_counters(&started).await;
            let opened = Window::open(started.step, started.step_start_ms, counters);
            store::save_step_window(&txn, &started.id, started.step, started.step_start_ms, opened.record()).await?;
            txn.commit().await?;
            *window = Some(opened);
            self.records.committed(&r.workload_id);
        }
        Ok(Next::Again)
    }

    /// Starts the rollout's baseline: instances of its stable revision, as
    /// that revision was deployed (idempotent).
    async fn start_baseline(&self, stable_id: &str) -> Result<(), DbErr> {
        let key = crate::model::baseline_key(stable_id);
        // One on its way out (a rollout just ended) is started again: kept.
        if self.runner.is_kept(&key) {
            return Ok(());
        }
        let Some(stable) = store::get_revision(self.records.db(), stable_id).await? else { return Ok(()) };
        // A stable revision whose spec no longer parses gets no baseline:
        // the analyzer then sees no baseline traffic and says so.
        let Ok(spec) = stable.parse_spec() else { return Ok(()) };
        self.runner.start_baseline(&stable, spec);
        Ok(())
    }
}
