//! W3C trace context in and out of gRPC metadata (HTTP headers), so one trace
//! follows a request across services.

use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value)) {
            self.0.insert(name, value);
        }
    }
}

/// Makes the trace context carried by `headers` (if any) the parent of `span`.
pub fn set_parent_from(span: &tracing::Span, headers: &http::HeaderMap) {
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    // Fails only when the span is disabled; then there is nothing to link.
    let _ = span.set_parent(cx);
}

/// Writes the current span's trace context into `headers`.
pub fn inject_current(headers: &mut http::HeaderMap) {
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeadersMut(headers)));
}

/// The current span's `traceparent`, for event envelopes; empty outside a trace.
pub fn current_traceparent() -> String {
    let mut headers = http::HeaderMap::new();
    inject_current(&mut headers);
    headers.get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt;

    /// A caller's trace context becomes the parent of our span, and what we
    /// send on (gRPC metadata, event envelopes) continues that trace.
    #[test]
    fn trace_context_round_trips() {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
            let span = tracing::info_span!("server");
            set_parent_from(&span, &headers);
            let _entered = span.enter();
            let out = current_traceparent();
            assert!(out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "same trace: {out}");
            assert!(!out.contains("00f067aa0ba902b7"), "a span of our own: {out}");
        });
        assert_eq!(current_traceparent(), "", "outside a trace there is nothing to send");
    }
}
