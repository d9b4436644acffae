//! The per-workload proxy: a stable address in front of a workload's healthy
//! instances. HTTP/1.1 and HTTP/2 (so gRPC workloads work too). Traffic is
//! split between revisions by weight (the primitive rollouts build on) and
//! round-robin over each revision's healthy instances. Every request is
//! counted per revision ([`Traffic`]). A sleeping workload's proxy stays
//! open and holds requests while it wakes (`hold`). A proxy can be handed
//! to another process (its listening socket, state and counts) and drained
//! here without failing a request ([`Proxy::drain`]).

use crate::{
    hold::{Asleep, Hold, Room, WakeFn},
    traffic::{RevisionStats, Traffic, record},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use std::{
    collections::HashMap,
    net::SocketAddr,
    os::fd::{AsFd, OwnedFd},
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

type Body = BoxBody<Bytes, hyper::Error>;

/// How long a draining proxy's connections get to close by themselves (an
/// HTTP/1 client closes after the answer that says `Connection: close`)
/// before the idle ones are closed: a close races a request the client may
/// be sending, which a busy connection never risks.
const DRAIN_IDLE: Duration = Duration::from_secs(2);

/// How long requests in flight get to finish once their proxy closes.
const IN_FLIGHT: Duration = Duration::from_secs(10);

/// How many times a request that failed on its way to an instance is sent
/// again, each time to an instance picked anew, another where there is one
/// (the routes may have changed meanwhile: an instance stopped, a rollout
/// switched).
const RETRIES: usize = 2;

pub struct Proxy {
    pub addr: SocketAddr,
    backends: Arc<Backends>,
    /// Shared with the accept loop, so that a copy can be handed over.
    listener: Arc<TcpListener>,
    stop: CancellationToken,
    /// Cancelled when the proxy is handed over: stop accepting and drain.
    drain: CancellationToken,
    accepting: tokio::task::JoinHandle<()>,
    connections: TaskTracker,
}

/// Where a share of a workload's traffic goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub revision: String,
    /// Relative weight; the shares of all routes with healthy instances add up.
    pub weight: u32,
    /// The revision's healthy instances.
    pub addrs: Vec<SocketAddr>,
}

struct Backends {
    name: String,
    routes: RwLock<Vec<Route>>,
    stats: RwLock<HashMap<String, Arc<RevisionStats>>>,
    next: AtomicUsize,
    http1: Client<HttpConnector, Body>,
    http2: Client<HttpConnector, Body>,
    /// Set while the workload sleeps, until it is healthy again.
    asleep: RwLock<Option<Arc<Asleep>>>,
    /// Bumped at every change of routes: held requests look again.
    changed: tokio::sync::watch::Sender<u64>,
    room: Room,
    /// Unix milliseconds of the last request (0: none since it opened).
    last_request: AtomicI64,
    /// Handed over: HTTP/1 answers close their connection.
    draining: AtomicBool,
}

impl Backends {
    fn new(name: String, routes: Vec<Route>, hold: Hold) -> Self {
        let connector = || {
            let mut c = HttpConnector::new();
            c.set_nodelay(true);
            c
        };
        Self {
            name,
            routes: RwLock::new(routes),
            stats: RwLock::default(),
            next: AtomicUsize::new(0),
            http1: Client::builder(TokioExecutor::new()).build(connector()),
            http2: Client::builder(TokioExecutor::new()).http2_only(true).build(connector()),
            asleep: RwLock::default(),
            changed: tokio::sync::watch::channel(0).0,
            room: Room::new(hold),
            last_request: AtomicI64::new(0),
            draining: AtomicBool::new(false),
        }
    }

    fn asleep(&self) -> Option<Arc<Asleep>> {
        self.asleep.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// An instance for a request that found none: held while the workload
    /// wakes, or the answer it gets instead.
    async fn hold(&self, length: Option<u64>) -> Result<(String, SocketAddr), Response<Body>> {
        let Some(asleep) = self.asleep() else {
            return Err(plain(StatusCode::SERVICE_UNAVAILABLE, format!("no healthy instance of {}\n", self.name)));
        };
        let _place = self.room.take(length).map_err(|why| retry_later(format!("{} is waking up: {why}\n", self.name), 1))?;
        // Subscribed before looking, so a change in between is not missed.
        let mut changed = self.changed.subscribe();
        asleep.wake();
        let woken = tokio::time::timeout(self.room.hold.timeout, async {
            loop {
                if let Some(picked) = self.pick(&[]) {
                    return Some(picked);
                }
                // Handed over: this process gets no more routes; the
                // client asks again, and reaches the new one.
                if self.draining.load(Ordering::Relaxed) {
                    return None;
                }
                changed.changed().await.ok()?;
            }
        });
        match woken.await {
            Ok(Some(picked)) => Ok(picked),
            _ if self.draining.load(Ordering::Relaxed) => {
                Err(retry_later(format!("{} is waking up on another data plane host: ask again\n", self.name), 1))
            }
            _ => {
                let waited = self.room.hold.timeout;
                Err(retry_later(format!("{} did not wake within {waited:?}\n", self.name), waited.as_secs().max(1)))
            }
        }
    }

    /// A revision by weight (among those with healthy instances), then one of
    /// its instances in turn; instances in `avoid` (which failed this
    /// request) only when there is no other.
    fn pick(&self, avoid: &[SocketAddr]) -> Option<(String, SocketAddr)> {
        self.pick_among(avoid).or_else(|| if avoid.is_empty() { None } else { self.pick_among(&[]) })
    }

    fn pick_among(&self, avoid: &[SocketAddr]) -> Option<(String, SocketAddr)> {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        let usable = |a: &&SocketAddr| !avoid.contains(a);
        let live = || routes.iter().filter(|r| r.weight > 0 && r.addrs.iter().any(|a| usable(&a)));
        let total: u64 = live().map(|r| u64::from(r.weight)).sum();
        if total == 0 {
            return None;
        }
        let mut x = rand::random_range(0..total);
        for route in live() {
            if x < u64::from(route.weight) {
                let n = route.addrs.iter().filter(usable).count();
                let addr = route.addrs.iter().filter(usable).nth(self.next.fetch_add(1, Ordering::Relaxed) % n)?;
                return Some((route.revision.clone(), *addr));
            }
            x -= u64::from(route.weight);
        }
        None
    }

    /// Counts a request in the Prometheus families and in the revision's stats.
    fn record(&self, revision: &str, status: StatusCode, elapsed: Duration) {
        record(&self.name, revision, status, elapsed);
        self.stats_of(revision).record(status, elapsed);
    }

    fn stats_of(&self, revision: &str) -> Arc<RevisionStats> {
        let stats = self.stats.read().unwrap_or_else(|p| p.into_inner()).get(revision).cloned();
        match stats {
            Some(s) => s,
            None => self.stats.write().unwrap_or_else(|p| p.into_inner()).entry(revision.to_string()).or_default().clone(),
        }
    }
}

impl Proxy {
    /// Serves on `listener` until `shutdown` or [`Proxy::close`].
    pub fn start(name: String, listener: TcpListener, shutdown: &CancellationToken) -> std::io::Result<Self> {
        Self::start_with(name, listener, Hold::default(), shutdown)
    }

    /// [`Proxy::start`] with these bounds on requests held while it wakes.
    pub fn start_with(name: String, listener: TcpListener, hold: Hold, shutdown: &CancellationToken) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let backends = Arc::new(Backends::new(name, Vec::new(), hold));
        let listener = Arc::new(listener);
        let (stop, drain, connections) = (shutdown.child_token(), CancellationToken::new(), TaskTracker::new());
        let serving = Serving { backends: backends.clone(), stop: stop.clone(), drain: drain.clone(), connections: connections.clone() };
        let accepting = tokio::spawn(accept(listener.clone(), serving));
        Ok(Self { addr, backends, listener, stop, drain, accepting, connections })
    }

    /// A copy of the listening socket, for the process this proxy is handed
    /// to: connections wait in its backlog for whichever accepts first.
    pub fn listener_fd(&self) -> std::io::Result<OwnedFd> {
        self.listener.as_fd().try_clone_to_owned()
    }

    /// Counts handed over by the proxy's previous process: added to this
    /// one's, so a rollout judges on every request since the proxy opened.
    pub fn restore_counts(&self, traffic: &[(String, Traffic)], last_request_ms: Option<i64>) {
        for (revision, t) in traffic {
            self.backends.stats_of(revision).add(t);
        }
        if let Some(ms) = last_request_ms {
            self.backends.last_request.fetch_max(ms, Ordering::Relaxed);
        }
    }

    /// After a hand-over: stops accepting (the socket stays open where it
    /// was handed), answers HTTP/1 requests with `Connection: close`, closes
    /// the connections still idle after [`DRAIN_IDLE`] (HTTP/2 ones with a
    /// GOAWAY), and returns once every connection is closed.
    pub async fn drain(self) {
        self.backends.draining.store(true, Ordering::Relaxed);
        // Held requests look again, and are answered.
        self.backends.changed.send_modify(|n| *n += 1);
        self.drain.cancel();
        let _ = self.accepting.await;
        self.connections.close();
        self.connections.wait().await;
    }

    pub fn set_routes(&self, routes: Vec<Route>) {
        let live = routes.iter().any(|r| r.weight > 0 && !r.addrs.is_empty());
        *self.backends.routes.write().unwrap_or_else(|p| p.into_inner()) = routes;
        // Awake once a wake was asked for and an instance is routed; a
        // route set while it is falling asleep does not count.
        if live {
            let mut asleep = self.backends.asleep.write().unwrap_or_else(|p| p.into_inner());
            if asleep.as_ref().is_some_and(|a| a.asked()) {
                *asleep = None;
            }
        }
        self.backends.changed.send_modify(|n| *n += 1);
    }

    /// The workload sleeps: requests that find no instance are held and
    /// `wake` is called, once, for the first of them.
    pub fn sleep(&self, wake: WakeFn) {
        *self.backends.asleep.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(Asleep::new(wake)));
    }

    /// The platform is waking the workload: requests are still held until
    /// an instance is routed, without asking for a wake again.
    pub fn waking(&self) {
        if let Some(asleep) = self.backends.asleep() {
            asleep.ask();
        }
    }

    /// Whether the workload sleeps (or is waking) here.
    pub fn is_asleep(&self) -> bool {
        self.backends.asleep().is_some()
    }

    /// Whether a wake was asked for (by a request, or by [`Proxy::waking`])
    /// and no instance is routed yet.
    pub fn wake_asked(&self) -> bool {
        self.backends.asleep().is_some_and(|a| a.asked())
    }

    /// When the last request arrived (Unix milliseconds), if one did since
    /// the proxy opened.
    pub fn last_request_ms(&self) -> Option<i64> {
        Some(self.backends.last_request.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
    }

    pub fn routes(&self) -> Vec<Route> {
        self.backends.routes.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A revision's requests through this proxy since it opened.
    pub fn traffic(&self, revision: &str) -> Traffic {
        self.backends.stats.read().unwrap_or_else(|p| p.into_inner()).get(revision).map(|s| s.snapshot()).unwrap_or_default()
    }

    /// Every revision's requests through this proxy since it opened.
    pub fn traffic_all(&self) -> Vec<(String, Traffic)> {
        let stats = self.backends.stats.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<(String, Traffic)> = stats.iter().map(|(r, s)| (r.clone(), s.snapshot())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Stops accepting; connections in flight get a grace period.
    pub fn close(&self) {
        self.stop.cancel();
    }

    /// Closes and waits until the port is released.
    pub async fn shut(self) {
        self.stop.cancel();
        let _ = self.accepting.await;
    }
}

/// What the accept loop and its connections share.
struct Serving {
    backends: Arc<Backends>,
    stop: CancellationToken,
    drain: CancellationToken,
    connections: TaskTracker,
}

async fn accept(listener: Arc<TcpListener>, serving: Serving) {
    let Serving { backends, stop, drain, connections } = serving;
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            _ = drain.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(workload = %backends.name, error = %e, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small responses go out at once rather than waiting on Nagle's
        // algorithm for the client's delayed ACK.
        let _ = stream.set_nodelay(true);
        let (backends, stop, drain) = (backends.clone(), stop.clone(), drain.clone());
        connections.spawn(async move {
            let service = service_fn(move |req| forward(backends.clone(), req));
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.cancelled() => {}
                _ = drain.cancelled() => {
                    if tokio::time::timeout(DRAIN_IDLE, conn.as_mut()).await.is_ok() {
                        return;
                    }
                }
            }
            conn.as_mut().graceful_shutdown();
            // Let requests in flight finish, within bounds.
            let _ = tokio::time::timeout(IN_FLIGHT, conn).await;
        });
    }
}

async fn forward(backends: Arc<Backends>, req: Request<Incoming>) -> Result<Response<Body>, hyper::Error> {
    let http1 = req.version() != http::Version::HTTP_2;
    let mut response = route(&backends, req).await;
    // Handed over: the client's next request goes to a new connection,
    // which the proxy's new process accepts.
    if http1 && backends.draining.load(Ordering::Relaxed) {
        response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    Ok(response)
}

/// A request forwarded to an instance (held first while the workload
/// wakes), or the answer it gets instead. One that failed before an
/// instance answered is sent again where that is safe (see [`Resend`]).
async fn route(backends: &Backends, req: Request<Incoming>) -> Response<Body> {
    // Each attempt is timed on its own (the first with any wait to wake).
    let mut start = std::time::Instant::now();
    backends.last_request.store(now_ms(), Ordering::Relaxed);
    let resend = Resend::of(&req);
    let mut req = req.map(BodyExt::boxed);
    let mut failed = Vec::new();
    loop {
        let picked = match backends.pick(&failed) {
            Some(picked) => Ok(picked),
            None => backends.hold(content_length(&req)).await,
        };
        let (revision, backend) = match picked {
            Ok(picked) => picked,
            Err(response) => {
                backends.record("none", response.status(), start.elapsed());
                return response;
            }
        };
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let Ok(uri) = format!("http://{backend}{path}").parse() else {
            return plain(StatusCode::BAD_REQUEST, "bad request URI\n".into());
        };
        *req.uri_mut() = uri;
        let client = if req.version() == http::Version::HTTP_2 { &backends.http2 } else { &backends.http1 };
        let response = match client.request(req).await {
            Ok(response) => response.map(BodyExt::boxed),
            Err(e) => match resend.as_ref().filter(|r| failed.len() < RETRIES && r.may_follow(&e)) {
                Some(again) => {
                    // Counted against the revision that failed it: a canary
                    // that cuts connections must not look clean because
                    // another revision answered the client.
                    backends.record(&revision, StatusCode::BAD_GATEWAY, start.elapsed());
                    failed.push(backend);
                    let tries = failed.len();
                    tracing::debug!(workload = %backends.name, %backend, error = %e, tries, "proxy upstream failed: sending again");
                    // A moment for the routes to catch up with an instance
                    // that has just gone.
                    tokio::time::sleep(Duration::from_millis(20 * tries as u64)).await;
                    req = again.request();
                    start = std::time::Instant::now();
                    continue;
                }
                None => {
                    tracing::warn!(workload = %backends.name, %backend, error = %e, tries = failed.len(), "proxy upstream failed");
                    plain(StatusCode::BAD_GATEWAY, format!("upstream {backend} failed\n"))
                }
            },
        };
        backends.record(&revision, response.status(), start.elapsed());
        return response;
    }
}

/// The head of a request without a body, kept to send it again: after a
/// failed connection (refused, or not made in time: it never reached an
/// instance), or, for a method RFC 9110 §9.2.2 calls idempotent, after any
/// failure before the answer's head (an instance that closed the connection
/// as it stopped; a PUT or DELETE may then have been acted on, which that
/// RFC allows to repeat). A request with a body is sent once: its body is
/// streamed, not kept.
struct Resend {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
}

impl Resend {
    fn of(req: &Request<Incoming>) -> Option<Self> {
        (content_length(req) == Some(0)).then(|| Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
        })
    }

    fn may_follow(&self, e: &hyper_util::client::legacy::Error) -> bool {
        use http::Method;
        e.is_connect() || [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE, Method::PUT, Method::DELETE].contains(&self.method)
    }

    fn request(&self) -> Request<Body> {
        let mut req = Request::new(http_body_util::Empty::new().map_err(|never| match never {}).boxed());
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The request body's declared length; `Some(0)` when it has none.
fn content_length<B: hyper::body::Body>(req: &Request<B>) -> Option<u64> {
    req.body().size_hint().exact()
}

/// 503 with `Retry-After` (seconds).
fn retry_later(text: String, seconds: u64) -> Response<Body> {
    let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, text);
    response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
    response
}

fn plain(status: StatusCode, text: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(text)).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::LATENCY_BUCKETS;
    use paved_judge::histogram;

    fn backends(routes: Vec<Route>) -> Backends {
        Backends::new("dev/w".into(), routes, Hold::default())
    }

    fn route(revision: &str, weight: u32, ports: &[u16]) -> Route {
        Route { revision: revision.into(), weight, addrs: ports.iter().map(|p| SocketAddr::from(([127, 0, 0, 1], *p))).collect() }
    }

    #[test]
    fn splits_by_weight_among_revisions_with_instances() {
        let b = backends(vec![route("stable", 90, &[1, 2]), route("canary", 10, &[3]), route("dark", 50, &[])]);
        let n = 20_000;
        let canary = (0..n).filter(|_| b.pick(&[]).is_some_and(|(r, _)| r == "canary")).count();
        let share = canary as f64 / n as f64;
        // 10 / (90 + 10): the route without instances takes nothing.
        assert!((0.08..0.12).contains(&share), "canary share {share}");
        let stable: Vec<u16> = (0..4).filter_map(|_| b.pick(&[])).filter(|(r, _)| r == "stable").map(|(_, a)| a.port()).collect();
        assert!(stable.iter().all(|p| [1, 2].contains(p)));
        // A request sent again goes to an instance it has not failed on,
        // of any revision, while there is one.
        let port = |ports: &[u16]| ports.iter().map(|p| SocketAddr::from(([127, 0, 0, 1], *p))).collect::<Vec<_>>();
        for _ in 0..100 {
            assert_ne!(b.pick(&port(&[1])).map(|(_, a)| a.port()), Some(1));
            assert_eq!(b.pick(&port(&[1, 2])).map(|(r, a)| (r, a.port())), Some(("canary".into(), 3)));
        }
        assert!(b.pick(&port(&[1, 2, 3])).is_some(), "failed everywhere: tried again anyway");
    }

    #[test]
    fn traffic_counts_classes_and_latency_percentiles() {
        let b = backends(vec![]);
        for ms in 1..=100u64 {
            b.record("r1", StatusCode::OK, Duration::from_millis(ms));
        }
        b.record("r1", StatusCode::BAD_GATEWAY, Duration::from_millis(2));
        let stats = b.stats.read().expect("stats").get("r1").expect("r1 counted").snapshot();
        assert_eq!((stats.total(), stats.errors()), (101, 1));
        let p99 = stats.quantile(0.99).expect("p99");
        // 99 ms or 100 ms, reported as its bucket's upper bound (within 10%).
        assert!(p99 >= Duration::from_millis(99) && p99 <= Duration::from_millis(110), "{p99:?}");
        let p50 = stats.quantile(0.5).expect("p50");
        assert!(p50 >= Duration::from_millis(50) && p50 <= Duration::from_millis(55), "{p50:?}");
        let earlier = stats.clone();
        b.record("r1", StatusCode::INTERNAL_SERVER_ERROR, Duration::from_secs(120));
        let later = b.stats.read().expect("stats").get("r1").expect("r1").snapshot().since(&earlier);
        assert_eq!((later.total(), later.errors()), (1, 1));
        assert_eq!(later.quantile(0.99), Some(Duration::from_secs_f64(histogram::value(LATENCY_BUCKETS - 1))));
        assert_eq!(Traffic::default().quantile(0.99), None);
        assert_eq!(later.by_class().find(|(c, _)| c == "5xx").map(|(_, n)| n), Some(1));
    }

    #[test]
    fn nothing_to_pick_without_weight_or_instances() {
        assert_eq!(backends(vec![]).pick(&[]), None);
        assert_eq!(backends(vec![route("a", 0, &[1]), route("b", 5, &[])]).pick(&[]), None);
        assert_eq!(backends(vec![route("a", 1, &[7])]).pick(&[]).map(|(r, a)| (r, a.port())), Some(("a".to_string(), 7)));
    }
}

#[cfg(test)]
#[path = "proxy_wake_tests.rs"]
mod wake_tests;

#[cfg(test)]
#[path = "proxy_retry_tests.rs"]
mod retry_tests;
