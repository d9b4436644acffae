//! W3C trace context and baggage in and out of gRPC metadata (HTTP headers),
//! so one trace follows a request across services, and a rollout's lineage
//! (workload, revision, artifact digest) with it.

use opentelemetry::{
    KeyValue,
    baggage::BaggageExt,
    propagation::{Extractor, Injector},
};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// What crosses process boundaries with a call: the W3C trace context, and
/// W3C baggage (a deploy's [`Lineage`]).
pub fn install() {
    opentelemetry::global::set_text_map_propagator(opentelemetry::propagation::TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
}

/// The lineage of what a span works on: the workload (`<environment>/<name>`),
/// its revision and the artifact it runs (`sha256:…`, empty for a command).
/// Carried as W3C baggage to every service a call reaches, and recorded on
/// each span there as `paved.workload`, `paved.revision` and
/// `paved.artifact_digest` (declared `Empty` by the span), so that a trace
/// id leads from a commit's artifact to the running workload and back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lineage {
    pub workload: String,
    pub revision: String,
    pub artifact_digest: String,
}

const KEYS: [&str; 3] = ["paved.workload", "paved.revision", "paved.artifact_digest"];

impl Lineage {
    fn values(&self) -> [&str; 3] {
        [&self.workload, &self.revision, &self.artifact_digest]
    }

    /// Records what is known on `span` (its fields must be declared).
    pub fn record(&self, span: &tracing::Span) {
        for (key, value) in KEYS.into_iter().zip(self.values()).filter(|(_, v)| !v.is_empty()) {
            span.record(key, value);
        }
    }

    /// Makes `span` (not yet entered) a child of the current span whose
    /// calls carry this lineage on (over what the current one carries), and
    /// records it there.
    pub fn carry(&self, span: &tracing::Span) {
        let current = tracing::Span::current().context();
        let mut lineage = Self::from_context(&current);
        for (mine, theirs) in [
            (&self.workload, &mut lineage.workload),
            (&self.revision, &mut lineage.revision),
            (&self.artifact_digest, &mut lineage.artifact_digest),
        ] {
            if !mine.is_empty() {
                theirs.clone_from(mine);
            }
        }
        // Fails only when the span is disabled; then there is nothing to carry.
        let _ = span.set_parent(lineage.onto(&current));
        lineage.record(span);
    }

    /// `cx` with this lineage as its whole baggage: only Paved's keys travel
    /// on, whatever else a caller put there.
    fn onto(&self, cx: &opentelemetry::Context) -> opentelemetry::Context {
        let pairs = KEYS.into_iter().zip(self.values()).filter(|(_, v)| !v.is_empty()).map(|(k, v)| KeyValue::new(k, v.to_string()));
        cx.with_baggage(pairs.collect::<Vec<_>>())
    }

    /// The lineage `cx`'s baggage carries. A value that is no name, id or
    /// digest (longer than 256 characters, or with spaces or controls) is
    /// dropped: baggage comes from callers.
    fn from_context(cx: &opentelemetry::Context) -> Self {
        let baggage = cx.baggage();
        let get = |key: &str| {
            let value = baggage.get(key).map(|v| v.as_str().to_string()).unwrap_or_default();
            if value.len() <= 256 && value.chars().all(|c| c.is_ascii_graphic()) { value } else { String::new() }
        };
        Self { workload: get(KEYS[0]), revision: get(KEYS[1]), artifact_digest: get(KEYS[2]) }
    }
}

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

/// Makes `span` (made with `parent: None`) continue the current span's trace
/// without holding the current span open, for work on `own` lineage that
/// outlives it: a revision's supervisor outlives the rollout that started
/// it (a span ends only once its children have), and may run another
/// revision than the rollout's (its baseline).
pub fn continue_trace(span: &tracing::Span, own: &Lineage) {
    let cx = tracing::Span::current().context();
    own.record(span);
    // Fails only when the span is disabled; then there is nothing to link.
    let _ = span.set_parent(own.onto(&cx));
}

/// Makes the trace context carried by `headers` (if any) the parent of
/// `span`, and records the lineage its baggage carries on it: what the
/// caller says it works on, like its trace context, before anyone checked
/// who it is. Nothing else of its baggage is passed on.
pub fn set_parent_from(span: &tracing::Span, headers: &http::HeaderMap) {
    let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    let lineage = Lineage::from_context(&cx);
    lineage.record(span);
    // Fails only when the span is disabled; then there is nothing to link.
    let _ = span.set_parent(lineage.onto(&cx));
}

/// Writes the current span's trace context (and baggage) into `headers`.
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

    /// Runs `test` with spans exported to OpenTelemetry and the process's
    /// one propagator installed (tests run in parallel and share the global).
    fn traced(test: impl FnOnce()) {
        install();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, test);
    }

    /// A caller's trace context becomes the parent of our span, and what we
    /// send on (gRPC metadata, event envelopes) continues that trace.
    #[test]
    fn trace_context_round_trips() {
        traced(|| {
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

    /// A lineage carried by a span goes out as baggage with every call made
    /// under it, merged over what its parent carried, and comes back whole.
    #[test]
    fn lineage_travels_as_baggage() {
        traced(|| {
            let empty = tracing::field::Empty;
            let outer = tracing::info_span!("deploy", paved.workload = empty, paved.revision = empty, paved.artifact_digest = empty);
            Lineage { workload: "dev/shop".into(), ..Lineage::default() }.carry(&outer);
            let _outer = outer.enter();
            let inner = tracing::info_span!("rollout", paved.workload = empty, paved.revision = empty, paved.artifact_digest = empty);
            let digest = format!("sha256:{}", "ab".repeat(32));
            Lineage { revision: "r-1".into(), artifact_digest: digest.clone(), ..Lineage::default() }.carry(&inner);
            let _inner = inner.enter();
            let mut headers = http::HeaderMap::new();
            inject_current(&mut headers);
            assert!(headers.contains_key("traceparent") && headers.contains_key("baggage"), "{headers:?}");
            let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(&headers)));
            let want = Lineage { workload: "dev/shop".into(), revision: "r-1".into(), artifact_digest: digest };
            assert_eq!(Lineage::from_context(&cx), want);
        });
    }

    /// A caller's baggage: only Paved's keys go on, a value that is no id is
    /// dropped, and work continued on its own lineage carries that alone.
    #[test]
    fn only_lineage_travels_on_and_work_names_its_own() {
        traced(|| {
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
            let baggage = "paved.workload=dev/shop,paved.revision=r%20with%20spaces,smuggled=1";
            headers.insert("baggage", http::HeaderValue::from_static(baggage));
            let empty = tracing::field::Empty;
            let server = tracing::info_span!("server", paved.workload = empty, paved.revision = empty, paved.artifact_digest = empty);
            set_parent_from(&server, &headers);
            let _server = server.enter();
            let mut out = http::HeaderMap::new();
            inject_current(&mut out);
            assert_eq!(out.get("baggage").and_then(|v| v.to_str().ok()), Some("paved.workload=dev/shop"), "{out:?}");

            let own = Lineage { workload: "dev/shop".into(), revision: "r-0".into(), artifact_digest: String::new() };
            let work = tracing::info_span!(parent: None, "run revision", paved.workload = empty, paved.revision = empty, paved.artifact_digest = empty);
            continue_trace(&work, &own);
            let _work = work.enter();
            let mut out = http::HeaderMap::new();
            inject_current(&mut out);
            assert!(out.get("traceparent").and_then(|v| v.to_str().ok()).is_some_and(|t| t.contains("4bf92f3577b34da6a3ce929d0e0e4736")));
            let cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(&out)));
            assert_eq!(Lineage::from_context(&cx), own);
        });
    }
}
