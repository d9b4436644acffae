//! The gRPC server stack every Paved server uses: standard health and
//! reflection services, the tower layers (metrics and trace context, a global
//! concurrency limit, per-request timeouts), graceful drain, and canonical
//! errors with rich details.
//!
//! # Layout
//! - [`health`] — per-service health derived from named checks (database,
//!   stream consumer, relay) that background loops report.
//! - [`observe`] — the tower layer that records per-method metrics and joins the
//!   caller's trace.
//! - [`status`] — constructors for `tonic::Status` with `google.rpc` details.
//! - [`auth`] — the layer that authenticates and authorises every Paved
//!   call, and [`client`], the token a client presents.
//! - [`tls`] — mTLS with SPIFFE certificates: the process's identity and
//!   trust bundle, replaceable while in use.
//! - [`serve`] — assembles the server.

pub mod auth;
pub mod client;
mod expiry;
pub mod health;
pub mod observe;
pub mod spiffe;
pub mod status;
pub mod tls;

use std::time::Duration;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

pub use auth::Authenticator;
pub use health::Health;

/// What one service contributes to a server: its gRPC routes and the
/// background tasks (consumers, relays, runtimes) that live as long as it.
pub struct Component {
    /// The service's full gRPC name, e.g. `paved.audit.v1.AuditService`; its
    /// health is reported under this name.
    pub name: &'static str,
    /// Adds the service's routes (a closure, because tonic's `Routes` cannot
    /// be merged once built).
    pub mount: Box<dyn FnOnce(Routes) -> Routes + Send>,
    pub tasks: JoinSet<()>,
    /// Methods that need no token (full paths, `/pkg.Service/Method`).
    pub open_methods: &'static [&'static str],
    /// Methods that need a valid token but no scope (see [`auth::Exemptions`]).
    pub token_only_methods: &'static [&'static str],
}

/// How long background tasks get to stop after the server stopped.
const TASKS_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Upper bound for one request when the client sets no shorter deadline.
    pub request_timeout: Duration,
    /// Requests in flight across all connections; more wait for a slot.
    pub concurrency_limit: usize,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub drain_timeout: Duration,
    /// mTLS (production mode): every connection is TLS with this identity.
    pub tls: Option<tls::Tls>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self { request_timeout: Duration::from_secs(30), concurrency_limit: 1024, drain_timeout: Duration::from_secs(10), tls: None }
    }
}

/// Serves `components` plus health and reflection on `listener` until
/// `shutdown`, authenticating calls with `auth`, then drains: health turns NOT_SERVING, the listener closes, and
/// in-flight requests get `drain_timeout` to finish. Background tasks of the
/// components are awaited last (they watch the same `shutdown`).
pub async fn serve(
    listener: TcpListener,
    components: Vec<Component>,
    health: Health,
    auth: Authenticator,
    options: ServerOptions,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(paved_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    // Python's grpcio-reflection and older tools speak only v1alpha.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(paved_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let mut routes = Routes::default();
    let mut tasks = Vec::new();
    let exempt = auth::Exemptions {
        open: components.iter().flat_map(|c| c.open_methods.iter().map(|m| m.to_string())).collect(),
        token_only: components.iter().flat_map(|c| c.token_only_methods.iter().map(|m| m.to_string())).collect(),
    };
    for component in components {
        health.register(component.name);
        routes = (component.mount)(routes);
        tasks.push(component.tasks);
    }
    let mut routes = routes.add_service(health.service()).add_service(reflection_v1).add_service(reflection_v1alpha);
    // Plain HTTP beside gRPC on the same port: `/healthz` for HTTP health
    // checks (the local runtime's, when the platform deploys itself) and
    // `/metrics` for Prometheus.
    let router = routes.axum_router_mut();
    let probe = health.clone();
    *router =
        std::mem::take(router)
            .route(
                "/healthz",
                axum::routing::get(move || {
                    let ok = probe.all_serving();
                    async move {
                        if ok { (http::StatusCode::OK, "serving\n") } else { (http::StatusCode::SERVICE_UNAVAILABLE, "not serving\n") }
                    }
                }),
            )
            .route("/metrics", axum::routing::get(paved_telemetry::gather));

    // Order matters, outermost first: `observe` sees every request, including
    // those refused, those the limit makes wait and those that time out, so
    // the metrics and traces tell the whole story; authentication comes
    // next, so a refused call takes no slot; then the concurrency limit; the
    // timeout (tonic's, which honours the client's `grpc-timeout`) applies
    // closest to the handler.
    let layers = tower::ServiceBuilder::new()
        .layer(observe::ObserveLayer)
        .layer(auth::AuthLayer::new(auth, exempt, options.tls.is_some()))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(options.concurrency_limit));

    let drain = {
        let health = health.clone();
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            health.shut_down();
        }
    };
    let router = tonic::transport::Server::builder().accept_http1(true).timeout(options.request_timeout).layer(layers).add_routes(routes);
    let server: futures::future::BoxFuture<'static, Result<(), tonic::transport::Error>> = match &options.tls {
        Some(tls) => Box::pin(router.serve_with_incoming_shutdown(tls.incoming(listener)?, drain)),
        // Without TCP_NODELAY a response's frames (headers, data, trailers) wait
        // on Nagle's algorithm for the client's delayed ACK: 40 ms per call.
        None => Box::pin(
            router.serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)), drain),
        ),
    };
    tokio::pin!(server);
    let outcome = tokio::select! {
        result = &mut server => result.map_err(anyhow::Error::from),
        _ = async { shutdown.cancelled().await; tokio::time::sleep(options.drain_timeout).await } => {
            tracing::warn!(timeout = ?options.drain_timeout, "drain timed out; closing remaining requests");
            Ok(())
        }
    };
    // Also when the server failed by itself: the background tasks (workload
    // processes among them) must stop, not be dropped.
    shutdown.cancel();
    let join = async {
        for mut set in tasks {
            while set.join_next().await.is_some() {}
        }
    };
    if tokio::time::timeout(TASKS_TIMEOUT, join).await.is_err() {
        tracing::warn!(timeout = ?TASKS_TIMEOUT, "background tasks did not stop in time");
    }
    outcome
}
