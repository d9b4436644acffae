//! The local runtime driver: runs each revision as real OS processes (one per
//! replica), injects its environment and `PORT`, checks health over HTTP
//! (`probe`), restarts with backoff, and stops with SIGTERM then SIGKILL
//! (`process`).
//!
//! It persists nothing: it reports every change of a revision's state (and
//! the addresses of its healthy instances) on a channel, and whoever started
//! it records them.

use crate::{
    identity::{self, Bootstrap, NotStarted, Rotations},
    launch::Launch,
    monitor::{Ended, Watch, monitor},
    orphan::{self, Orphan},
    probe::wait_healthy,
    process::{Group, Output, Proc, exit_message, free_port, resolve, resolve_file, stop, tail},
    record,
    state::{Instance, State, fold},
};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use paved_spec::Run;
use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{process::Command, sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

mod ending;

/// Start-up attempts before a revision is declared failed.
const START_ATTEMPTS: u32 = 3;
/// Crashes of a once-healthy instance, within `CRASH_WINDOW`, before it is failed.
const MAX_CRASHES: usize = 5;
const CRASH_WINDOW: Duration = Duration::from_secs(60);

/// A change of a revision's state, as the runtime sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub revision_id: String,
    /// `<environment>/<workload>`.
    pub workload_id: String,
    pub state: State,
    pub message: String,
    /// Addresses of the revision's healthy instances.
    pub backends: Vec<SocketAddr>,
}

pub struct LocalRuntime {
    bin_dirs: Vec<PathBuf>,
    log_dir: PathBuf,
    /// One file per running process with its process group id, so that
    /// processes a killed platform left behind are stopped at the next start.
    run_dir: PathBuf,
    /// `<run_dir>/../secrets/<revision>-<replica>/`: each replica's secret
    /// files, removed when its revision stops.
    secrets_dir: PathBuf,
    reports: mpsc::UnboundedSender<Report>,
    running: Mutex<HashMap<String, (CancellationToken, JoinHandle<()>)>>,
    /// Revisions whose stop waits out a drain (see `stop_drained`), each
    /// with the ticket of that stop; a start takes it off.
    draining: Mutex<HashMap<String, u64>>,
    tickets: std::sync::atomic::AtomicU64,
    /// Revisions being stopped, each with a token cancelled once its
    /// processes are gone: a start of one waits for that.
    stopping: Mutex<HashMap<String, CancellationToken>>,
    /// Replicas the platform before this one left running, by runtime key
    /// and replica index, until a start of their revision adopts them or
    /// `reap_unadopted` stops them.
    orphans: Mutex<HashMap<String, HashMap<usize, Orphan>>>,
    /// Set by `stop_all` and `detach_all`: nothing starts after shutdown began.
    closed: std::sync::atomic::AtomicBool,
    /// Set by `detach_all`: supervisors let their processes run on.
    detached: std::sync::atomic::AtomicBool,
    probe: Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    bootstrap: Option<Bootstrap>,
}

impl LocalRuntime {
    /// `bin_dirs` come first on the workloads' `PATH` (the directory of the
    /// Paved binaries, so `command: [hello]` finds the example); process
    /// output goes to `log_dir/<revision>-<replica>.log`. Replicas left
    /// running by the platform before this one (recorded in `run_dir`) are
    /// kept as orphans: a start of their revision adopts them instead of
    /// starting new processes, and `reap_unadopted` stops the rest.
    pub fn new(
        bin_dirs: Vec<PathBuf>,
        log_dir: PathBuf,
        run_dir: PathBuf,
        reports: mpsc::UnboundedSender<Report>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&run_dir)?;
        std::fs::create_dir_all(&log_dir)?;
        let orphans = orphan::find(&run_dir);
        let probe = Client::builder(TokioExecutor::new()).build_http();
        let secrets_dir = run_dir.parent().unwrap_or(&run_dir).join("secrets");
        // Files of replicas that no longer run (a platform killed outright).
        identity::remove_unrecorded(&secrets_dir, |key| orphans.contains_key(key));
        let orphans = Mutex::new(orphans);
        Ok(Self {
            bin_dirs,
            log_dir,
            run_dir,
            secrets_dir,
            reports,
            running: Mutex::new(HashMap::new()),
            draining: Mutex::default(),
            tickets: Default::default(),
            stopping: Mutex::default(),
            orphans,
            closed: Default::default(),
            detached: Default::default(),
            probe,
            bootstrap: None,
        })
    }

    /// Gives every process an identity from `bootstrap`.
    pub fn with_bootstrap(mut self, bootstrap: Bootstrap) -> Self {
        self.bootstrap = Some(bootstrap);
        self
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<String, (CancellationToken, JoinHandle<()>)>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn orphans(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<usize, Orphan>>> {
        self.orphans.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the replicas left running by the platform before this one
    /// that no start has adopted: call it once every revision that should
    /// run has been started. The runtime keys they ran under.
    pub fn reap_unadopted(&self) -> Vec<String> {
        let orphans: Vec<(String, HashMap<usize, Orphan>)> = self.orphans().drain().collect();
        let mut keys = Vec::new();
        for (key, by_index) in orphans {
            by_index.into_values().for_each(Orphan::reap);
            identity::remove_all(&self.secrets_dir, &key);
            keys.push(key);
        }
        keys
    }

    /// Starts a revision unless it is already running.
    pub fn start(self: &Arc<Self>, launch: Launch) {
        let mut running = self.running();
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            tracing::warn!(revision = %launch.revision_id, "not started: the platform is shutting down");
            return;
        }
        self.keep(&launch.revision_id);
        if running.get(&launch.revision_id).is_some_and(|(_, task)| !task.is_finished()) {
            return;
        }
        let cancel = CancellationToken::new();
        let id = launch.revision_id.clone();
        // The supervisor's calls (a bootstrap token for each instance it
        // starts) join the trace that started the revision.
        let empty = tracing::field::Empty;
        let span = tracing::info_span!(parent: None, "run revision", revision.id = %id, paved.workload = empty, paved.revision = empty, paved.artifact_digest = empty);
        // Its own lineage: a baseline started by a rollout runs the stable revision.
        let own = paved_telemetry::propagation::Lineage {
            workload: format!("{}/{}", launch.environment, launch.workload),
            revision: launch.revision.clone(),
            artifact_digest: launch.artifact_digest.clone(),
        };
        paved_telemetry::propagation::continue_trace(&span, &own);
        // Taken here, not in the task: `reap_unadopted` may run before it does.
        let orphans = self.orphans().remove(&id).unwrap_or_default();
        // A run of it being stopped ends first: its records, secret files
        // and last report are under the same key.
        let (previous, stopped) = (self.previous_run(&id), cancel.clone());
        let supervise = self.clone().supervise_revision(launch, orphans, cancel.clone());
        let task = tokio::spawn(
            async move {
                if let Some(previous) = previous {
                    tokio::select! {
                        _ = previous.cancelled() => {}
                        _ = stopped.cancelled() => return,
                    }
                }
                supervise.await
            }
            .instrument(span),
        );
        running.insert(id, (cancel, task));
    }

    /// Whether a revision is being supervised (starting, running,
    /// restarting, or draining before a stop: see `is_draining`).
    pub fn is_running(&self, revision_id: &str) -> bool {
        self.running().get(revision_id).is_some_and(|(_, task)| !task.is_finished())
    }

    /// Stops a revision and waits until its processes are gone.
    pub async fn stop(&self, revision_id: &str) {
        let ending = self.end_run(&mut self.running(), revision_id);
        if let Some(ending) = ending {
            ending.finish(self).await;
        }
    }

    /// What each running replica uses now, read from `/proc` (blocking
    /// reads: call it off the async threads).
    pub fn usage(&self) -> Vec<crate::usage::ProcessUsage> {
        crate::usage::read(&self.run_dir)
    }

    /// Stops every revision (platform shutdown).
    pub async fn stop_all(&self) {
        self.end_all().await;
        let _ = self.reap_unadopted();
    }

    /// Stops supervising without stopping anything: every process runs on,
    /// recorded in the run directory, for the next platform to adopt (a
    /// provisioner stopped to be upgraded or restarted in production).
    pub async fn detach_all(&self) {
        self.detached.store(true, std::sync::atomic::Ordering::SeqCst);
        self.end_all().await;
    }

    async fn end_all(&self) {
        let all: Vec<_> = {
            let mut running = self.running();
            self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
            running.drain().collect()
        };
        for (_, (cancel, _)) in &all {
            cancel.cancel();
        }
        for (_, (_, task)) in all {
            let _ = task.await;
        }
    }

    /// Ends a supervised process when its supervisor is cancelled: stopped,
    /// or, after `detach_all`, left running with its record.
    async fn end(&self, process: &mut Proc, group: Group) {
        if !self.detached.load(std::sync::atomic::Ordering::SeqCst) {
            stop(process, group).await;
        }
    }

    fn report(&self, launch: &Launch, state: State, message: String, backends: Vec<SocketAddr>) {
        let revision_id = launch.revision_id.clone();
        let workload_id = format!("{}/{}", launch.environment, launch.workload);
        // The receiver lives as long as the provisioner; after it is gone
        // there is no one left to tell.
        let _ = self.reports.send(Report { revision_id, workload_id, state, message, backends });
    }

    /// Runs the replicas of a revision and folds their states into the
    /// revision's: healthy when all are, failed when any is.
    async fn supervise_revision(self: Arc<Self>, launch: Launch, mut orphans: HashMap<usize, Orphan>, cancel: CancellationToken) {
        let replicas = launch.spec.replicas as usize;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let instances = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        // An adopted replica counts as healthy where it serves until its
        // health check says otherwise: the first report must not take it
        // out of the routes it is serving in.
        let mut states: Vec<Instance> = (0..replicas)
            .map(|index| match orphans.get(&index) {
                Some(o) => {
                    Instance { state: State::Healthy, addr: Some(SocketAddr::from(([127, 0, 0, 1], o.port))), message: String::new() }
                }
                None => Instance::starting(),
            })
            .collect();
        // One replica at a time restarts for a rotation, until it is healthy.
        let turn = Arc::new(tokio::sync::Semaphore::new(1));
        for index in 0..replicas {
            let orphan = orphans.remove(&index);
            let supervise = self.clone().supervise_instance(launch.clone(), index, orphan, tx.clone(), instances.clone(), turn.clone());
            tasks.spawn(supervise.in_current_span());
        }
        // Replicas beyond the revision's count: nothing to adopt them as.
        for orphan in orphans.into_values() {
            orphan.reap();
        }
        drop(tx);
        let first = fold(&states);
        self.report(&launch, first.0, first.1.clone(), first.2.clone());
        let mut last = Some(first);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                update = rx.recv() => {
                    let Some((index, instance)) = update else { break };
                    states[index] = instance;
                    let folded = fold(&states);
                    if last.as_ref() != Some(&folded) {
                        self.report(&launch, folded.0, folded.1.clone(), folded.2.clone());
                        if folded.0 == State::Failed {
                            instances.cancel();
                            while tasks.join_next().await.is_some() {}
                            return identity::remove_all(&self.secrets_dir, &launch.revision_id);
                        }
                        last = Some(folded);
                    }
                }
            }
        }
        instances.cancel();
        while tasks.join_next().await.is_some() {}
        // Detached, it runs on (reading its secret files): nothing to report.
        if !self.detached.load(std::sync::atomic::Ordering::SeqCst) {
            identity::remove_all(&self.secrets_dir, &launch.revision_id);
            self.report(&launch, State::Stopped, String::new(), Vec::new());
        }
    }

    async fn supervise_instance(
        self: Arc<Self>,
        launch: Launch,
        index: usize,
        mut orphan: Option<Orphan>,
        tx: mpsc::UnboundedSender<(usize, Instance)>,
        cancel: CancellationToken,
        turn: Arc<tokio::sync::Semaphore>,
    ) {
        // What it was given is never in what is reported of it (the tail of
        // its output included): its token and secrets' values, scrubbed.
        let given: Mutex<Vec<String>> = Mutex::default();
        let send = |mut instance: Instance| {
            instance.message = identity::scrub(instance.message, &given.lock().unwrap_or_else(|p| p.into_inner()));
            let _ = tx.send((index, instance));
        };
        let health = &launch.spec.health;
        let mut attempts = Attempts::default();
        let mut crashes: VecDeque<tokio::time::Instant> = VecDeque::new();
        // Held from a rotation's stop until the restarted process is healthy.
        let mut my_turn: Option<tokio::sync::OwnedSemaphorePermit> = None;
        loop {
            let adopted = orphan.take().and_then(|orphan| self.adopt(&launch, index, orphan));
            let ((mut child, addr, output, group), mut rotations) = match adopted {
                Some(adopted) => {
                    let (rotations, values) = self.rotations_of_adopted(&launch, index).await;
                    *given.lock().unwrap_or_else(|p| p.into_inner()) = values;
                    (adopted, rotations)
                }
                None => match self.spawn(&launch, index).await {
                    Ok((spawned, rotations, values)) => {
                        *given.lock().unwrap_or_else(|p| p.into_inner()) = values;
                        (spawned, rotations)
                    }
                    Err(NotStarted::Final(message)) => return send(Instance::failed(message)),
                    Err(NotStarted::Retry(message)) => match attempts.failed("not started", message, &send, &cancel).await {
                        true => continue,
                        false => return,
                    },
                },
            };
            let started = tokio::select! {
                _ = cancel.cancelled() => return self.end(&mut child, group).await,
                message = exit_message(&mut child, &output) => Err(message),
                ok = wait_healthy(&self.probe, addr, health) => ok.map_err(|e| format!("{e}{}", tail(&output))),
            };
            match started {
                Ok(()) => {
                    attempts = Attempts::default();
                    drop(my_turn.take());
                    send(Instance { state: State::Healthy, addr: Some(addr), message: String::new() });
                }
                Err(message) => {
                    stop(&mut child, group).await;
                    match attempts.failed("did not become healthy", message, &send, &cancel).await {
                        true => continue,
                        false => return,
                    }
                }
            }
            // Healthy: watch it.
            let watch =
                Watch { launch: &launch, index, addr, output: &output, group: &group, probe: &self.probe, secrets_dir: &self.secrets_dir };
            let message = match monitor(&mut child, &watch, &mut rotations, &send, &cancel).await {
                Ended::Cancelled => return self.end(&mut child, group).await,
                Ended::Rotated => {
                    // Its turn: the replica before it is healthy again.
                    let permit = tokio::select! {
                        _ = cancel.cancelled() => return self.end(&mut child, group).await,
                        message = exit_message(&mut child, &output) => Err(message),
                        permit = turn.clone().acquire_owned() => Ok(permit.ok()),
                    };
                    match permit {
                        Ok(permit) => {
                            drop(std::mem::replace(&mut my_turn, permit));
                            stop(&mut child, group).await;
                            send(Instance { state: State::Starting, addr: None, message: "restarting with its rotated secrets".into() });
                            continue;
                        }
                        Err(message) => message,
                    }
                }
                Ended::Failed(message) => message,
            };
            stop(&mut child, group).await;
            let now = tokio::time::Instant::now();
            crashes.push_back(now);
            while crashes.front().is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW) {
                crashes.pop_front();
            }
            if crashes.len() >= MAX_CRASHES {
                return send(Instance::failed(format!("crashed {} times within {:?}: {message}", crashes.len(), CRASH_WINDOW)));
            }
            send(Instance { state: State::Unhealthy, addr: None, message });
            if sleep_or_cancel(&mut attempts.backoff, &cancel).await {
                return;
            }
        }
    }

    /// Takes over a replica the platform before this one left running (its
    /// port recorded): `None`, to start a new one instead, when it is gone.
    fn adopt(&self, launch: &Launch, index: usize, orphan: Orphan) -> Option<(Proc, SocketAddr, Output, Group)> {
        if orphan.process.has_exited() {
            tracing::info!(revision = %launch.revision_id, index, "a replica left running is gone; starting a new one");
            orphan.reap();
            return None;
        }
        tracing::info!(revision = %launch.revision_id, index, pid = orphan.pgid, "adopted a replica left running by the platform before this one");
        let output = Output::continued(self.log(launch, index));
        let addr = SocketAddr::from(([127, 0, 0, 1], orphan.port));
        let group = Group { pid: Some(nix::unistd::Pid::from_raw(orphan.pgid)), file: Some(orphan.file) };
        Some((orphan.process, addr, output, group))
    }

    fn log(&self, launch: &Launch, index: usize) -> PathBuf {
        self.log_dir.join(format!("{}-{index}.log", launch.revision_id))
    }

    /// Starts one process; returns it with its address, its output and its
    /// process group (kept apart: once the process is reaped its id is
    /// gone, but what it spawned may still be running in the group).
    /// The values it was given come back to be kept out of its reports.
    async fn spawn(
        &self,
        launch: &Launch,
        index: usize,
    ) -> Result<((Proc, SocketAddr, Output, Group), Rotations, Vec<String>), NotStarted> {
        let port = free_port().map_err(|e| NotStarted::Retry(format!("no free port: {e}")))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let path_var = self.path_var();
        let (program, args) = program(launch, &path_var).map_err(NotStarted::Final)?;
        let identity = identity::obtain(self.bootstrap.as_ref(), launch, &program).await?;
        let secrets_dir = identity::dir(&self.secrets_dir, &launch.revision_id, index);
        let files = !identity.files.is_empty();
        if files {
            identity::write(&secrets_dir, &identity.files)
                .map_err(|e| NotStarted::Retry(format!("cannot write the workload's secret files: {e}")))?;
        }
        let no_log = |e: std::io::Error| NotStarted::Retry(format!("cannot open the workload's log: {e}"));
        let (output, log) = Output::open(self.log(launch, index)).map_err(no_log)?;
        let mut cmd = Command::new(&program);
        cmd.args(args)
            .current_dir(&launch.workdir)
            // A clean environment: the platform's own settings (database
            // URLs, tokens) must not leak into workloads.
            .env_clear()
            .env("PATH", &path_var)
            .envs(["HOME", "LANG", "TZ", "TMPDIR", "RUST_LOG"].into_iter().filter_map(|k| std::env::var_os(k).map(|v| (k, v))))
            .envs(&launch.extra_env)
            .envs(&launch.spec.env)
            .env("PORT", port.to_string())
            // Reached only through its proxy: never on another interface.
            .env("HOST", "127.0.0.1")
            .env("PAVED_WORKLOAD", &launch.workload)
            .env("PAVED_ENVIRONMENT", &launch.environment)
            .env("PAVED_REVISION", &launch.revision_id)
            .envs(identity.env)
            .envs(files.then_some(("PAVED_SECRETS_DIR", &secrets_dir)))
            .stdin(Stdio::null())
            // Straight to its log, not through a pipe to this process: a
            // workload must not lose its output, or die of SIGPIPE, when
            // the platform that started it is gone.
            .stdout(Stdio::from(log.try_clone().map_err(no_log)?))
            .stderr(Stdio::from(log))
            // Its own process group, so stopping it also stops what it spawned.
            // Not killed when its handle is dropped: it may outlive this
            // process (see `detach_all`); the data plane's host stops what
            // no platform comes back for.
            .process_group(0);
        let child = cmd.spawn().map_err(|e| NotStarted::Final(format!("cannot start {}: {e}", program.display())))?;
        let pid = child.id().and_then(|pid| i32::try_from(pid).ok()).map(nix::unistd::Pid::from_raw);
        let file = record::path(&self.run_dir, &launch.revision_id, index);
        let group = match pid {
            Some(pid) => match record::write(&file, pid.as_raw(), port) {
                Ok(()) => Group { pid: Some(pid), file: Some(file) },
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "cannot record a workload's process group");
                    Group { pid: Some(pid), file: None }
                }
            },
            None => Group { pid: None, file: None },
        };
        Ok(((Proc::Child(child), addr, output, group), identity.rotations, identity.redact))
    }

    /// The rotations of a replica the platform before this one started:
    /// its files written again with the current values under a new identity
    /// of its own (its process keeps the token it was started with). None
    /// when its spec delivers nothing that rotates, or on failure; with
    /// the values to keep out of its reports.
    async fn rotations_of_adopted(&self, launch: &Launch, index: usize) -> (Rotations, Vec<String>) {
        if !launch.spec.rotates() {
            return (None, Vec::new());
        }
        let given = match program(launch, &self.path_var()) {
            Ok((program, _)) => {
                identity::obtain(self.bootstrap.as_ref(), launch, &program).await.map_err(|(NotStarted::Final(e) | NotStarted::Retry(e))| e)
            }
            Err(e) => Err(e),
        };
        let dir = identity::dir(&self.secrets_dir, &launch.revision_id, index);
        let written = given.and_then(|given| {
            identity::write(&dir, &given.files)
                .map(|()| (given.rotations, given.redact))
                .map_err(|e| format!("cannot write its secret files: {e}"))
        });
        written.unwrap_or_else(|e| {
            tracing::warn!(revision = %launch.revision_id, index, error = %e, "an adopted replica gets no secret rotations until it restarts");
            (None, Vec::new())
        })
    }

    fn path_var(&self) -> std::ffi::OsString {
        let system = std::env::var_os("PATH").unwrap_or_default();
        let dirs = self.bin_dirs.iter().cloned().chain(std::env::split_paths(&system));
        std::env::join_paths(dirs).unwrap_or(system)
    }
}

/// The executable `launch` runs (found on `path_var` or in its directory),
/// and its arguments.
fn program<'a>(launch: &'a Launch, path_var: &std::ffi::OsStr) -> Result<(PathBuf, &'a [String]), String> {
    match &launch.spec.run {
        Run::Command(argv) => Ok((resolve(&argv[0], &launch.workdir, path_var)?, &argv[1..])),
        Run::Artifact(path) => Ok((resolve_file(&launch.workdir.join(path))?, &[])),
    }
}

/// A replica's failed start attempts in a row, and the backoff before the next.
struct Attempts {
    count: u32,
    backoff: Duration,
}

impl Default for Attempts {
    fn default() -> Self {
        Self { count: 0, backoff: Duration::from_millis(250) }
    }
}

impl Attempts {
    /// Counts a failed attempt (`what` happened, `message` says why) and
    /// waits out the backoff: true to try again; false when it was the
    /// last (the replica is reported failed) or the wait was cancelled.
    async fn failed(&mut self, what: &str, message: String, send: &impl Fn(Instance), cancel: &CancellationToken) -> bool {
        self.count += 1;
        if self.count >= START_ATTEMPTS {
            send(Instance::failed(format!("{what} in {} attempts: {message}", self.count)));
            return false;
        }
        send(Instance { state: State::Starting, addr: None, message });
        !sleep_or_cancel(&mut self.backoff, cancel).await
    }
}

/// Sleeps for the backoff (doubling it, up to 10 s); true if cancelled meanwhile.
async fn sleep_or_cancel(backoff: &mut Duration, cancel: &CancellationToken) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(Duration::from_secs(10));
    tokio::select! {
        _ = cancel.cancelled() => true,
        _ = tokio::time::sleep(wait) => false,
    }
}
