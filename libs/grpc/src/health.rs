//! `grpc.health.v1` for every service, derived from named checks.
//!
//! A service is SERVING while every check reported for it last said "ok".
//! Background loops report through [`Health::check`] (a plain function, so it
//! can be called from any task); a single task applies the latest state to the
//! tonic-health reporter, which keeps updates in order.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};
use tokio::sync::Notify;
use tonic_health::{
    ServingStatus,
    pb::health_server::HealthServer,
    server::{HealthReporter, HealthService},
};

#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    /// service → check → ok
    state: Mutex<State>,
    changed: Arc<Notify>,
    service: HealthServer<HealthService>,
}

#[derive(Default)]
struct State {
    services: BTreeMap<String, BTreeMap<String, bool>>,
    shut_down: bool,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// Must be called inside a tokio runtime: it spawns the applier task.
    pub fn new() -> Self {
        let reporter = HealthReporter::new();
        let service = HealthServer::new(HealthService::from_health_reporter(reporter.clone()));
        let changed = Arc::new(Notify::new());
        let inner = Arc::new(Inner { state: Mutex::new(State::default()), changed: changed.clone(), service });
        tokio::spawn(apply(Arc::downgrade(&inner), changed, reporter));
        Self { inner }
    }

    pub fn service(&self) -> HealthServer<HealthService> {
        self.inner.service.clone()
    }

    /// Declares a service, SERVING until a check says otherwise.
    pub fn register(&self, service: &str) {
        self.update(|s| {
            s.services.entry(service.to_string()).or_default();
        });
    }

    /// Records the latest outcome of `check` for `service`.
    pub fn check(&self, service: &str, check: &str, ok: bool) {
        self.update(|s| {
            let checks = s.services.entry(service.to_string()).or_default();
            match (checks.insert(check.to_string(), ok), ok) {
                (Some(false), true) => tracing::info!(service, check, "health check recovered"),
                (Some(true) | None, false) => {
                    tracing::warn!(service, check, "health check failing")
                }
                _ => {}
            }
        });
    }

    /// A reporting callback for one check, as background loops take it.
    pub fn reporter(&self, service: &'static str, check: &'static str) -> Arc<dyn Fn(bool) + Send + Sync> {
        let health = self.clone();
        Arc::new(move |ok| health.check(service, check, ok))
    }

    /// Every service NOT_SERVING from now on: load balancers stop sending
    /// before the server stops accepting.
    pub fn shut_down(&self) {
        self.update(|s| s.shut_down = true);
    }

    /// Whether `service` is serving now.
    pub fn is_serving(&self, service: &str) -> bool {
        let state = self.lock();
        !state.shut_down && state.services.get(service).is_some_and(|checks| checks.values().all(|ok| *ok))
    }

    /// Whether every registered service is serving now.
    pub fn all_serving(&self) -> bool {
        let state = self.lock();
        !state.shut_down && state.services.values().all(|checks| checks.values().all(|ok| *ok))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.inner.changed.notify_one();
    }
}

/// Applies the latest state whenever it changes; ends once the [`Health`] is dropped.
async fn apply(inner: std::sync::Weak<Inner>, changed: Arc<Notify>, reporter: HealthReporter) {
    loop {
        let notified = changed.notified();
        let services: Vec<(String, bool)> = {
            let Some(inner) = inner.upgrade() else { return };
            let state = inner.state.lock().unwrap_or_else(|p| p.into_inner());
            state.services.iter().map(|(name, checks)| (name.clone(), !state.shut_down && checks.values().all(|ok| *ok))).collect()
        };
        let all = services.iter().all(|(_, ok)| *ok);
        for (name, ok) in &services {
            reporter.set_service_status(name, status(*ok)).await;
        }
        reporter.set_service_status("", status(all)).await;
        notified.await;
    }
}

fn status(ok: bool) -> ServingStatus {
    if ok { ServingStatus::Serving } else { ServingStatus::NotServing }
}
