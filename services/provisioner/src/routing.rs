//! Routing: each workload's proxy, and its routes. A proxy's routes are
//! computed from the persisted routing (the workload's stable revision, the
//! active rollout's canary and weight) and the runtime's last report of each
//! revision's healthy instances — never remembered from an earlier routing.
//! The proxies themselves live in the data plane's host (`dataplane`): a
//! restarted provisioner adopts them, routes and all.

use crate::{
    dataplane::Dataplane,
    model::{self, Rollout, Workload},
    store,
    sync::lock,
};
use paved_local::{Route, Traffic, WakeFn};
use paved_runtime::pb;
use sea_orm::{DatabaseConnection, DbErr};
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio_util::sync::CancellationToken;

/// (revision, share of traffic in percent) per route, and (revision, its
/// traffic) per revision that served requests.
pub type TrafficMetrics = (Vec<(String, u32)>, Vec<(String, Traffic)>);

pub(crate) struct Routing {
    db: DatabaseConnection,
    /// Where workload proxies listen (see `Options::proxy_host`).
    host: IpAddr,
    plane: Dataplane,
    /// workload id → where its proxy listens, as opened (or adopted) in the host
    proxies: Mutex<HashMap<String, SocketAddr>>,
    /// workload id → what wakes it, while it sleeps
    wakes: Mutex<HashMap<String, WakeFn>>,
    /// revision id → its healthy instances, as the runtime last reported
    backends: Mutex<HashMap<String, Vec<SocketAddr>>>,
    /// The revisions whose instances came from the adopted routes, until
    /// `forget_stale` checks that they still run.
    seeded: Mutex<std::collections::HashSet<String>>,
    /// Per workload: held while its proxy is routed (see `route`).
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Routing {
    /// Routing through `plane`, adopting the proxies it serves already: their
    /// routes stand for the revisions' instances until the runtime reports
    /// them (it adopts those processes too), so that nothing routed changes.
    pub(crate) fn new(db: DatabaseConnection, host: IpAddr, plane: Dataplane, adopted: Vec<pb::ProxyState>) -> Self {
        let mut proxies = HashMap::new();
        let mut backends = HashMap::new();
        let mut seeded = std::collections::HashSet::new();
        for proxy in adopted {
            let Ok(addr) = proxy.addr.parse() else { continue };
            proxies.insert(proxy.workload_id, addr);
            for route in proxy.routes.into_iter().filter_map(|r| paved_runtime::route_from(r).ok()) {
                seeded.insert(route.revision.clone());
                backends.insert(route.revision, route.addrs);
            }
        }
        Self {
            db,
            host,
            plane,
            proxies: Mutex::new(proxies),
            wakes: Mutex::default(),
            backends: Mutex::new(backends),
            seeded: Mutex::new(seeded),
            locks: Mutex::default(),
        }
    }

    /// A port for a new workload's proxy, free when asked: recorded with
    /// the workload, and opened by `ensure` (on another one, recorded in
    /// turn, should it be taken meanwhile).
    pub(crate) async fn reserve(&self) -> std::io::Result<u16> {
        Ok(tokio::net::TcpListener::bind(SocketAddr::new(self.host, 0)).await?.local_addr()?.port())
    }

    /// Opens the workload's proxy on its recorded port, or on a new one (and
    /// records it) when that port is taken. A proxy the host serves already
    /// is kept as it is.
    pub(crate) async fn ensure(&self, workload: &Workload) -> std::io::Result<()> {
        if lock(&self.proxies).contains_key(&workload.id()) {
            return Ok(());
        }
        let addr = self.plane.open(&workload.id(), self.host, workload.proxy_port).await.map_err(std::io::Error::other)?;
        if addr.port() != workload.proxy_port {
            tracing::warn!(workload = %workload.id(), old = workload.proxy_port, new = addr.port(), "proxy port taken; moved");
            store::set_proxy_port(&self.db, workload, addr.port()).await.map_err(std::io::Error::other)?;
        }
        lock(&self.proxies).insert(workload.id(), addr);
        Ok(())
    }

    /// Closes the proxies the host serves for workloads that are not
    /// recorded (any more): after adopting them at a start.
    pub(crate) async fn close_strays(&self, recorded: &[String]) {
        let strays: Vec<String> = lock(&self.proxies).keys().filter(|id| !recorded.contains(id)).cloned().collect();
        if !strays.is_empty() {
            tracing::warn!(?strays, "closing proxies of workloads no longer recorded");
            self.close(&strays).await;
        }
    }

    /// After the host was lost: a new one is given every recorded workload's
    /// proxy, routed as the records say, asleep where they sleep.
    pub(crate) async fn restore(&self) -> Result<(), DbErr> {
        lock(&self.proxies).clear();
        for workload in store::all_workloads(&self.db).await? {
            let id = workload.id();
            if let Err(e) = self.ensure(&workload).await {
                tracing::error!(workload = %id, error = %e, "cannot open the workload's proxy again");
                continue;
            }
            if lock(&self.wakes).contains_key(&id) {
                self.tell("sleep", &id, self.plane.sleep(&id, true).await);
            }
            self.route(&id).await?;
        }
        Ok(())
    }

    /// Reads the host's events until `shutdown`: a request that reached a
    /// sleeping workload wakes it. When the host is lost, a new one is
    /// started and given every proxy back.
    pub(crate) async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut lost = false;
        loop {
            if lost {
                let restored = async {
                    self.plane.reconnect().await?;
                    self.restore().await.map_err(anyhow::Error::from)
                };
                if let Err(e) = restored.await {
                    tracing::error!(error = %e, "cannot restore the data plane; trying again");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            }
            match self.plane.attach().await {
                Ok(mut events) => loop {
                    let event = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        event = events.message() => event,
                    };
                    match event {
                        Ok(Some(pb::HostEvent { event: Some(pb::host_event::Event::WakeRequested(w)) })) => {
                            let wake = lock(&self.wakes).get(&w.workload_id).cloned();
                            match wake {
                                Some(wake) => wake(),
                                None => tracing::debug!(workload = %w.workload_id, "a wake for a workload that is not asleep here"),
                            }
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    }
                },
                Err(e) => tracing::warn!(error = %e, "cannot attach to the data plane host"),
            }
            if shutdown.is_cancelled() {
                return;
            }
            tracing::error!("the data plane host is gone: starting one and giving it every proxy back");
            lost = true;
        }
    }

    /// The host's metrics, for `/metrics`.
    pub(crate) async fn metrics(&self) -> Option<String> {
        self.plane.metrics().await
    }

    /// Whether the host serves the workload's proxy (as opened or adopted here).
    fn has_proxy(&self, workload_id: &str) -> bool {
        lock(&self.proxies).contains_key(workload_id)
    }

    /// Logs a command the host refused or missed: it is lost (the watch
    /// restores it) or the proxy is gone (its workload was removed).
    fn tell(&self, what: &str, workload_id: &str, result: Result<(), tonic::Status>) {
        if let Err(e) = result {
            tracing::warn!(workload = %workload_id, error = %e, "data plane host: {what} failed");
        }
    }

    /// Where the workload is reached: its proxy's address, or where it is
    /// recorded to listen when it has no proxy here.
    pub(crate) fn endpoint(&self, workload: &Workload) -> String {
        lock(&self.proxies)
            .get(&workload.id())
            .map_or_else(|| SocketAddr::new(self.host, workload.proxy_port).to_string(), ToString::to_string)
    }

    /// The healthy instances of a revision (or baseline), as the runtime
    /// last reported them.
    pub(crate) fn set_backends(&self, key: &str, addrs: Vec<SocketAddr>) {
        lock(&self.backends).insert(key.to_string(), addrs);
    }

    /// A revision (or baseline) that stopped, failed or is gone has no instances.
    pub(crate) fn forget(&self, key: &str) {
        lock(&self.backends).remove(key);
    }

    /// Routes a workload's proxy from its persisted routing. One routing
    /// of a workload at a time: two that interleaved (one reading before a
    /// promotion commits and setting after the other) would leave the
    /// older reading in place.
    pub(crate) async fn route(&self, workload_id: &str) -> Result<(), DbErr> {
        let _routing = self.routing(workload_id).await;
        let (environment, name) = workload_id.split_once('/').unwrap_or(("", workload_id));
        let Some(workload) = store::get_workload(&self.db, environment, name).await? else { return Ok(()) };
        let active = store::active_rollouts(&self.db, Some(workload_id)).await?.pop();
        self.route_to(workload_id, active.as_ref(), workload.stable_revision.as_deref()).await;
        Ok(())
    }

    /// [`Routing::route`], where a failure is only logged: the next
    /// report, transition or drift check routes it again.
    pub(crate) async fn route_or_warn(&self, workload_id: &str) {
        if let Err(e) = self.route(workload_id).await {
            tracing::warn!(workload = %workload_id, error = %e, "cannot route the workload's proxy");
        }
    }

    /// Routes a workload's proxy after its rollout ended, from the stable
    /// revision its caller has just committed, without reading it back (see
    /// `route` for the lock).
    pub(crate) async fn route_committed(&self, workload_id: &str, stable: Option<&str>) {
        let _routing = self.routing(workload_id).await;
        self.route_to(workload_id, None, stable).await;
    }

    async fn routing(&self, workload_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let one = lock(&self.locks).entry(workload_id.to_string()).or_default().clone();
        one.lock_owned().await
    }

    /// Routes a workload's proxy: to its stable revision and, while a
    /// rollout is under way, its canary at the rollout's weight (all
    /// traffic, for a workload's first revision).
    async fn route_to(&self, workload_id: &str, active: Option<&Rollout>, stable: Option<&str>) {
        let routes = self.routes_for(active, stable);
        if self.has_proxy(workload_id) {
            self.tell("routing", workload_id, self.plane.set_routes(workload_id, &routes).await);
        }
    }

    /// The routes of `route_to`, from the instances last reported.
    fn routes_for(&self, active: Option<&Rollout>, stable: Option<&str>) -> Vec<Route> {
        let backends = lock(&self.backends);
        let mut shares: Vec<(String, u32)> = Vec::new();
        match (active, stable) {
            (Some(r), Some(stable)) => {
                let canary = r.weight.min(100);
                // The baseline's share comes out of the stable revision's,
                // once it has instances (at more than half, what is left).
                let baseline = model::baseline_key(stable);
                let ready = backends.get(&baseline).is_some_and(|addrs| !addrs.is_empty());
                let same = if r.stage == model::Stage::Step && ready { canary.min(100 - canary) } else { 0 };
                shares.push((stable.to_string(), 100 - canary - same));
                shares.push((r.revision_id.clone(), canary));
                if same > 0 {
                    shares.push((baseline, same));
                }
            }
            (Some(r), None) => shares.push((r.revision_id.clone(), 100)),
            (None, Some(stable)) => shares.push((stable.to_string(), 100)),
            (None, None) => {}
        }
        shares
            .into_iter()
            .map(|(revision, weight)| Route { addrs: backends.get(&revision).cloned().unwrap_or_default(), revision, weight })
            .collect()
    }

    /// The workload's proxy's routes as last set; none when it has no proxy here.
    pub(crate) async fn routes(&self, workload_id: &str) -> Vec<Route> {
        if !self.has_proxy(workload_id) {
            return Vec::new();
        }
        self.plane.traffic(workload_id).await.map(|(routes, _)| routes).unwrap_or_default()
    }

    /// The workload sleeps: its proxy holds requests and calls `wake`.
    /// `keep_pending_wake`: a proxy asleep already keeps a wake asked for
    /// meanwhile (after a restart); otherwise the next request asks anew.
    pub(crate) async fn sleep(&self, workload_id: &str, wake: WakeFn, keep_pending_wake: bool) {
        lock(&self.wakes).insert(workload_id.to_string(), wake);
        if self.has_proxy(workload_id) {
            self.tell("sleep", workload_id, self.plane.sleep(workload_id, keep_pending_wake).await);
        }
    }

    /// Replicas that no longer run (a platform that was killed left them, and
    /// they were not adopted): their instances leave every route.
    pub(crate) async fn forget_stale(&self, running: impl Fn(&str) -> bool) {
        let stale: Vec<String> = lock(&self.seeded).drain().filter(|key| !running(key)).collect();
        if stale.is_empty() {
            return;
        }
        tracing::info!(?stale, "instances adopted from the data plane's routes no longer run");
        {
            let mut backends = lock(&self.backends);
            stale.iter().for_each(|key| drop(backends.remove(key)));
        }
        let routed: Vec<String> = lock(&self.proxies).keys().cloned().collect();
        for id in routed {
            self.route_or_warn(&id).await;
        }
    }

    /// The workload is waking: its proxy holds requests until it is routed.
    pub(crate) async fn waking(&self, workload_id: &str) {
        lock(&self.wakes).remove(workload_id);
        if self.has_proxy(workload_id) {
            self.tell("waking", workload_id, self.plane.waking(workload_id).await);
        }
    }

    /// When its proxy saw the last request (Unix ms), if any since it opened.
    pub(crate) async fn last_request_ms(&self, workload_id: &str) -> Option<i64> {
        if !self.has_proxy(workload_id) {
            return None;
        }
        self.last_requests().await.remove(workload_id)
    }

    /// When each workload with a proxy here last had a request (ms since
    /// the epoch), from one read of the data plane: a page of workloads
    /// reads it once, not once per workload (each read lists every proxy).
    pub(crate) async fn last_requests(&self) -> HashMap<String, i64> {
        if lock(&self.proxies).is_empty() {
            return HashMap::new();
        }
        let proxies = match self.plane.proxies().await {
            Ok(proxies) => proxies,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the proxies' last requests");
                return HashMap::new();
            }
        };
        let ours = lock(&self.proxies);
        proxies
            .into_iter()
            .filter(|p| p.last_request_ms > 0 && ours.contains_key(&p.workload_id))
            .map(|p| (p.workload_id, p.last_request_ms))
            .collect()
    }

    /// Two revisions' traffic through the workload's proxy since it opened
    /// (a canary's and its baseline's), read at one moment.
    pub(crate) async fn traffic_pair(&self, workload_id: &str, first: &str, second: &str) -> (Traffic, Traffic) {
        match self.plane.traffic(workload_id).await {
            Ok((_, all)) => {
                let of = |revision: &str| all.iter().find(|(r, _)| r == revision).map(|(_, t)| t.clone()).unwrap_or_default();
                (of(first), of(second))
            }
            Err(e) => {
                tracing::warn!(workload = %workload_id, error = %e, "cannot read the proxy's traffic");
                Default::default()
            }
        }
    }

    /// Each routed revision's weight, and every revision's traffic, through
    /// the workload's proxy; None when it has no proxy here.
    pub(crate) async fn traffic_metrics(&self, workload_id: &str) -> Option<TrafficMetrics> {
        if !self.has_proxy(workload_id) {
            return None;
        }
        let (routes, traffic) = self.plane.traffic(workload_id).await.ok()?;
        let total: u32 = routes.iter().filter(|r| !r.addrs.is_empty()).map(|r| r.weight).sum();
        let weights = routes
            .into_iter()
            .map(|r| {
                let share = if r.addrs.is_empty() || total == 0 { 0 } else { r.weight * 100 / total };
                (r.revision, share)
            })
            .collect();
        Some((weights, traffic))
    }

    /// Closes the workloads' proxies and waits until their ports are released.
    pub(crate) async fn close(&self, workload_ids: &[String]) {
        let open: Vec<String> = {
            let mut proxies = lock(&self.proxies);
            workload_ids.iter().filter(|id| proxies.remove(*id).is_some()).cloned().collect()
        };
        {
            let mut wakes = lock(&self.wakes);
            workload_ids.iter().for_each(|id| drop(wakes.remove(id)));
        }
        if !open.is_empty() {
            self.tell("close", &open.join(","), self.plane.close(open.clone()).await);
        }
    }

    /// Platform shutdown: stops the host, its proxies and itself.
    pub(crate) async fn shut_down(&self) {
        lock(&self.proxies).clear();
        self.tell("shutdown", "*", self.plane.shutdown().await);
    }
}
