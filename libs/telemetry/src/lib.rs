//! Telemetry for every Paved process: tracing (pretty or JSON), OTLP trace
//! export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, W3C trace-context
//! propagation, and one Prometheus registry served on `/metrics`.
//!
//! The registry is process-wide (like a logger): in the embedded mode all five
//! services share one process and one `/metrics`, and their series are told
//! apart by labels.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prometheus_client::{encoding::text::encode, registry::Registry};
use std::sync::{LazyLock, Mutex};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

pub mod propagation;
mod sources;

pub use sources::{Fetch, Source, merge, register_source};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pretty" | "text" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format {other:?}: expected pretty or json")),
        }
    }
}

/// Flushes buffered spans when dropped.
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "telemetry: flushing spans failed: {e}");
        }
    }
}

/// Installs the global subscriber. Filter from `RUST_LOG` (default `info`).
/// Call once per process, before anything logs.
pub fn init(service: &str, format: LogFormat) -> anyhow::Result<Guard> {
    propagation::install();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,h2=warn,tower=warn"));
    let provider = exporter(service)?;
    let otel = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service.to_string())));

    let registry = tracing_subscriber::registry().with(filter).with(otel);
    match format {
        // Logs go to stderr: stdout is for what a command prints for its user
        // (tables, JSON) and must stay clean for pipes. A stderr that is gone
        // (a closed terminal, a `| tee` that died) loses the lines: reporting
        // that with eprintln! would panic, in whatever task logged.
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_target(false).with_writer(std::io::stderr).log_internal_errors(false))
            .try_init()?,
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(std::io::stderr).log_internal_errors(false))
            .try_init()?,
    }
    Ok(Guard { provider })
}

/// Only trace export, for a command-line program whose output is its own
/// (no log lines): spans go to the OTLP collector when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and nothing is installed otherwise.
pub fn init_traces(service: &str) -> anyhow::Result<Guard> {
    propagation::install();
    let provider = exporter(service)?;
    if let Some(p) = &provider {
        let otel = tracing_opentelemetry::layer().with_tracer(p.tracer(service.to_string()));
        tracing_subscriber::registry().with(EnvFilter::new("info")).with(otel).try_init()?;
    }
    Ok(Guard { provider })
}

/// The OTLP/gRPC exporter, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the
/// SDK reads the rest of `OTEL_*`, `OTEL_BSP_SCHEDULE_DELAY` included).
fn exporter(service: &str) -> anyhow::Result<Option<SdkTracerProvider>> {
    match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
            let resource = opentelemetry_sdk::Resource::builder().with_service_name(service.to_string()).build();
            Ok(Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build()))
        }
        _ => Ok(None),
    }
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(Registry::with_prefix("paved")));

/// Registers a metric in the process-wide registry.
pub fn register(name: &str, help: &str, metric: impl prometheus_client::registry::Metric) {
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).register(name, help, metric);
}

/// Registers a collector in the process-wide registry: metrics it reads
/// afresh on each scrape.
pub fn register_collector(collector: impl prometheus_client::collector::Collector) {
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).register_collector(Box::new(collector));
}

/// The registry in the Prometheus text exposition format.
pub fn encode_metrics() -> String {
    let registry = REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

/// The registry and every registered source's families (see
/// [`register_source`]), as one OpenMetrics text: what `/metrics` serves.
pub async fn gather() -> String {
    sources::gather(encode_metrics()).await
}

/// Serves `GET /metrics` until `shutdown`.
pub async fn serve_metrics(listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            ([(http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], gather().await)
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}
