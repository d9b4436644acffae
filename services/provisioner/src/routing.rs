//! Routing: each workload's proxy, and its routes. A proxy's routes are
//! computed from the persisted routing (the workload's stable revision, the
//! active rollout's canary and weight) and the runtime's last report of each
//! revision's healthy instances — never remembered from an earlier routing.

use crate::{
    model::{self, Rollout, Workload},
    store,
    sync::lock,
};
use paved_local::{Proxy, Route, Traffic};
use sea_orm::{DatabaseConnection, DbErr};
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// (revision, share of traffic in percent) per route, and (revision, its
/// traffic) per revision that served requests.
pub type TrafficMetrics = (Vec<(String, u32)>, Vec<(String, Traffic)>);

pub(crate) struct Routing {
    db: DatabaseConnection,
    /// Where workload proxies listen (see `Options::proxy_host`).
    host: IpAddr,
    shutdown: CancellationToken,
    /// workload id → its proxy
    proxies: Mutex<HashMap<String, Proxy>>,
    /// revision id → its healthy instances, as the runtime last reported
    backends: Mutex<HashMap<String, Vec<SocketAddr>>>,
    /// Per workload: held while its proxy is routed (see `route`).
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Routing {
    pub(crate) fn new(db: DatabaseConnection, host: IpAddr, shutdown: CancellationToken) -> Self {
        Self {
            db,
            host,
            shutdown,
            proxies: Mutex::new(HashMap::new()),
            backends: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// A port for a new workload's proxy, taken before the workload is
    /// recorded with it, so the recorded endpoint is one we hold.
    pub(crate) async fn reserve(&self) -> std::io::Result<TcpListener> {
        TcpListener::bind(SocketAddr::new(self.host, 0)).await
    }

    pub(crate) fn open(&self, workload: &Workload, listener: TcpListener) -> std::io::Result<()> {
        let proxy = Proxy::start(workload.id(), listener, &self.shutdown)?;
        if let Some(old) = lock(&self.proxies).insert(workload.id(), proxy) {
            old.close();
        }
        Ok(())
    }

    /// Opens the workload's proxy on its recorded port, or on a new one (and
    /// records it) when that port is taken.
    pub(crate) async fn ensure(&self, workload: &Workload) -> std::io::Result<()> {
        if lock(&self.proxies).contains_key(&workload.id()) {
            return Ok(());
        }
        let host = self.host;
        let listener = match TcpListener::bind(SocketAddr::new(host, workload.proxy_port)).await {
            Ok(l) => l,
            Err(e) => {
                let l = TcpListener::bind(SocketAddr::new(host, 0)).await?;
                let port = l.local_addr()?.port();
                tracing::warn!(workload = %workload.id(), old = workload.proxy_port, new = port, error = %e, "proxy port taken; moved");
                store::set_proxy_port(&self.db, workload, port).await.map_err(std::io::Error::other)?;
                l
            }
        };
        self.open(workload, listener)
    }

    /// Where the workload is reached: its proxy's address, or where it is
    /// recorded to listen when it has no proxy here.
    pub(crate) fn endpoint(&self, workload: &Workload) -> String {
        lock(&self.proxies)
            .get(&workload.id())
            .map_or_else(|| SocketAddr::new(self.host, workload.proxy_port).to_string(), |p| p.addr.to_string())
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
        self.route_to(workload_id, active.as_ref(), workload.stable_revision.as_deref());
        Ok(())
    }

    /// Routes a workload's proxy after its rollout ended, from the stable
    /// revision its caller has just committed, without reading it back (see
    /// `route` for the lock).
    pub(crate) async fn route_committed(&self, workload_id: &str, stable: Option<&str>) {
        let _routing = self.routing(workload_id).await;
        self.route_to(workload_id, None, stable);
    }

    async fn routing(&self, workload_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let one = lock(&self.locks).entry(workload_id.to_string()).or_default().clone();
        one.lock_owned().await
    }

    /// Routes a workload's proxy: to its stable revision and, while a
    /// rollout is under way, its canary at the rollout's weight (all
    /// traffic, for a workload's first revision).
    fn route_to(&self, workload_id: &str, active: Option<&Rollout>, stable: Option<&str>) {
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
        let routes: Vec<Route> = shares
            .into_iter()
            .map(|(revision, weight)| Route { addrs: backends.get(&revision).cloned().unwrap_or_default(), revision, weight })
            .collect();
        drop(backends);
        if let Some(proxy) = lock(&self.proxies).get(workload_id) {
            proxy.set_routes(routes);
        }
    }

    /// The workload sleeps: its proxy holds requests and calls `wake`.
    pub(crate) fn sleep(&self, workload_id: &str, wake: paved_local::WakeFn) {
        if let Some(proxy) = lock(&self.proxies).get(workload_id) {
            proxy.sleep(wake);
        }
    }

    /// The workload is waking: its proxy holds requests until it is routed.
    pub(crate) fn waking(&self, workload_id: &str) {
        if let Some(proxy) = lock(&self.proxies).get(workload_id) {
            proxy.waking();
        }
    }

    /// When its proxy saw the last request (Unix ms), if any since it opened.
    pub(crate) fn last_request_ms(&self, workload_id: &str) -> Option<i64> {
        lock(&self.proxies).get(workload_id).and_then(|p| p.last_request_ms())
    }

    /// The workload's proxy's routes as last set; none when it has no proxy here.
    pub(crate) fn routes(&self, workload_id: &str) -> Vec<Route> {
        lock(&self.proxies).get(workload_id).map(|p| p.routes()).unwrap_or_default()
    }

    /// A revision's traffic through the workload's proxy since it opened.
    pub(crate) fn traffic(&self, workload_id: &str, revision_id: &str) -> Traffic {
        lock(&self.proxies).get(workload_id).map(|p| p.traffic(revision_id)).unwrap_or_default()
    }

    /// Each routed revision's weight, and every revision's traffic, through
    /// the workload's proxy; None when it has no proxy here.
    pub(crate) fn traffic_metrics(&self, workload_id: &str) -> Option<TrafficMetrics> {
        let proxies = lock(&self.proxies);
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

    /// Closes the workloads' proxies and waits until their ports are released.
    pub(crate) async fn close(&self, workload_ids: &[String]) {
        let proxies: Vec<Proxy> = {
            let mut all = lock(&self.proxies);
            workload_ids.iter().filter_map(|id| all.remove(id)).collect()
        };
        for proxy in proxies {
            proxy.shut().await;
        }
    }

    /// Closes every proxy (platform shutdown).
    pub(crate) async fn close_all(&self) {
        let proxies: Vec<Proxy> = lock(&self.proxies).drain().map(|(_, p)| p).collect();
        for proxy in proxies {
            proxy.shut().await;
        }
    }
}
