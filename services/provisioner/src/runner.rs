//! Revisions on the local runtime: what a revision's record and parsed spec
//! become as a [`Launch`] — its working directory, the platform's own extra
//! environment, an artifact named by digest run from the store — and the
//! starts and stops the rest of the provisioner asks for.

use crate::{
    artifacts,
    model::{self, Revision},
    routing::Routing,
};
use paved_grpc::tls::PLATFORM_ENVIRONMENT;
use paved_local::{Launch, LocalRuntime};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

/// How long an instance taken out of its proxy's routes runs on before it
/// is stopped: the requests it was given finish. Routes change at once (the
/// data plane is told before this starts), so this covers requests in
/// flight, as Kubernetes' `preStop` sleep covers endpoints catching up.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) struct Runner {
    runtime: Arc<LocalRuntime>,
    /// Where a revision runs when its spec's directory is not on this machine.
    data_dir: PathBuf,
    /// Extra environment for the platform's own services (see `Options::platform_env`).
    platform_env: BTreeMap<String, String>,
    artifacts: Arc<artifacts::Store>,
}

impl Runner {
    pub(crate) fn new(
        runtime: Arc<LocalRuntime>,
        data_dir: PathBuf,
        platform_env: BTreeMap<String, String>,
        artifacts: Arc<artifacts::Store>,
    ) -> Self {
        Self { runtime, data_dir, platform_env, artifacts }
    }

    /// Starts the revision (idempotent: a no-op while it runs).
    pub(crate) fn start(&self, revision: &Revision, spec: paved_spec::WorkloadSpec) {
        self.runtime.start(self.launch(revision, spec));
    }

    /// Starts a rollout's baseline: instances of its stable revision, as
    /// that revision was deployed, under [`model::baseline_key`].
    pub(crate) fn start_baseline(&self, stable: &Revision, spec: paved_spec::WorkloadSpec) {
        let mut launch = self.launch(stable, spec);
        launch.revision_id = model::baseline_key(&stable.id);
        self.runtime.start(launch);
    }

    /// Whether a revision (or baseline) is supervised.
    pub(crate) fn is_running(&self, key: &str) -> bool {
        self.runtime.is_running(key)
    }

    /// Whether it is supervised and not on its way out (a drained stop is
    /// pending, which a start cancels).
    pub(crate) fn is_kept(&self, key: &str) -> bool {
        self.runtime.is_running(key) && !self.runtime.is_draining(key)
    }

    /// Stops a revision (or baseline) and waits until its processes are gone.
    pub(crate) async fn stop(&self, key: &str) {
        self.runtime.stop(key).await;
    }

    /// Stops them in a task of its own: a stop may wait out a grace period,
    /// and the caller may be holding a lock. They have been taken out of
    /// `workload_id`'s routes: each gets [`DRAIN`] first, and leaves the
    /// routes again before it stops (a rollout begun meanwhile may have
    /// routed to it).
    pub(crate) fn stop_later(&self, routing: &Arc<Routing>, workload_id: &str, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let (runtime, routing, workload_id) = (self.runtime.clone(), routing.clone(), workload_id.to_string());
        tokio::spawn(async move {
            let stops = keys.iter().map(|key| {
                let unroute = async {
                    routing.forget(key);
                    routing.route_or_warn(&workload_id).await;
                };
                runtime.stop_drained(key, DRAIN, unroute)
            });
            futures::future::join_all(stops).await;
        });
    }

    /// Stops the replicas the platform before this one left running that no
    /// start has adopted.
    pub(crate) fn reap_unadopted(&self) {
        let _ = self.runtime.reap_unadopted();
    }

    /// What each replica uses now (blocking reads of `/proc`, run apart
    /// from the async threads).
    pub(crate) async fn usage(&self) -> Vec<paved_local::ProcessUsage> {
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || runtime.usage()).await.unwrap_or_default()
    }

    /// Stops everything (platform shutdown); nothing starts after.
    pub(crate) async fn stop_all(&self) {
        self.runtime.stop_all().await;
    }

    /// Lets every process run on for the next provisioner to adopt; nothing
    /// starts after.
    pub(crate) async fn detach_all(&self) {
        self.runtime.detach_all().await;
    }

    fn launch(&self, revision: &Revision, spec: paved_spec::WorkloadSpec) -> Launch {
        let (environment, workload) = revision.workload();
        // Relative commands and artifacts resolve against the spec's directory
        // when it exists on this machine.
        let workdir = Path::new(&revision.spec_path)
            .parent()
            .filter(|d| d.is_absolute() && d.is_dir())
            .map_or_else(|| self.data_dir.clone(), Path::to_path_buf);
        let extra_env = if environment == PLATFORM_ENVIRONMENT { self.platform_env.clone() } else { Default::default() };
        // An artifact named by digest runs from the store.
        let mut spec = spec;
        let artifact_digest = spec.artifact_digest().unwrap_or_default().to_string();
        if !artifact_digest.is_empty()
            && let Ok(path) = self.artifacts.path(&artifact_digest)
        {
            spec.run = paved_spec::Run::Artifact(path.display().to_string());
        }
        Launch {
            revision_id: revision.id.clone(),
            revision: revision.id.clone(),
            workload: workload.to_string(),
            environment: environment.to_string(),
            spec,
            workdir,
            extra_env,
            artifact_digest,
        }
    }
}
