//! A tower layer that gives every gRPC request a span (joined to the caller's
//! trace through the `traceparent` header) and records
//! `paved_grpc_server_requests_total{service,method,code}`,
//! `paved_grpc_server_request_duration_seconds{service,method}` and, for
//! calls a workload's identity made (`auth` says which),
//! `paved_grpc_server_workload_requests_total{service,method,code,environment,workload}`.

use futures::future::BoxFuture;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
};
use std::{
    sync::LazyLock,
    task::{Context, Poll},
    time::Instant,
};
use tower::{Layer, Service};
use tracing::Instrument;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: String,
    method: String,
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: String,
    method: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadCallLabels {
    service: String,
    method: String,
    code: String,
    environment: String,
    workload: String,
}

struct Metrics {
    requests: Family<CallLabels, Counter>,
    duration: Family<MethodLabels, Histogram>,
    by_workload: Family<WorkloadCallLabels, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let requests = Family::<CallLabels, Counter>::default();
    // 0.25 ms … ~8 s, doubling.
    let duration = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
        Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.000_25, 2.0, 16))
    });
    paved_telemetry::register("grpc_server_requests", "gRPC requests handled, by method and status code", requests.clone());
    paved_telemetry::register("grpc_server_request_duration_seconds", "gRPC request latency", duration.clone());
    let by_workload = Family::<WorkloadCallLabels, Counter>::default();
    let help = "gRPC requests a workload's identity made, by method and status code";
    paved_telemetry::register("grpc_server_workload_requests", help, by_workload.clone());
    Metrics { requests, duration, by_workload }
});

#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
}

impl<S, B, RB> Service<http::Request<B>> for Observe<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (service, method) = split_path(req.uri().path());
        // The lineage fields come from the caller's baggage, or from the
        // handler once it knows them (see `paved_telemetry::propagation::Lineage`).
        let empty = tracing::field::Empty;
        let span = tracing::info_span!(
            "grpc.request",
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = empty,
            paved.workload = empty,
            paved.revision = empty,
            paved.artifact_digest = empty
        );
        paved_telemetry::propagation::set_parent_from(&span, req.headers());
        // The clone that was made ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let start = Instant::now();
        Box::pin(
            async move {
                let result = inner.call(req).await;
                // tonic puts the status of a failed call in the headers
                // (trailers-only response); a successful unary call ends with
                // grpc-status 0 in the trailers.
                let code = match &result {
                    Ok(response) => response.headers().get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("0").to_string(),
                    Err(_) => "transport".to_string(),
                };
                tracing::Span::current().record("rpc.grpc.status_code", code.as_str());
                if method.is_empty() {
                    // Plain HTTP (/healthz, /metrics), not a gRPC call.
                    return result;
                }
                // Paths of methods that do not exist come from callers: one
                // series for all of them, or anyone could grow the registry.
                let (service, method) = if code == "12" { ("unknown".to_string(), "unknown".to_string()) } else { (service, method) };
                let metrics = &*METRICS;
                let caller = result.as_ref().ok().and_then(|r| r.extensions().get::<crate::auth::CallerWorkload>());
                if let Some(caller) = caller {
                    let (environment, workload) = (caller.environment.clone(), caller.workload.clone());
                    let (service, method, code) = (service.clone(), method.clone(), code.clone());
                    metrics.by_workload.get_or_create(&WorkloadCallLabels { service, method, code, environment, workload }).inc();
                }
                metrics.requests.get_or_create(&CallLabels { service: service.clone(), method: method.clone(), code }).inc();
                metrics.duration.get_or_create(&MethodLabels { service, method }).observe(start.elapsed().as_secs_f64());
                result
            }
            .instrument(span),
        )
    }
}

/// `/pkg.Service/Method` → (`pkg.Service`, `Method`).
fn split_path(path: &str) -> (String, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default().to_string();
    let method = parts.next().unwrap_or_default().to_string();
    (service, method)
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_grpc_path() {
        assert_eq!(
            super::split_path("/paved.audit.v1.AuditService/ListEntries"),
            ("paved.audit.v1.AuditService".into(), "ListEntries".into())
        );
    }
}
