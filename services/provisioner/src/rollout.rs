//! The rollout state machine, its driver, and the operations on it.
//!
//! `validate → policy → identity → start → step (once per weight) → promote
//! → done`, or from any stage straight to `done` as rolled back, aborted or
//! superseded. Every transition is committed, with its event, before the
//! stage acts, and every action is idempotent (start a revision that may
//! already run, route a proxy to the recorded weights). So a driver that dies
//! anywhere — the provisioner SIGKILLed — is replaced at the next start by
//! one that reads the last committed transition and carries on.
//!
//! The driver and the API (pause, abort, …) both update rollouts; each
//! update names the version it read ([`store::update_rollout`]) and, when
//! another writer came first, reads again and decides anew. Transitions that
//! change a workload's routing (promote, roll back) also hold the apply lock,
//! so they never interleave with an apply of the same workload.

use crate::{
    Provisioner, lock,
    model::{Revision, Rollout, RolloutState, Stage, State},
    proxy::Traffic,
    store::{self, Change},
};
use paved_proto::{
    canary_analyzer::v1::{JudgeLookRequest, RequestCounts, Verdict},
    timestamp_from_millis,
};
use paved_spec::RolloutPolicy;
use paved_stream::consumer::Backoff;
use sea_orm::{DbErr, TransactionTrait};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error("{0}")]
    NotFound(String),
    /// The operation does not apply in the rollout's or workload's state.
    #[error("{0}")]
    Precondition(String),
    #[error("database: {0}")]
    Database(#[from] DbErr),
}

/// (revision, share of traffic in percent) per route, and (revision, its
/// traffic) per revision that served requests.
pub type TrafficMetrics = (Vec<(String, u32)>, Vec<(String, Traffic)>);

/// What the driver does after a pass.
enum Next {
    /// A transition was committed (or lost to another writer): look again.
    Again,
    /// Nothing to do until something changes, or until the instant.
    Wait(Option<tokio::time::Instant>),
    Done,
}

/// The measurement window of the traffic step being held.
struct Window {
    step: u32,
    step_start_ms: i64,
    /// The canary's and the baseline's counters at the last look judged.
    canary: Traffic,
    baseline: Traffic,
    last_look_ms: i64,
    /// Intervals added for want of evidence.
    extensions: u32,
    /// A look sent but not answered, with the counters it ends at: sent
    /// again as it was (same number, same counts), so that a look the
    /// analyzer stored before its answer was lost is not counted twice.
    pending: Option<(JudgeLookRequest, (Traffic, Traffic))>,
}

impl Window {
    fn open(step: u32, step_start_ms: i64, (canary, baseline): (Traffic, Traffic)) -> Self {
        Self { step, step_start_ms, canary, baseline, last_look_ms: step_start_ms, extensions: 0, pending: None }
    }
}

/// How often a step is looked at: a tenth of its interval, within bounds.
/// Each look is a point of the sequential test's dispersion estimate and
/// of the Kayenta judge's series.
fn look_every(interval: Duration) -> Duration {
    (interval / 10).clamp(Duration::from_millis(200), Duration::from_secs(15))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Provisioner {
    /// Drives a rollout to its end in a task of its own (once per process).
    pub(crate) fn drive(&self, id: String, workload_id: &str) {
        if !lock(&self.inner.drivers).insert(id.clone()) {
            return;
        }
        let this = self.clone();
        // Woken by changes to this workload only: a burst of applies to
        // other workloads must not wake every driver (a thousand rollouts
        // would each reread their state a thousand times).
        let changes = self.inner.changes.subscribe(workload_id);
        tokio::spawn(async move {
            this.drive_loop(&id, changes).await;
            lock(&this.inner.drivers).remove(&id);
        });
    }

    async fn drive_loop(&self, id: &str, mut changes: tokio::sync::watch::Receiver<u64>) {
        let mut window = None;
        let mut backoff = Backoff::default();
        let shutdown = self.inner.shutdown.clone();
        loop {
            // Anything recorded from here on wakes the wait below.
            changes.borrow_and_update();
            let pass = async {
                let turn = self.inner.driving.acquire().await.ok();
                self.advance_rollout(id, &mut window, turn).await
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
    /// `turn`: this driver's turn to advance (see [`crate::DRIVING`]),
    /// given back while it waits on the analyzer.
    async fn advance_rollout(
        &self,
        id: &str,
        window: &mut Option<Window>,
        turn: Option<tokio::sync::SemaphorePermit<'_>>,
    ) -> Result<Next, DbErr> {
        let db = &self.inner.db;
        let Some(r) = store::get_rollout(db, id).await? else { return Ok(Next::Done) };
        if !r.state.is_active() {
            return Ok(Next::Done);
        }
        if r.state == RolloutState::Paused {
            return Ok(Next::Wait(None));
        }
        let Some(revision) = store::get_revision(db, &r.revision_id).await? else {
            return self.finish(&r, RolloutState::RolledBack, "its revision no longer exists").await.map(|_| Next::Again);
        };
        let spec = match paved_spec::parse(&revision.spec_yaml, &revision.spec_path) {
            Ok(spec) => spec,
            Err(e) => return self.finish(&r, RolloutState::RolledBack, &format!("spec invalid: {e}")).await.map(|_| Next::Again),
        };
        let (environment, name) = r.workload();
        let steps = &spec.rollout.steps;
        let transition = |stage, message: String| Change { stage, ..Change::from(&r, message) };
        match r.stage {
            Stage::Validate | Stage::Policy | Stage::Identity => self.admit(&r, &revision, &spec).await,
            Stage::Start | Stage::Step => {
                let Some(workload) = store::get_workload(db, environment, name).await? else { return Ok(Next::Done) };
                // Judged before anything is started: a failed revision is not
                // started again by its own rollout.
                if revision.state == State::Failed {
                    let reason = format!("revision {} failed: {}", revision.number, revision.message);
                    return self.finish(&r, RolloutState::RolledBack, &reason).await.map(|_| Next::Again);
                }
                self.ensure_proxy(&workload).await.map_err(|e| DbErr::Custom(format!("cannot open the workload's proxy: {e}")))?;
                // Idempotent: a no-op while the revision runs.
                self.inner.runtime.start(self.launch(&revision, spec.clone()));
                // A baseline is for the analyzer to compare with.
                if let (Some(stable), Some(_)) = (&r.stable_revision, &self.inner.analyzer) {
                    self.start_baseline(stable).await?;
                }
                if r.stage == Stage::Start {
                    if revision.state != State::Healthy {
                        return Ok(Next::Wait(None));
                    }
                    if r.stable_revision.is_none() {
                        return self
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
                self.route(&r.workload_id).await?;
                self.hold_step(&r, &revision, &spec, window, turn).await
            }
            Stage::Promote => self.promote(&r, None).await,
            Stage::Done => Ok(Next::Done),
        }
    }

    /// The stages before anything runs — validate, policy, identity — are
    /// decisions without side effects, so their transitions (and the policy
    /// decision) are committed together, from whichever of them the rollout
    /// is at, in one transaction: on to start, or rolled back with the
    /// denials.
    async fn admit(&self, r: &Rollout, revision: &Revision, spec: &paved_spec::WorkloadSpec) -> Result<Next, DbErr> {
        let (environment, name) = r.workload();
        // Decided again (the apply checked too): after a restart the bundle
        // may be another, and the decision recorded is this one.
        let decision = match self.decide(environment, spec).await {
            Ok(d) => d,
            Err(e) => {
                return self.finish(r, RolloutState::RolledBack, &format!("policy evaluation failed: {e}")).await.map(|_| Next::Again);
            }
        };
        let txn = self.inner.db.begin().await?;
        let mut at = r.clone();
        let to = |at: &Rollout, stage, message: String| Change { stage, ..Change::from(at, message) };
        if at.stage == Stage::Validate {
            let change = to(&at, Stage::Policy, format!("spec valid ({})", revision.spec_digest));
            if !store::advance_rollout(&txn, &mut at, change).await? {
                return Ok(Next::Again);
            }
        }
        if at.stage == Stage::Policy {
            if decision.allowed() {
                let warnings =
                    if decision.warnings.is_empty() { String::new() } else { format!("; warnings: {}", decision.warnings.join("; ")) };
                let change = to(&at, Stage::Identity, format!("allowed by policy bundle {}{warnings}", decision.bundle_digest));
                if !store::advance_rollout(&txn, &mut at, change).await? {
                    return Ok(Next::Again);
                }
            }
            store::emit_policy_decision(&txn, &at, &decision).await?;
        }
        if at.stage == Stage::Identity {
            let change = to(&at, Stage::Start, format!("identity spiffe://paved/{environment}/{name}; the secrets broker issues it"));
            if !store::advance_rollout(&txn, &mut at, change).await? {
                return Ok(Next::Again);
            }
        }
        txn.commit().await?;
        self.committed(&r.workload_id);
        if at.stage == Stage::Policy {
            let reason = format!("denied by policy bundle {}: {}", decision.bundle_digest, decision.denials.join("; "));
            self.finish(&at, RolloutState::RolledBack, &reason).await?;
        }
        Ok(Next::Again)
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
                // A step this driver did not start: resumed through the API
                // (its traffic is counted from now), or begun before this
                // process started, when its traffic was counted by a process
                // that is gone. Then it is held again in full rather than
                // judged on part of its interval.
                if r.step_start_ms < self.inner.started_ms {
                    let message = format!("step {} held again from now: its earlier metrics were lost in a restart", r.step + 1);
                    return self.commit_step(r, Change { restart_step: true, ..Change::from(r, message) }, window).await;
                }
                window.insert(Window::open(r.step, r.step_start_ms, self.step_counters(r)))
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
        let counters = self.step_counters(r);
        // A canary restarting mid-step (its platform restarted, a crash it
        // recovers from) is given the interval; at its end it must be healthy.
        if interval_over && revision.state != State::Healthy {
            let why = if revision.message.is_empty() { String::new() } else { format!(": {}", revision.message) };
            let reason = format!("step {} ({}% of traffic) failed: the canary is {}{why}", r.step + 1, r.weight, revision.state.as_str());
            return self.finish(r, RolloutState::RolledBack, &reason).await.map(|_| Next::Again);
        }
        let (verdict, reason) = match &self.inner.analyzer {
            Some(analyzer) => {
                let (request, ends_at) = match w.pending.take() {
                    Some(pending) => pending,
                    None => (self.look_request(r, revision, w, &counters, now, interval_over), counters),
                };
                // Judging can take seconds (Prometheus queries): other
                // rollouts advance meanwhile.
                drop(turn);
                let answer = analyzer.clone().judge_look(request.clone()).await;
                let _turn = self.inner.driving.acquire().await;
                match answer {
                    Ok(response) => {
                        let decision = response.into_inner().decision.unwrap_or_default();
                        let end = request.end_time.as_ref().map_or(now, paved_proto::millis_from_timestamp);
                        (w.canary, w.baseline, w.last_look_ms) = (ends_at.0, ends_at.1, end);
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
                self.finish(r, RolloutState::RolledBack, &reason).await.map(|_| Next::Again)
            }
            Verdict::Inconclusive => {
                let limit = spec.analysis().max_extensions;
                if w.extensions >= limit {
                    let reason = format!("step {} ({}% of traffic) inconclusive after {limit} extensions: {reason}", r.step + 1, r.weight);
                    return self.finish(r, RolloutState::RolledBack, &reason).await.map(|_| Next::Again);
                }
                w.extensions += 1;
                let message = format!("step {} extended by {:?} ({} of {limit}): {reason}", r.step + 1, policy.interval, w.extensions);
                self.commit(r, Change::from(r, message)).await
            }
            Verdict::Continue | Verdict::Unspecified => Ok(Next::Again),
        }
    }

    /// The canary's and the baseline's counters through the workload's proxy.
    fn step_counters(&self, r: &Rollout) -> (Traffic, Traffic) {
        (self.traffic(&r.workload_id, &r.revision_id), self.traffic(&r.workload_id, &baseline_instance(r)))
    }

    /// A look at the step: the requests since the last one.
    fn look_request(
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
        let baseline_weight = lock(&self.inner.proxies)
            .get(&r.workload_id)
            .and_then(|p| p.routes().into_iter().find(|route| route.revision == instance && !route.addrs.is_empty()))
            .map_or(0, |route| route.weight);
        let counts = |t: Traffic| RequestCounts { requests: t.total(), errors: t.errors(), latency: t.latency };
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
            spec_yaml: revision.spec_yaml.clone(),
            spec_path: revision.spec_path.clone(),
        }
    }

    async fn commit(&self, r: &Rollout, change: Change) -> Result<Next, DbErr> {
        let txn = self.inner.db.begin().await?;
        if store::update_rollout(&txn, r, change).await?.is_some() {
            txn.commit().await?;
            self.committed(&r.workload_id);
        }
        Ok(Next::Again)
    }

    /// Commits the start of a step and opens its measurement window at once,
    /// so the step's traffic is counted from its first moment.
    async fn commit_step(&self, r: &Rollout, change: Change, window: &mut Option<Window>) -> Result<Next, DbErr> {
        let txn = self.inner.db.begin().await?;
        if let Some(started) = store::update_rollout(&txn, r, change).await? {
            let counters = self.step_counters(&started);
            txn.commit().await?;
            *window = Some(Window::open(started.step, started.step_start_ms, counters));
            self.committed(&r.workload_id);
        }
        Ok(Next::Again)
    }

    fn committed(&self, workload_id: &str) {
        self.inner.relay.wake();
        self.changed(workload_id);
    }

    /// The new revision becomes the stable one and takes all traffic; the
    /// stable one before it stays running as the standby for a rollback; any
    /// other revision of the workload stops.
    /// `via`: the transition to the promote stage, committed with it.
    async fn promote(&self, r: &Rollout, via: Option<Change>) -> Result<Next, DbErr> {
        let _apply = self.inner.apply_lock.lock().await;
        let txn = self.inner.db.begin().await?;
        let (environment, name) = r.workload();
        let Some(workload) = store::get_workload(&txn, environment, name).await? else { return Ok(Next::Done) };
        let mut at = r.clone();
        if let Some(via) = via
            && !store::advance_rollout(&txn, &mut at, via).await?
        {
            return Ok(Next::Again);
        }
        let change =
            Change { stage: Stage::Done, state: RolloutState::Promoted, weight: 100, ..Change::from(&at, "promoted: all traffic") };
        if store::update_rollout(&txn, &at, change).await?.is_none() {
            return Ok(Next::Again);
        }
        let standby = r.stable_revision.clone().or(workload.standby_revision.clone());
        store::set_routing(&txn, &workload, Some(&r.revision_id), Some(&r.revision_id), standby.as_deref(), None).await?;
        txn.commit().await?;
        self.committed(&r.workload_id);
        // As just committed: under the apply lock nothing else can have
        // changed the routing since.
        self.route_committed(&r.workload_id, Some(&r.revision_id)).await;
        let keep = [Some(r.revision_id.clone()), standby];
        self.stop_baseline(r);
        self.stop_revisions_except(&r.workload_id, &keep).await?;
        Ok(Next::Done)
    }

    /// Ends a rollout without promotion: all traffic back on its stable
    /// revision, the canary stopped. None when another writer came first.
    async fn finish(&self, r: &Rollout, state: RolloutState, reason: &str) -> Result<Option<Rollout>, DbErr> {
        let _apply = self.inner.apply_lock.lock().await;
        let txn = self.inner.db.begin().await?;
        let (environment, name) = r.workload();
        let change = Change { stage: Stage::Done, state, weight: 0, ..Change::from(r, reason) };
        let Some(done) = store::update_rollout(&txn, r, change).await? else { return Ok(None) };
        let workload = store::get_workload(&txn, environment, name).await?;
        if let (Some(workload), Some(stable)) = (workload.as_ref(), r.stable_revision.as_deref()) {
            let standby = workload.standby_revision.as_deref();
            store::set_routing(&txn, workload, Some(stable), Some(stable), standby, Some((&r.revision_id, reason))).await?;
        }
        txn.commit().await?;
        self.committed(&r.workload_id);
        tracing::warn!(rollout = %r.id, workload = %r.workload_id, state = state.as_str(), %reason, "rollout ended without promotion");
        let stable = r.stable_revision.as_deref().or(workload.as_ref().and_then(|w| w.stable_revision.as_deref()));
        self.route_committed(&r.workload_id, stable).await;
        let keep = [r.stable_revision.clone(), workload.and_then(|w| w.standby_revision)];
        self.stop_baseline(r);
        self.stop_revisions_except(&r.workload_id, &keep).await?;
        Ok(Some(done))
    }

    /// Starts the rollout's baseline: instances of its stable revision, as
    /// that revision was deployed (idempotent).
    async fn start_baseline(&self, stable_id: &str) -> Result<(), DbErr> {
        let key = crate::baseline_key(stable_id);
        if self.inner.runtime.is_running(&key) {
            return Ok(());
        }
        let Some(stable) = store::get_revision(&self.inner.db, stable_id).await? else { return Ok(()) };
        // A stable revision whose spec no longer parses gets no baseline:
        // the analyzer then sees no baseline traffic and says so.
        let Ok(spec) = paved_spec::parse(&stable.spec_yaml, &stable.spec_path) else { return Ok(()) };
        let mut launch = self.launch(&stable, spec);
        launch.revision_id = key;
        self.inner.runtime.start(launch);
        Ok(())
    }

    /// Stops, in the background, the rollout's baseline (it ended).
    fn stop_baseline(&self, r: &Rollout) {
        if let Some(stable) = &r.stable_revision {
            let (runtime, key) = (self.inner.runtime.clone(), crate::baseline_key(stable));
            tokio::spawn(async move { runtime.stop(&key).await });
        }
    }

    /// Stops, in the background, the workload's running revisions not in `keep`.
    async fn stop_revisions_except(&self, workload_id: &str, keep: &[Option<String>]) -> Result<(), DbErr> {
        for old in store::active_revisions(&self.inner.db, Some(workload_id)).await? {
            if !keep.iter().flatten().any(|k| *k == old.id) {
                let runtime = self.inner.runtime.clone();
                tokio::spawn(async move { runtime.stop(&old.id).await });
            }
        }
        Ok(())
    }

    /// The canary's traffic through the workload's proxy since it opened.
    fn traffic(&self, workload_id: &str, revision_id: &str) -> Traffic {
        lock(&self.inner.proxies).get(workload_id).map(|p| p.traffic(revision_id)).unwrap_or_default()
    }

    /// Each routed revision's weight, and every revision's traffic, through
    /// the workload's proxy; None when it has no proxy here.
    pub fn traffic_metrics(&self, workload_id: &str) -> Option<TrafficMetrics> {
        let proxies = lock(&self.inner.proxies);
        let proxy = proxies.get(workload_id)?;
        let total: u32 = proxy.routes().iter().filter(|r| !r.addrs.is_empty()).map(|r| r.weight).sum();
        let weights = proxy
            .routes()
            .into_iter()
            .map(|r| {
                let share = if r.addrs.is_empty() || total == 0 { 0 } else { r.weight * 100 / total };
                (r.revision, share)
            })
            .collect();
        Some((weights, proxy.traffic_all()))
    }

    pub async fn rollout(&self, id: &str) -> Result<Rollout, RolloutError> {
        store::get_rollout(&self.inner.db, id).await?.ok_or_else(|| RolloutError::NotFound(format!("no rollout {id}")))
    }

    /// The traffic steps of a rollout's revision (for the API's view).
    pub async fn rollout_steps(&self, rollout: &Rollout) -> Result<Vec<u32>, DbErr> {
        let revision = store::get_revision(&self.inner.db, &rollout.revision_id).await?;
        Ok(revision.and_then(|r| paved_spec::parse(&r.spec_yaml, &r.spec_path).ok()).map(|s| s.rollout.steps).unwrap_or_default())
    }

    /// Wakes on every change recorded for the workload (for watchers).
    pub fn subscribe(&self, workload_id: &str) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changes.subscribe(workload_id)
    }

    /// Applies the change `decide` returns for the rollout as read (None:
    /// already so), rereading when another writer came first.
    async fn modify(&self, id: &str, decide: impl Fn(&Rollout) -> Result<Option<Change>, RolloutError>) -> Result<Rollout, RolloutError> {
        for _ in 0..20 {
            let r = self.rollout(id).await?;
            let Some(change) = decide(&r)? else { return Ok(r) };
            let txn = self.inner.db.begin().await?;
            if let Some(updated) = store::update_rollout(&txn, &r, change).await? {
                txn.commit().await?;
                self.committed(&r.workload_id);
                return Ok(updated);
            }
        }
        Err(RolloutError::Precondition(format!("rollout {id} keeps changing; retry")))
    }

    pub async fn pause(&self, id: &str) -> Result<Rollout, RolloutError> {
        self.modify(id, |r| match r.state {
            RolloutState::Running => Ok(Some(Change { state: RolloutState::Paused, ..Change::from(r, "paused") })),
            RolloutState::Paused => Ok(None),
            _ => Err(ended(r, "paused")),
        })
        .await
    }

    pub async fn resume(&self, id: &str) -> Result<Rollout, RolloutError> {
        self.modify(id, |r| match r.state {
            RolloutState::Paused => {
                let message = format!("resumed; step {} is held again in full", r.step + 1);
                Ok(Some(Change { state: RolloutState::Running, restart_step: true, ..Change::from(r, message) }))
            }
            RolloutState::Running => Ok(None),
            _ => Err(ended(r, "resumed")),
        })
        .await
    }

    /// Skips the remaining steps. Only once the canary has passed its start
    /// (it is healthy and holds traffic): promoting a revision that never
    /// became healthy would send all traffic nowhere.
    pub async fn promote_now(&self, id: &str) -> Result<Rollout, RolloutError> {
        self.modify(id, |r| match (r.state.is_active(), r.stage) {
            (false, _) => Err(ended(r, "promoted")),
            (true, Stage::Promote) => Ok(None),
            (true, Stage::Step) => Ok(Some(Change {
                stage: Stage::Promote,
                state: RolloutState::Running,
                ..Change::from(r, "promoted now: the remaining steps are skipped")
            })),
            (true, stage) => Err(RolloutError::Precondition(format!(
                "rollout {} is at stage {}: it can be promoted once its canary is healthy and taking traffic",
                r.id,
                stage.as_str()
            ))),
        })
        .await
    }

    pub async fn abort(&self, id: &str) -> Result<Rollout, RolloutError> {
        self.end(id, RolloutState::Aborted, "aborted: all traffic back on the stable revision").await
    }

    async fn end(&self, id: &str, state: RolloutState, reason: &str) -> Result<Rollout, RolloutError> {
        for _ in 0..20 {
            let r = self.rollout(id).await?;
            if !r.state.is_active() {
                return Err(ended(&r, "stopped"));
            }
            if let Some(done) = self.finish(&r, state, reason).await? {
                return Ok(done);
            }
        }
        Err(RolloutError::Precondition(format!("rollout {id} keeps changing; retry")))
    }

    /// All of the workload's traffic back on its last known-good revision:
    /// a rollout under way is rolled back to its stable revision; otherwise
    /// the standby (the stable revision before the current one, kept
    /// running) takes over, and the current stable one becomes the standby.
    /// Returns the revision that now takes the traffic.
    pub async fn rollback(&self, environment: &str, name: &str) -> Result<String, RolloutError> {
        let db = &self.inner.db;
        let missing = || RolloutError::NotFound(format!("no workload {name} in environment {environment}"));
        let workload = store::get_workload(db, environment, name).await?.ok_or_else(missing)?;
        if let Some(r) = store::active_rollouts(db, Some(&workload.id())).await?.pop() {
            let Some(stable) = r.stable_revision.clone() else {
                return Err(RolloutError::Precondition(format!("{name} has no earlier revision: its first one is still rolling out")));
            };
            self.end(&r.id, RolloutState::RolledBack, "rolled back on command").await?;
            return Ok(stable);
        }
        let _apply = self.inner.apply_lock.lock().await;
        let txn = db.begin().await?;
        let workload = store::get_workload(&txn, environment, name).await?.ok_or_else(missing)?;
        let (Some(target), Some(stable)) = (workload.standby_revision.clone(), workload.stable_revision.clone()) else {
            return Err(RolloutError::Precondition(format!("{name} in {environment} has no earlier known-good revision to roll back to")));
        };
        let Some(revision) = store::get_revision(&txn, &target).await? else {
            return Err(RolloutError::Precondition(format!("the standby revision {target} no longer exists")));
        };
        if revision.state == State::Failed {
            return Err(RolloutError::Precondition(format!("the standby revision {} has failed: {}", revision.number, revision.message)));
        }
        store::set_routing(&txn, &workload, Some(&target), Some(&target), Some(&stable), Some((&stable, "rolled back on command"))).await?;
        txn.commit().await?;
        self.committed(&workload.id());
        self.route(&workload.id()).await?;
        // Normally running already; after a failure it is started again and
        // takes the traffic once healthy.
        if let Ok(spec) = paved_spec::parse(&revision.spec_yaml, &revision.spec_path) {
            self.ensure_proxy(&workload).await.map_err(|e| DbErr::Custom(format!("cannot open the workload's proxy: {e}")))?;
            self.inner.runtime.start(self.launch(&revision, spec));
        }
        tracing::info!(workload = %workload.id(), to = revision.number, "rolled back on command");
        Ok(target)
    }
}

/// The runtime's name for the rollout's baseline; empty for a first revision.
fn baseline_instance(r: &Rollout) -> String {
    r.stable_revision.as_deref().map(crate::baseline_key).unwrap_or_default()
}

fn ended(r: &Rollout, verb: &str) -> RolloutError {
    RolloutError::Precondition(format!("rollout {} has ended ({}): it cannot be {verb}", r.id, r.state.as_str()))
}

fn step_message(index: usize, steps: &[u32], interval: Duration, before: &str) -> String {
    let weight = steps.get(index).copied().unwrap_or(100);
    format!("{before}; step {} of {}: {weight}% of traffic for {interval:?}", index + 1, steps.len())
}

/// The step gate of a provisioner without a canary analyzer: the canary's
/// share of 5xx answers and its p99 latency during the step must be within
/// the rollout's limits. Returns a summary of the evidence, or why the step
/// failed.
pub fn gate(traffic: &Traffic, policy: &RolloutPolicy) -> Result<String, String> {
    let total = traffic.total();
    if total == 0 {
        return Ok("no canary analyzer configured and no requests during the step: only health was checked".into());
    }
    let errors = traffic.errors();
    let percent = |ppm: f64| ppm / 10_000.0;
    let error_ppm = errors as f64 * 1_000_000.0 / total as f64;
    if error_ppm > f64::from(policy.max_error_ppm) {
        return Err(format!(
            "error rate {:.2}% ({errors} of {total} requests answered 5xx) is above the limit of {:.2}%",
            percent(error_ppm),
            percent(f64::from(policy.max_error_ppm))
        ));
    }
    let p99 = traffic.quantile(0.99).unwrap_or_default();
    if p99 > policy.max_p99_latency {
        return Err(format!("p99 latency {p99:.1?} over {total} requests is above the limit of {:?}", policy.max_p99_latency));
    }
    Ok(format!(
        "no canary analyzer configured; within the limits: {total} requests, error rate {:.2}%, p99 latency ≤ {p99:.1?}",
        percent(error_ppm)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(ok: u64, errors: u64, latency_ms: u64) -> Traffic {
        let mut t = Traffic::default();
        t.classes[1] = ok;
        t.classes[4] = errors;
        let bucket = paved_judge::histogram::bucket_of(latency_ms as f64 / 1000.0);
        t.latency[bucket] = ok + errors;
        t
    }

    #[test]
    fn gate_passes_a_healthy_canary_within_limits() {
        let policy = RolloutPolicy::default();
        let summary = gate(&traffic(1000, 5, 20), &policy).expect("passes");
        assert!(summary.contains("1005 requests") && summary.contains("error rate 0.50%"), "{summary}");
        let idle = gate(&Traffic::default(), &policy).expect("no traffic: health only");
        assert!(idle.contains("only health"), "{idle}");
    }

    #[test]
    fn gate_fails_on_errors_or_latency() {
        let policy = RolloutPolicy::default();
        let e = gate(&traffic(95, 5, 20), &policy).expect_err("5% errors");
        assert!(e.contains("error rate 5.00% (5 of 100 requests answered 5xx) is above the limit of 1.00%"), "{e}");
        let e = gate(&traffic(100, 0, 900), &policy).expect_err("slow");
        assert!(e.contains("p99 latency") && e.contains("above the limit of 500ms"), "{e}");
    }
}
