//! The collector's side of OTLP/gRPC, from the official opentelemetry-proto
//! definitions: keeps every span it is sent, with its resource's service
//! name. The trace test runs it in process; `otlp-receiver` (the compose
//! test's stand-in for the OpenTelemetry Collector) serves it on its own.

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{KeyValue, any_value::Value},
    trace::v1::Span,
};
use std::sync::{Arc, Mutex};
use tonic::{Request, Response, Status};

/// A span as received, with its resource's service name.
#[derive(Clone, Debug)]
pub struct Received {
    pub service: String,
    pub span: Span,
}

impl Received {
    pub fn attribute(&self, key: &str) -> Option<String> {
        string_of(&self.span.attributes, key)
    }
}

/// The string value of attribute `key`, if it has one.
pub fn string_of(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|a| a.key == key).and_then(|a| match a.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    })
}

/// What sees each span as it arrives.
type OnSpan = Arc<dyn Fn(&Received) + Send + Sync>;

/// Keeps every span it is sent, or, made [`Receiver::with`] a callback,
/// hands each to it instead (a receiver that runs for long keeps nothing).
#[derive(Clone, Default)]
pub struct Receiver {
    kept: Arc<Mutex<Vec<Received>>>,
    on_span: Option<OnSpan>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(&self, request: Request<ExportTraceServiceRequest>) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        for resource in request.into_inner().resource_spans {
            let attributes = resource.resource.map(|r| r.attributes).unwrap_or_default();
            let service = string_of(&attributes, "service.name").unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|scope| scope.spans) {
                let received = Received { service: service.clone(), span };
                match &self.on_span {
                    Some(on_span) => on_span(&received),
                    None => kept.push(received),
                }
            }
        }
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

impl Receiver {
    /// A receiver that calls `on_span` for every span, and keeps none.
    pub fn with(on_span: impl Fn(&Received) + Send + Sync + 'static) -> Self {
        Self { kept: Arc::default(), on_span: Some(Arc::new(on_span)) }
    }

    pub fn spans(&self) -> Vec<Received> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Serves OTLP/gRPC on `listener` until the future is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> Result<(), tonic::transport::Error> {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(self))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    }
}
