//! The host: the workload proxies of one machine, served to the control
//! plane over gRPC (`RuntimeService`), and how long they outlive it.
//!
//! A proxy's requests never pass through here: each proxy serves its own
//! listening socket on the host's tokio runtime, exactly as it did inside
//! the provisioner. Only commands (open, route, sleep, close) and reads
//! (traffic, metrics) come over the socket.

use crate::{
    convert,
    pb::{self, runtime_service_server::RuntimeService},
};
use futures::{Stream, StreamExt};
use paved_grpc::status;
use paved_local::Proxy;
use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    pin::Pin,
    sync::{Arc, Mutex, atomic::AtomicBool},
    time::Duration,
};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

/// How many events an attached control plane may lag behind before it
/// misses some (it gets the pending wakes again when it attaches anew).
const EVENTS: usize = 1024;

pub struct Host {
    proxies: Mutex<HashMap<String, Proxy>>,
    events: broadcast::Sender<pb::HostEvent>,
    /// How many control planes are attached now.
    attached: watch::Sender<usize>,
    /// Cancelled when the host is to stop: the proxies' parent token.
    stop: CancellationToken,
    /// Where the local runtime records the workload processes it runs: the
    /// host stops them when it stops for good.
    run_dir: Option<PathBuf>,
    /// Sending its proxies to a new host: none opens or closes meanwhile.
    pub(crate) handing_over: AtomicBool,
    /// Cancelled once a new host serves its proxies: this one drains them
    /// and exits, and refuses every command but `GetHost`.
    pub(crate) released: CancellationToken,
    /// [`build_of`] this host's executable, as it started.
    build: String,
    /// Its control socket: a hand-over that fails after the successor took
    /// the socket over still lets go (see `hand_over_to`).
    pub(crate) socket: Option<PathBuf>,
}

/// The identity of an executable file: its device, inode, size and
/// modification time. Installing or building a new binary changes it;
/// hashing the file would say the same, at the cost of reading it.
pub fn build_of(path: &std::path::Path) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(format!("{}:{}:{}:{}.{:09}", m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

impl Host {
    pub fn new(run_dir: Option<PathBuf>, socket: Option<PathBuf>) -> Arc<Self> {
        Arc::new(Self {
            proxies: Mutex::default(),
            events: broadcast::channel(EVENTS).0,
            attached: watch::channel(0).0,
            stop: CancellationToken::new(),
            run_dir,
            handing_over: AtomicBool::new(false),
            released: CancellationToken::new(),
            build: std::env::current_exe().and_then(|exe| build_of(&exe)).unwrap_or_else(|e| format!("unknown ({e})")),
            socket,
        })
    }

    /// Cancelled once a new host took the proxies over.
    pub fn released(&self) -> CancellationToken {
        self.released.clone()
    }

    /// After a hand-over: lets every connection this host holds finish (see
    /// `Proxy::drain`), then stops, leaving the workloads running.
    pub async fn drain_all(&self) {
        let proxies: Vec<Proxy> = self.proxies().drain().map(|(_, p)| p).collect();
        futures::future::join_all(proxies.into_iter().map(Proxy::drain)).await;
        self.stop.cancel();
    }

    pub(crate) fn insert(&self, workload_id: String, proxy: Proxy) {
        // Two opens of one workload at once: the second one's proxy stays.
        if let Some(old) = self.proxies().insert(workload_id, proxy) {
            old.close();
        }
    }

    /// Counts as an attached control plane while it lives: the grace period
    /// does not run out in the middle of a hand-over.
    pub(crate) fn attached_guard(&self) -> Attached {
        Attached::new(&self.attached)
    }

    /// Refuses a command to a host that handed its proxies over: the
    /// caller connects again, and reaches the new host.
    fn serving(&self) -> Result<(), Status> {
        if self.released.is_cancelled() {
            return Err(status::unavailable("HOST_HANDED_OVER", "this host handed its proxies to a new one: connect again".to_string()));
        }
        Ok(())
    }

    /// Refuses changes to the proxies while they are being handed over: the
    /// new host would not get them.
    fn steady(&self) -> Result<(), Status> {
        self.serving()?;
        if self.handing_over.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(status::unavailable("HANDING_OVER", "the proxies are being handed to a new host: try again".to_string()));
        }
        Ok(())
    }

    /// Cancelled once the host stops (Shutdown, or its grace period ran out).
    pub fn stopping(&self) -> CancellationToken {
        self.stop.clone()
    }

    pub(crate) fn proxies(&self) -> std::sync::MutexGuard<'_, HashMap<String, Proxy>> {
        self.proxies.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_proxy<T>(&self, workload_id: &str, f: impl FnOnce(&Proxy) -> T) -> Result<T, Status> {
        self.serving()?;
        self.proxies().get(workload_id).map(f).ok_or_else(|| status::not_found("PROXY_NOT_FOUND", format!("no proxy for {workload_id}")))
    }

    /// Stops for good: closes every proxy (their ports released) and stops
    /// the workloads recorded in the run directory.
    pub async fn stop_all(&self) {
        self.stop.cancel();
        let proxies: Vec<Proxy> = self.proxies().drain().map(|(_, p)| p).collect();
        for proxy in proxies {
            proxy.shut().await;
        }
        if let Some(run_dir) = &self.run_dir {
            paved_local::stop_recorded(run_dir);
        }
    }

    /// Waits until no control plane has been attached for `grace`.
    pub async fn orphaned(&self, grace: Duration) {
        let mut attached = self.attached.subscribe();
        loop {
            // Wait until none is attached…
            if attached.wait_for(|n| *n == 0).await.is_err() {
                return;
            }
            // …and none attaches for the grace period.
            match tokio::time::timeout(grace, attached.wait_for(|n| *n > 0)).await {
                Err(_) => return,
                Ok(Err(_)) => return,
                Ok(Ok(_)) => continue,
            }
        }
    }

    pub(crate) fn wake_fn(self: &Arc<Self>, workload_id: &str) -> paved_local::WakeFn {
        let events = self.events.clone();
        let workload_id = workload_id.to_string();
        Arc::new(move || {
            // No receiver: no control plane attached; it learns of the wake
            // when it attaches (see `attach`).
            let _ = events.send(wake(&workload_id));
        })
    }

    /// The wakes asked for and not yet routed: sent first to a control plane
    /// that attaches, since one that was not attached missed them.
    fn pending_wakes(&self) -> Vec<pb::HostEvent> {
        self.proxies().iter().filter(|(_, p)| p.wake_asked()).map(|(id, _)| wake(id)).collect()
    }
}

/// A control plane that fell behind misses events; it gets the pending
/// wakes again when it attaches anew.
fn lagged(e: tokio_stream::wrappers::errors::BroadcastStreamRecvError) {
    tracing::warn!(error = %e, "an attached control plane fell behind: events lost");
}

fn wake(workload_id: &str) -> pb::HostEvent {
    pb::HostEvent { event: Some(pb::host_event::Event::WakeRequested(pb::WakeRequested { workload_id: workload_id.to_string() })) }
}

/// Counts an attached control plane while its stream lives.
pub(crate) struct Attached(watch::Sender<usize>);

impl Attached {
    fn new(attached: &watch::Sender<usize>) -> Self {
        attached.send_modify(|n| *n += 1);
        Self(attached.clone())
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

type Events = Pin<Box<dyn Stream<Item = Result<pb::HostEvent, Status>> + Send>>;

#[tonic::async_trait]
impl RuntimeService for Arc<Host> {
    async fn open_proxy(&self, request: Request<pb::OpenProxyRequest>) -> Result<Response<pb::OpenProxyResponse>, Status> {
        let r = request.into_inner();
        self.steady()?;
        if let Some(addr) = self.proxies().get(&r.workload_id).map(|p| p.addr) {
            return Ok(Response::new(pb::OpenProxyResponse { addr: addr.to_string(), existed: true }));
        }
        let host: std::net::IpAddr = r.host.parse().map_err(|_| {
            let message = format!("host {:?} is not an IP address", r.host);
            status::invalid_argument("INVALID_HOST", message.clone(), [("host".to_string(), message)])
        })?;
        let port = u16::try_from(r.port).map_err(|_| {
            let message = format!("port {} is out of range", r.port);
            status::invalid_argument("INVALID_PORT", message.clone(), [("port".to_string(), message)])
        })?;
        let cannot = |e: std::io::Error| status::unavailable("PROXY_NOT_OPENED", format!("cannot listen on {host}: {e}"));
        let listener = match tokio::net::TcpListener::bind(SocketAddr::new(host, port)).await {
            Ok(listener) => listener,
            Err(e) if port != 0 => {
                tracing::warn!(workload = %r.workload_id, port, error = %e, "proxy port taken; the OS picks another");
                tokio::net::TcpListener::bind(SocketAddr::new(host, 0)).await.map_err(cannot)?
            }
            Err(e) => return Err(cannot(e)),
        };
        // A hand-over that began while the port was bound would not carry
        // this proxy: refused, the caller opens it again on the new host.
        self.steady()?;
        let proxy = Proxy::start(r.workload_id.clone(), listener, &self.stop).map_err(cannot)?;
        let addr = proxy.addr;
        self.insert(r.workload_id.clone(), proxy);
        tracing::info!(workload = %r.workload_id, %addr, "proxy open");
        Ok(Response::new(pb::OpenProxyResponse { addr: addr.to_string(), existed: false }))
    }

    async fn close_proxies(&self, request: Request<pb::CloseProxiesRequest>) -> Result<Response<pb::CloseProxiesResponse>, Status> {
        let ids = request.into_inner().workload_ids;
        self.steady()?;
        let closing: Vec<Proxy> = {
            let mut proxies = self.proxies();
            ids.iter().filter_map(|id| proxies.remove(id)).collect()
        };
        for proxy in closing {
            proxy.shut().await;
        }
        Ok(Response::new(pb::CloseProxiesResponse {}))
    }

    async fn set_routes(&self, request: Request<pb::SetRoutesRequest>) -> Result<Response<pb::SetRoutesResponse>, Status> {
        let r = request.into_inner();
        let routes = r.routes.into_iter().map(convert::route_from).collect::<Result<Vec<_>, _>>()?;
        self.steady()?;
        self.with_proxy(&r.workload_id, |p| p.set_routes(routes))?;
        Ok(Response::new(pb::SetRoutesResponse {}))
    }

    async fn sleep(&self, request: Request<pb::SleepRequest>) -> Result<Response<pb::SleepResponse>, Status> {
        let r = request.into_inner();
        self.steady()?;
        let wake = self.wake_fn(&r.workload_id);
        // Kept (a control plane that restarted says it sleeps again): a wake
        // asked for meanwhile stays asked, for it to learn on attaching.
        self.with_proxy(&r.workload_id, |p| {
            if !(r.keep_pending_wake && p.is_asleep()) {
                p.sleep(wake)
            }
        })?;
        Ok(Response::new(pb::SleepResponse {}))
    }

    async fn waking(&self, request: Request<pb::WakingRequest>) -> Result<Response<pb::WakingResponse>, Status> {
        self.steady()?;
        self.with_proxy(&request.into_inner().workload_id, |p| p.waking())?;
        Ok(Response::new(pb::WakingResponse {}))
    }

    async fn list_proxies(&self, _: Request<pb::ListProxiesRequest>) -> Result<Response<pb::ListProxiesResponse>, Status> {
        self.serving()?;
        let mut proxies: Vec<pb::ProxyState> = self.proxies().iter().map(|(id, p)| convert::state_of(id, p)).collect();
        proxies.sort_by(|a, b| a.workload_id.cmp(&b.workload_id));
        Ok(Response::new(pb::ListProxiesResponse { proxies }))
    }

    async fn get_traffic(&self, request: Request<pb::GetTrafficRequest>) -> Result<Response<pb::GetTrafficResponse>, Status> {
        let (routes, traffic) = self.with_proxy(&request.into_inner().workload_id, |p| (p.routes(), p.traffic_all()))?;
        Ok(Response::new(pb::GetTrafficResponse {
            routes: routes.iter().map(convert::route_to).collect(),
            revisions: traffic.into_iter().map(|(revision, t)| convert::traffic_to(revision, t)).collect(),
        }))
    }

    async fn get_metrics(&self, _: Request<pb::GetMetricsRequest>) -> Result<Response<pb::GetMetricsResponse>, Status> {
        self.serving()?;
        let text = paved_telemetry::encode_metrics();
        let text = text.strip_suffix("# EOF\n").unwrap_or(&text).to_string();
        Ok(Response::new(pb::GetMetricsResponse { text }))
    }

    type AttachStream = Events;

    async fn attach(&self, request: Request<pb::AttachRequest>) -> Result<Response<Events>, Status> {
        let name = request.into_inner().name;
        self.serving()?;
        // Subscribed before the pending wakes are read: a wake in between is
        // sent twice rather than not at all (waking twice is harmless).
        let live = tokio_stream::wrappers::BroadcastStream::new(self.events.subscribe());
        let pending = futures::stream::iter(self.pending_wakes());
        let guard = Attached::new(&self.attached);
        tracing::info!(control_plane = %name, "attached");
        let events = pending
            .chain(live.filter_map(|e| async move { e.map_err(lagged).ok() }))
            // A host that handed over ends the stream: the control plane
            // connects again and attaches to the new host.
            .take_until(futures::future::select(
                Box::pin(self.stop.clone().cancelled_owned()),
                Box::pin(self.released.clone().cancelled_owned()),
            ))
            .map(move |e| {
                let _attached = &guard;
                Ok(e)
            });
        Ok(Response::new(Box::pin(events)))
    }

    async fn shutdown(&self, _: Request<pb::ShutdownRequest>) -> Result<Response<pb::ShutdownResponse>, Status> {
        self.serving()?;
        tracing::info!("shutdown asked for by the control plane");
        self.stop_all().await;
        Ok(Response::new(pb::ShutdownResponse {}))
    }

    async fn get_host(&self, _: Request<pb::GetHostRequest>) -> Result<Response<pb::GetHostResponse>, Status> {
        Ok(Response::new(pb::GetHostResponse { build: self.build.clone(), pid: std::process::id() }))
    }

    async fn hand_over(&self, request: Request<pb::HandOverRequest>) -> Result<Response<pb::HandOverResponse>, Status> {
        self.serving()?;
        let receiver = PathBuf::from(request.into_inner().receiver);
        let proxies = self.hand_over_to(receiver).await?;
        Ok(Response::new(pb::HandOverResponse { proxies }))
    }
}
