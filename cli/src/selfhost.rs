//! Self-hosted mode: the four services besides the provisioner run as
//! workloads of environment `platform`. The `paved up` server forwards their
//! gRPC calls (HTTP/2, trailers included) to the workloads' proxies and
//! reports their health from the workloads' states.

use crate::SERVICES;
use axum::body::Body;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use paved_grpc::{Component, Health};
use paved_provisioner::{Provisioner, model::State};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// One forwarding component per deployed service.
pub fn forwarders(provisioner: &Provisioner, health: &Health, shutdown: &CancellationToken) -> Vec<Component> {
    let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    SERVICES
        .iter()
        .filter(|(name, _)| *name != "provisioner")
        .map(|&(workload, grpc_name)| {
            // The watcher keeps the healthy endpoint at hand, so a forwarded
            // call costs no database query.
            let (endpoint_tx, endpoint) = watch::channel(None);
            let mut tasks = tokio::task::JoinSet::new();
            tasks.spawn(watch_workload(provisioner.clone(), workload, grpc_name, endpoint_tx, health.clone(), shutdown.clone()));
            let client = client.clone();
            Component {
                name: grpc_name,
                mount: Box::new(move |mut routes| {
                    let router = routes.axum_router_mut();
                    let handler = move |req: http::Request<Body>| forward(endpoint.borrow().clone(), client.clone(), workload, req);
                    *router = std::mem::take(router).route(&format!("/{grpc_name}/{{*method}}"), axum::routing::any(handler));
                    routes
                }),
                tasks,
                // Verifiers reach the broker's key set through here.
                open_methods: if workload == paved_secrets_broker::SOURCE { paved_secrets_broker::OPEN_METHODS } else { &[] },
                token_only_methods: if workload == paved_secrets_broker::SOURCE { paved_secrets_broker::TOKEN_ONLY_METHODS } else { &[] },
            }
        })
        .collect()
}

/// Forwards to `endpoint`, the workload's proxy while it is healthy.
async fn forward(
    endpoint: Option<String>,
    client: Client<HttpConnector, Body>,
    workload: &'static str,
    mut req: http::Request<Body>,
) -> http::Response<Body> {
    let Some(endpoint) = endpoint else {
        return grpc_error(tonic::Code::Unavailable, &format!("platform service {workload} is not healthy yet"));
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    match format!("http://{endpoint}{path}").parse() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => return grpc_error(tonic::Code::Internal, "bad forwarding URI"),
    }
    match client.request(req).await {
        Ok(response) => response.map(Body::new),
        Err(e) => grpc_error(tonic::Code::Unavailable, &format!("platform service {workload} unreachable: {e}")),
    }
}

/// A trailers-only gRPC error response.
fn grpc_error(code: tonic::Code, message: &str) -> http::Response<Body> {
    tonic::Status::new(code, message).into_http()
}

/// Follows the workload: SERVING and its endpoint published while it is
/// healthy, NOT_SERVING and no endpoint otherwise.
async fn watch_workload(
    provisioner: Provisioner,
    workload: &'static str,
    grpc_name: &'static str,
    endpoint: watch::Sender<Option<String>>,
    health: Health,
    shutdown: CancellationToken,
) {
    loop {
        let healthy = match provisioner.workload("platform", workload).await {
            Ok(Some(view)) if view.state == Some(State::Healthy) => Some(view.endpoint),
            _ => None,
        };
        health.check(grpc_name, "workload", healthy.is_some());
        endpoint.send_replace(healthy);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}
