//! Recording what the runtime reports: each revision's state (and its
//! healthy instances, which the proxy routes to). The runtime persists
//! nothing; this is the only writer of revision states.

use crate::{
    model::{self, State},
    records::Records,
    routing::Routing,
};
use paved_local::Report;
use paved_stream::consumer::Backoff;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub(crate) struct Reports {
    records: Arc<Records>,
    routing: Arc<Routing>,
    /// The `database` health check: down while a state cannot be recorded.
    healthy: Arc<dyn Fn(bool) + Send + Sync>,
    shutdown: CancellationToken,
}

impl Reports {
    pub(crate) fn new(
        records: Arc<Records>,
        routing: Arc<Routing>,
        healthy: Arc<dyn Fn(bool) + Send + Sync>,
        shutdown: CancellationToken,
    ) -> Self {
        Self { records, routing, healthy, shutdown }
    }

    /// Records every report until the runtime is gone, or (at shutdown)
    /// until `drained`, and then what is left in the channel.
    pub(crate) async fn run(self, mut reports: mpsc::UnboundedReceiver<Report>, drained: CancellationToken) {
        loop {
            tokio::select! {
                report = reports.recv() => match report {
                    Some(report) => self.record(report).await,
                    None => return,
                },
                _ = drained.cancelled() => {
                    while let Ok(report) = reports.try_recv() {
                        self.record(report).await;
                    }
                    return;
                }
            }
        }
    }

    /// Routes the proxy to what the runtime reports, then persists the
    /// report (retrying while the database is down: a state change must not
    /// be lost). In that order: once a state is visible through the API,
    /// the proxy already agrees with it.
    async fn record(&self, report: Report) {
        let state = State::from(report.state);
        if matches!(state, State::Stopped | State::Failed) {
            self.routing.forget(&report.revision_id);
        } else {
            self.routing.set_backends(&report.revision_id, report.backends.clone());
        }
        let routed = self.routing.route(&report.workload_id).await;
        if model::is_baseline(&report.revision_id) {
            if let Err(e) = routed {
                tracing::warn!(workload = %report.workload_id, error = %e, "cannot route the workload's proxy");
            }
            self.records.changed(&report.workload_id);
            return;
        }
        let mut backoff = Backoff::default();
        let healthy = &self.healthy;
        let revision = loop {
            match self.records.record_state(&report.revision_id, state, &report.message).await {
                Ok(r) => {
                    healthy(true);
                    break r;
                }
                Err(e) => {
                    healthy(false);
                    tracing::warn!(revision = %report.revision_id, error = %e, "cannot record revision state; retrying");
                    tokio::select! {
                        _ = backoff.wait() => {}
                        // Shutting down with the database away: the next start
                        // reconciles from what was recorded.
                        _ = self.shutdown.cancelled() => {
                            tracing::error!(revision = %report.revision_id, state = state.as_str(), "database unreachable at shutdown; state not recorded");
                            return;
                        }
                    }
                }
            }
        };
        let Some(revision) = revision else {
            // Gone from the records (its preview closed): nothing to route to.
            self.routing.forget(&report.revision_id);
            return;
        };
        tracing::info!(workload = %revision.workload_id, revision = revision.number, state = state.as_str(), message = %report.message, "revision state");
        // Routing read the database too: when that failed, try again now.
        if routed.is_err() {
            self.routing.route_or_warn(&revision.workload_id).await;
        }
        self.records.changed(&revision.workload_id);
    }
}
