//! `paved.provisioner.v1.ProvisionerService`: validation at the edge, errors
//! as canonical codes with field violations.

mod errors;

use crate::{
    apply::{Submitted, WorkloadView},
    artifacts::ArtifactError,
    handle::Provisioner,
    model,
    power::Ask,
    store,
};
use errors::{database, pr_number, required, workload_not_found};
use paved_grpc::{auth, status};
use paved_proto::provisioner::v1::{
    AbortRolloutRequest, AbortRolloutResponse, ApplyWorkloadRequest, ApplyWorkloadResponse, AttachAttestationRequest,
    AttachAttestationResponse, Attestation, ClosePreviewRequest, ClosePreviewResponse, DeleteWorkloadRequest, DeleteWorkloadResponse,
    GetArtifactRequest, GetArtifactResponse, GetRevisionRequest, GetRevisionResponse, GetRolloutRequest, GetRolloutResponse,
    GetTrafficMetricsRequest, GetTrafficMetricsResponse, GetWorkloadRequest, GetWorkloadResponse, InstanceUsage, LatencyBucket,
    ListInstanceUsageRequest, ListInstanceUsageResponse, ListPreviewsRequest, ListPreviewsResponse, ListRevisionsRequest,
    ListRevisionsResponse, ListRolloutsRequest, ListRolloutsResponse, ListWorkloadsRequest, ListWorkloadsResponse, OpenPreviewRequest,
    OpenPreviewResponse, PauseRolloutRequest, PauseRolloutResponse, PlanAction, PlanWorkloadRequest, PlanWorkloadResponse, PowerReason,
    Preview, PromoteRolloutRequest, PromoteRolloutResponse, PushArtifactRequest, PushArtifactResponse, ResumeRolloutRequest,
    ResumeRolloutResponse, RevisionState, RevisionTraffic, RollbackWorkloadRequest, RollbackWorkloadResponse, Rollout,
    SleepWorkloadRequest, SleepWorkloadResponse, SpecFieldChange, WakeWorkloadRequest, WakeWorkloadResponse, WatchRolloutRequest,
    WatchRolloutResponse, Workload,
    provisioner_service_server::{ProvisionerService, ProvisionerServiceServer},
};
use paved_proto::timestamp_from_millis;
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

pub fn server(provisioner: Provisioner) -> ProvisionerServiceServer<Api> {
    ProvisionerServiceServer::new(Api { provisioner })
}

pub struct Api {
    provisioner: Provisioner,
}

fn attestation_proto(a: crate::artifacts::Attestation) -> Attestation {
    Attestation {
        kind: a.kind,
        payload_json: a.payload,
        signature: a.signature,
        public_key: a.public_key,
        signer: a.signer,
        create_time: Some(timestamp_from_millis(a.create_time_ms)),
    }
}

fn preview_proto(p: crate::preview::Preview) -> Preview {
    Preview {
        pr: i32::try_from(p.pr).unwrap_or(i32::MAX),
        environment: p.environment,
        expire_time: Some(timestamp_from_millis(p.expire_time_ms)),
        create_time: Some(timestamp_from_millis(p.create_time_ms)),
        workloads: p.workloads,
    }
}

fn to_proto(view: WorkloadView) -> Workload {
    let sleeping = view.sleeping();
    Workload {
        sleeping,
        wake_time: view.wake_time_ms.map(timestamp_from_millis),
        sleep_reason: view.workload.sleep_reason.clone().unwrap_or_default(),
        hold_until: view.workload.hold_until_ms.map(timestamp_from_millis),
        last_request_time: view.last_request_ms.map(timestamp_from_millis),
        name: view.workload.name,
        environment: view.workload.environment,
        current_revision: view.workload.current_revision.unwrap_or_default(),
        state: view.state.map_or(RevisionState::Unspecified, |s| s.to_proto()) as i32,
        endpoint: view.endpoint,
        create_time: Some(timestamp_from_millis(view.workload.create_time_ms)),
        stable_revision: view.workload.stable_revision.unwrap_or_default(),
        standby_revision: view.workload.standby_revision.unwrap_or_default(),
        rollout_id: view.rollout_id.unwrap_or_default(),
    }
}

impl Api {
    /// Checks a sleep or wake: names given, the caller may change the
    /// workload, a reason a caller may give (a request is the proxy's own).
    fn power_ask(
        &self,
        caller: &auth::Caller,
        environment: &str,
        workload: &str,
        reason: i32,
        hold_seconds: i64,
    ) -> Result<(PowerReason, Option<std::time::Duration>), Status> {
        required("environment", environment)?;
        required("workload", workload)?;
        caller.grants(&deploy_scope(environment, workload))?;
        if hold_seconds < 0 {
            let violation = ("hold".to_string(), format!("must not be negative, got {hold_seconds} s"));
            return Err(status::invalid_argument("INVALID_HOLD", "a hold is a length of time", vec![violation]));
        }
        let hold = (hold_seconds > 0).then(|| std::time::Duration::from_secs(hold_seconds.unsigned_abs()));
        match PowerReason::try_from(reason) {
            Ok(PowerReason::Unspecified) => Ok((PowerReason::Person, hold)),
            Ok(r @ (PowerReason::Schedule | PowerReason::Idle | PowerReason::Person)) => Ok((r, hold)),
            _ => Err(status::invalid_argument(
                "INVALID_REASON",
                "a sleep or wake needs a reason a caller may give",
                vec![("reason".into(), "one of SCHEDULE, IDLE or PERSON (a request wakes a workload through its proxy)".into())],
            )),
        }
    }

    async fn applied_proto(&self, applied: crate::apply::Applied) -> Result<ApplyWorkloadResponse, Status> {
        let rollout = match &applied.rollout {
            Some(r) => Some(self.rollout_proto(r).await?),
            None => None,
        };
        Ok(ApplyWorkloadResponse {
            workload: Some(to_proto(applied.workload)),
            revision: Some(applied.revision.to_proto()),
            changed: applied.changed,
            rollout,
            policy_warnings: applied.warnings,
        })
    }

    async fn rollout_proto(&self, rollout: &model::Rollout) -> Result<Rollout, Status> {
        let steps = self.provisioner.rollout_steps(rollout).await.map_err(database)?;
        Ok(rollout.to_proto(&steps))
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchRolloutResponse, Status>> + Send>>;

/// What a token needs to change a workload: `deploy:<env>/<workload>`
/// (roles grant `deploy:<env>/*` or a team's `deploy:<env>/shop-*`).
fn deploy_scope(environment: &str, workload: &str) -> String {
    format!("deploy:{environment}/{workload}")
}

/// The deploy scope of the workload a spec names. A spec that does not
/// parse deploys nothing: the apply reports where it is wrong.
fn may_deploy_spec(caller: &auth::Caller, environment: &str, submitted: &Submitted<'_>) -> Result<(), Status> {
    match &submitted.spec {
        Ok(spec) => caller.grants(&deploy_scope(environment, &spec.name)),
        Err(_) => Ok(()),
    }
}

impl Api {
    /// NOT_FOUND (WORKLOAD_NOT_FOUND) unless the workload exists: an empty
    /// list of an unknown workload's revisions would read as "none yet".
    async fn known(&self, environment: &str, name: &str) -> Result<(), Status> {
        match store::get_workload(self.provisioner.db(), environment, name).await.map_err(database)? {
            Some(_) => Ok(()),
            None => Err(workload_not_found(environment, name)),
        }
    }

    /// Steering a rollout needs the deploy scope of its workload.
    async fn may_steer(&self, caller: &auth::Caller, id: &str) -> Result<(), Status> {
        let rollout = self.provisioner.rollout(id).await?;
        let (environment, workload) = rollout.workload();
        caller.grants(&deploy_scope(environment, workload))
    }
}

#[tonic::async_trait]
impl ProvisionerService for Api {
    async fn apply_workload(&self, request: Request<ApplyWorkloadRequest>) -> Result<Response<ApplyWorkloadResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        required("environment", &req.environment)?;
        let spec_yaml = crate::spec_message::text(&req.spec_yaml, req.spec.as_ref())?;
        // Parsed once, here: the scope check and the apply read the same spec.
        let submitted = Submitted::parse(&spec_yaml, &req.spec_path);
        may_deploy_spec(&caller, &req.environment, &submitted)?;
        let spec_field = crate::spec_message::field(req.spec.as_ref());
        let applied = self.provisioner.apply_submitted(&req.environment, submitted, &req.request_id).await;
        let applied = applied.map_err(|e| errors::applied(e, spec_field))?;
        Ok(Response::new(self.applied_proto(applied).await?))
    }

    async fn plan_workload(&self, request: Request<PlanWorkloadRequest>) -> Result<Response<PlanWorkloadResponse>, Status> {
        let req = request.into_inner();
        required("environment", &req.environment)?;
        let spec_yaml = crate::spec_message::text(&req.spec_yaml, req.spec.as_ref())?;
        let plan = self.provisioner.plan(&req.environment, &spec_yaml, &req.spec_path).await;
        let plan = plan.map_err(|e| errors::applied(e, crate::spec_message::field(req.spec.as_ref())))?;
        let action = match plan.action {
            crate::apply::PlanAction::None => PlanAction::None,
            crate::apply::PlanAction::Create => PlanAction::Create,
            crate::apply::PlanAction::Update => PlanAction::Update,
        };
        let (cost, cost_error) = match plan.cost {
            crate::policy::Cost::Known(forecast) => (Some(forecast), String::new()),
            crate::policy::Cost::Unavailable(why) => (None, why),
            crate::policy::Cost::Unasked => (None, "no cost scheduler is configured".to_string()),
        };
        Ok(Response::new(PlanWorkloadResponse {
            cost,
            cost_error,
            action: action as i32,
            current_revision: plan.current_revision.unwrap_or_default(),
            changes: plan
                .changes
                .into_iter()
                .map(|c| SpecFieldChange { path: c.path, before: c.before.unwrap_or_default(), after: c.after.unwrap_or_default() })
                .collect(),
            drift: plan.drift,
            policy_denials: plan.decision.denials,
            policy_warnings: plan.decision.warnings,
            policy_bundle_digest: plan.decision.bundle_digest,
            reason: plan.reason,
        }))
    }

    async fn get_workload(&self, request: Request<GetWorkloadRequest>) -> Result<Response<GetWorkloadResponse>, Status> {
        let req = request.into_inner();
        required("environment", &req.environment)?;
        required("name", &req.name)?;
        let view = self.provisioner.workload(&req.environment, &req.name).await.map_err(database)?;
        let view = view.ok_or_else(|| workload_not_found(&req.environment, &req.name))?;
        Ok(Response::new(GetWorkloadResponse { workload: Some(to_proto(view)) }))
    }

    async fn list_workloads(&self, request: Request<ListWorkloadsRequest>) -> Result<Response<ListWorkloadsResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let views = self.provisioner.workloads(&req.environment, size, offset).await.map_err(database)?;
        let next_page_token = status::next_page_token(offset, size, views.len());
        Ok(Response::new(ListWorkloadsResponse { workloads: views.into_iter().map(to_proto).collect(), next_page_token }))
    }

    async fn get_revision(&self, request: Request<GetRevisionRequest>) -> Result<Response<GetRevisionResponse>, Status> {
        let req = request.into_inner();
        required("id", &req.id)?;
        let revision = store::get_revision(self.provisioner.db(), &req.id).await.map_err(database)?;
        let revision = revision.ok_or_else(|| status::not_found("REVISION_NOT_FOUND", format!("no revision {}", req.id)))?;
        Ok(Response::new(GetRevisionResponse { revision: Some(revision.to_proto()) }))
    }

    async fn list_revisions(&self, request: Request<ListRevisionsRequest>) -> Result<Response<ListRevisionsResponse>, Status> {
        let req = request.into_inner();
        required("environment", &req.environment)?;
        required("workload", &req.workload)?;
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let revisions =
            store::list_revisions(self.provisioner.db(), &req.environment, &req.workload, size, offset).await.map_err(database)?;
        if revisions.is_empty() {
            self.known(&req.environment, &req.workload).await?;
        }
        let next_page_token = status::next_page_token(offset, size, revisions.len());
        Ok(Response::new(ListRevisionsResponse { revisions: revisions.iter().map(|r| r.to_proto()).collect(), next_page_token }))
    }

    async fn get_rollout(&self, request: Request<GetRolloutRequest>) -> Result<Response<GetRolloutResponse>, Status> {
        let req = request.into_inner();
        required("id", &req.id)?;
        let rollout = self.provisioner.rollout(&req.id).await?;
        Ok(Response::new(GetRolloutResponse { rollout: Some(self.rollout_proto(&rollout).await?) }))
    }

    async fn list_rollouts(&self, request: Request<ListRolloutsRequest>) -> Result<Response<ListRolloutsResponse>, Status> {
        let req = request.into_inner();
        required("environment", &req.environment)?;
        required("workload", &req.workload)?;
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let workload_id = model::workload_id(&req.environment, &req.workload);
        let rollouts = store::list_rollouts(self.provisioner.db(), &workload_id, size, offset).await.map_err(database)?;
        if rollouts.is_empty() {
            self.known(&req.environment, &req.workload).await?;
        }
        let next_page_token = status::next_page_token(offset, size, rollouts.len());
        let mut out = Vec::with_capacity(rollouts.len());
        for r in &rollouts {
            out.push(self.rollout_proto(r).await?);
        }
        Ok(Response::new(ListRolloutsResponse { rollouts: out, next_page_token }))
    }

    type WatchRolloutStream = WatchStream;

    async fn watch_rollout(&self, request: Request<WatchRolloutRequest>) -> Result<Response<WatchStream>, Status> {
        let guard = paved_grpc::auth::guard(&request)?;
        let req = request.into_inner();
        required("id", &req.id)?;
        let first = self.provisioner.rollout(&req.id).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let provisioner = self.provisioner.clone();
        let api = Api { provisioner: provisioner.clone() };
        let mut changes = provisioner.subscribe(&first.workload_id);
        tokio::spawn(async move {
            let mut last_version = 0;
            let mut current = Ok(first);
            loop {
                match current {
                    Ok(rollout) => {
                        if rollout.version != last_version {
                            last_version = rollout.version;
                            let message = api.rollout_proto(&rollout).await.map(|r| WatchRolloutResponse { rollout: Some(r) });
                            if tx.send(message).await.is_err() {
                                return;
                            }
                        }
                        if !rollout.state.is_active() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                }
                changes.borrow_and_update();
                // Changes made by another process reach us through the poll.
                tokio::select! {
                    _ = changes.changed() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = tx.closed() => return,
                }
                current = provisioner.rollout(&req.id).await;
            }
        });
        // A watch lives no longer than the token that opened it.
        let updates = Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx));
        Ok(Response::new(Box::pin(paved_grpc::auth::bounded(guard, updates))))
    }

    async fn pause_rollout(&self, request: Request<PauseRolloutRequest>) -> Result<Response<PauseRolloutResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        required("id", &req.id)?;
        self.may_steer(&caller, &req.id).await?;
        let rollout = self.provisioner.pause(&req.id).await?;
        Ok(Response::new(PauseRolloutResponse { rollout: Some(self.rollout_proto(&rollout).await?) }))
    }

    async fn resume_rollout(&self, request: Request<ResumeRolloutRequest>) -> Result<Response<ResumeRolloutResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        required("id", &req.id)?;
        self.may_steer(&caller, &req.id).await?;
        let rollout = self.provisioner.resume(&req.id).await?;
        Ok(Response::new(ResumeRolloutResponse { rollout: Some(self.rollout_proto(&rollout).await?) }))
    }

    async fn abort_rollout(&self, request: Request<AbortRolloutRequest>) -> Result<Response<AbortRolloutResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        required("id", &req.id)?;
        self.may_steer(&caller, &req.id).await?;
        let rollout = self.provisioner.abort(&req.id).await?;
        Ok(Response::new(AbortRolloutResponse { rollout: Some(self.rollout_proto(&rollout).await?) }))
    }

    async fn promote_rollout(&self, request: Request<PromoteRolloutRequest>) -> Result<Response<PromoteRolloutResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        required("id", &req.id)?;
        self.may_steer(&caller, &req.id).await?;
        let rollout = self.provisioner.promote_now(&req.id).await?;
        Ok(Response::new(PromoteRolloutResponse { rollout: Some(self.rollout_proto(&rollout).await?) }))
    }

    async fn rollback_workload(&self, request: Request<RollbackWorkloadRequest>) -> Result<Response<RollbackWorkloadResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        required("environment", &req.environment)?;
        required("workload", &req.workload)?;
        caller.grants(&deploy_scope(&req.environment, &req.workload))?;
        let revision_id = self.provisioner.rollback(&req.environment, &req.workload).await?;
        let view = self.provisioner.workload(&req.environment, &req.workload).await.map_err(database)?;
        Ok(Response::new(RollbackWorkloadResponse { workload: view.map(to_proto), revision_id }))
    }

    async fn delete_workload(&self, request: Request<DeleteWorkloadRequest>) -> Result<Response<DeleteWorkloadResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        required("environment", &req.environment)?;
        required("workload", &req.workload)?;
        caller.grants(&deploy_scope(&req.environment, &req.workload))?;
        if req.environment == paved_grpc::tls::PLATFORM_ENVIRONMENT {
            let why = format!("{} in {} is one of the platform's own services", req.workload, req.environment);
            return Err(status::failed_precondition("PLATFORM_WORKLOAD", why));
        }
        // As it was, for the answer.
        let view = self.provisioner.workload(&req.environment, &req.workload).await.map_err(database)?;
        match self.provisioner.delete_workload(&req.environment, &req.workload, &caller.sub).await.map_err(database)? {
            Some(revisions) => Ok(Response::new(DeleteWorkloadResponse { workload: view.map(to_proto), revisions })),
            None => Err(workload_not_found(&req.environment, &req.workload)),
        }
    }

    async fn sleep_workload(&self, request: Request<SleepWorkloadRequest>) -> Result<Response<SleepWorkloadResponse>, Status> {
        let (caller, req) = (auth::caller(&request)?, request.into_inner());
        #[allow(deprecated)] // read when `hold` is unset
        let hold_seconds = paved_proto::seconds_or(req.hold.as_ref(), req.hold_seconds);
        let (reason, hold) = self.power_ask(&caller, &req.environment, &req.workload, req.reason, hold_seconds)?;
        let ask = Ask { reason, actor: &caller.sub, note: &req.note, hold };
        let changed = self.provisioner.sleep(&req.environment, &req.workload, ask).await?;
        let view = self.provisioner.workload(&req.environment, &req.workload).await.map_err(database)?;
        Ok(Response::new(SleepWorkloadResponse { workload: view.map(to_proto), changed }))
    }

    async fn wake_workload(&self, request: Request<WakeWorkloadRequest>) -> Result<Response<WakeWorkloadResponse>, Status> {
        let (caller, req) = (auth::caller(&request)?, request.into_inner());
        #[allow(deprecated)] // read when `hold` is unset
        let hold_seconds = paved_proto::seconds_or(req.hold.as_ref(), req.hold_seconds);
        let (reason, hold) = self.power_ask(&caller, &req.environment, &req.workload, req.reason, hold_seconds)?;
        let ask = Ask { reason, actor: &caller.sub, note: &req.note, hold };
        let changed = self.provisioner.wake(&req.environment, &req.workload, ask).await?;
        let view = self.provisioner.workload(&req.environment, &req.workload).await.map_err(database)?;
        Ok(Response::new(WakeWorkloadResponse { workload: view.map(to_proto), changed }))
    }

    async fn get_traffic_metrics(&self, request: Request<GetTrafficMetricsRequest>) -> Result<Response<GetTrafficMetricsResponse>, Status> {
        let req = request.into_inner();
        required("environment", &req.environment)?;
        required("workload", &req.workload)?;
        let workload_id = model::workload_id(&req.environment, &req.workload);
        let (weights, traffic) = self.provisioner.traffic_metrics(&workload_id).await.ok_or_else(|| {
            status::not_found("WORKLOAD_NOT_FOUND", format!("no workload {} in environment {} runs here", req.workload, req.environment))
        })?;
        let weight_of = |revision: &str| weights.iter().find(|(r, _)| r == revision).map_or(0, |(_, w)| i32::try_from(*w).unwrap_or(0));
        let mut revisions: Vec<RevisionTraffic> = traffic
            .iter()
            .map(|(revision, t)| RevisionTraffic {
                revision_id: revision.clone(),
                weight: weight_of(revision),
                requests: t.by_class().filter(|(_, n)| *n > 0).collect(),
                latency: t.buckets().map(|(upper_bound_seconds, count)| LatencyBucket { upper_bound_seconds, count }).collect(),
                p50_seconds: t.quantile(0.5).map_or(0.0, |d| d.as_secs_f64()),
                p99_seconds: t.quantile(0.99).map_or(0.0, |d| d.as_secs_f64()),
            })
            .collect();
        // Routed revisions that have not served a request yet are listed too.
        for (revision, weight) in &weights {
            if !revisions.iter().any(|r| &r.revision_id == revision) {
                revisions.push(RevisionTraffic {
                    revision_id: revision.clone(),
                    weight: i32::try_from(*weight).unwrap_or(0),
                    ..Default::default()
                });
            }
        }
        Ok(Response::new(GetTrafficMetricsResponse { revisions }))
    }

    async fn list_instance_usage(
        &self,
        _request: Request<ListInstanceUsageRequest>,
    ) -> Result<Response<ListInstanceUsageResponse>, Status> {
        let read_time = Some(timestamp_from_millis(chrono::Utc::now().timestamp_millis()));
        let instances = self.provisioner.instance_usage().await.map_err(database)?;
        let instances = instances
            .into_iter()
            .map(|i| InstanceUsage {
                environment: i.environment,
                workload: i.workload,
                revision_id: i.revision_id,
                instance: i.usage.instance,
                baseline: i.baseline,
                process: i.usage.process,
                cpu_seconds: i.usage.cpu_seconds,
                memory_bytes: i.usage.memory_bytes,
                memory_peak_bytes: i.usage.memory_peak_bytes,
            })
            .collect();
        Ok(Response::new(ListInstanceUsageResponse { instances, read_time }))
    }

    async fn push_artifact(
        &self,
        request: Request<tonic::Streaming<PushArtifactRequest>>,
    ) -> Result<Response<PushArtifactResponse>, Status> {
        let mut stream = request.into_inner();
        let store = self.provisioner.artifacts();
        let mut upload = store.begin().await?;
        let mut expected = String::new();
        let mut first = true;
        loop {
            let message = match stream.message().await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    // The client went away mid-upload: nothing is stored.
                    upload.abandon().await;
                    return Err(e);
                }
            };
            if first {
                expected = message.expected_digest.clone();
                first = false;
                if !expected.is_empty()
                    && let Err(e) = paved_attest::check_digest(&expected)
                {
                    upload.abandon().await;
                    return Err(status::invalid_argument("INVALID_DIGEST", e.to_string(), [("expected_digest".into(), e.to_string())]));
                }
            }
            if let Err(e) = upload.write(&message.chunk).await {
                upload.abandon().await;
                return Err(e.into());
            }
        }
        let (artifact, existed) = store.finish(self.provisioner.db(), upload, &expected).await?;
        tracing::info!(digest = %artifact.digest, size = artifact.size, existed, "artifact pushed");
        Ok(Response::new(PushArtifactResponse { digest: artifact.digest, size: artifact.size, existed }))
    }

    async fn get_artifact(&self, request: Request<GetArtifactRequest>) -> Result<Response<GetArtifactResponse>, Status> {
        let req = request.into_inner();
        required("digest", &req.digest)?;
        let db = self.provisioner.db();
        let artifact = crate::artifacts::get(db, &req.digest).await.map_err(database)?;
        let artifact = artifact.ok_or_else(|| Status::from(ArtifactError::Unknown(req.digest.clone())))?;
        let attestations = crate::artifacts::attestations_of(db, &req.digest).await.map_err(database)?;
        Ok(Response::new(GetArtifactResponse {
            artifact: Some(paved_proto::provisioner::v1::Artifact {
                digest: artifact.digest,
                size: artifact.size,
                create_time: Some(timestamp_from_millis(artifact.create_time_ms)),
                attestations: attestations.into_iter().map(attestation_proto).collect(),
            }),
        }))
    }

    async fn attach_attestation(&self, request: Request<AttachAttestationRequest>) -> Result<Response<AttachAttestationResponse>, Status> {
        let req = request.into_inner();
        for (field, value) in [("digest", &req.digest), ("kind", &req.kind), ("signature", &req.signature), ("public_key", &req.public_key)]
        {
            required(field, value)?;
        }
        let store = self.provisioner.artifacts();
        let attestation =
            store.attach(self.provisioner.db(), &req.digest, &req.kind, &req.payload_json, &req.signature, &req.public_key).await?;
        tracing::info!(digest = %req.digest, kind = %req.kind, signer = %attestation.signer, "attestation attached");
        Ok(Response::new(AttachAttestationResponse { attestation: Some(attestation_proto(attestation)) }))
    }

    async fn open_preview(&self, request: Request<OpenPreviewRequest>) -> Result<Response<OpenPreviewResponse>, Status> {
        let caller = auth::caller(&request)?;
        let req = request.into_inner();
        let pr = pr_number(req.pr)?;
        let spec_yaml = crate::spec_message::text(&req.spec_yaml, req.spec.as_ref())?;
        let submitted = Submitted::parse(&spec_yaml, &req.spec_path);
        may_deploy_spec(&caller, &crate::preview::environment(pr), &submitted)?;
        #[allow(deprecated)] // read when `ttl` is unset
        let ttl_seconds = paved_proto::seconds_or(req.ttl.as_ref(), req.ttl_seconds);
        let ttl = match ttl_seconds {
            0 => crate::preview::DEFAULT_TTL,
            s if s > 0 && (s as u64) <= crate::preview::MAX_TTL.as_secs() => std::time::Duration::from_secs(s as u64),
            s => {
                let message = format!("ttl must be between 1 s and {} s (30 days), got {s} s", crate::preview::MAX_TTL.as_secs());
                return Err(status::invalid_argument("INVALID_TTL", message.clone(), [("ttl".into(), message)]));
            }
        };
        let opened = self.provisioner.open_preview(pr, ttl, submitted, &req.request_id).await;
        let (preview, applied) = opened.map_err(|e| errors::applied(e, crate::spec_message::field(req.spec.as_ref())))?;
        Ok(Response::new(OpenPreviewResponse { preview: Some(preview_proto(preview)), applied: Some(self.applied_proto(applied).await?) }))
    }

    async fn close_preview(&self, request: Request<ClosePreviewRequest>) -> Result<Response<ClosePreviewResponse>, Status> {
        let caller = auth::caller(&request)?;
        let pr = pr_number(request.into_inner().pr)?;
        caller.grants(&deploy_scope(&crate::preview::environment(pr), "*"))?;
        let workloads = self.provisioner.close_preview(pr, "closed").await.map_err(database)?;
        let workloads = workloads.ok_or_else(|| status::not_found("PREVIEW_NOT_FOUND", format!("no preview pr-{pr}")))?;
        Ok(Response::new(ClosePreviewResponse { workloads }))
    }

    async fn list_previews(&self, _request: Request<ListPreviewsRequest>) -> Result<Response<ListPreviewsResponse>, Status> {
        let previews = self.provisioner.previews().await.map_err(database)?;
        Ok(Response::new(ListPreviewsResponse { previews: previews.into_iter().map(preview_proto).collect() }))
    }
}
