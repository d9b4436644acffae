//! The auth layer's refusals, recorded as events: whoever reads the
//! refusing service's stream (the audit service) sees who was turned away.

use paved_stream::SharedStream;
use tokio_util::sync::CancellationToken;

/// Records the auth layer's refusals as `paved.events.v1.access.denied`
/// events on the refusing service's stream, as many as wait in one batch,
/// until `shutdown`. Best effort: while the stream is away they are
/// dropped, and the log says how many.
pub async fn publish_denials(
    stream: SharedStream,
    mut denials: tokio::sync::mpsc::Receiver<paved_grpc::auth::Denied>,
    shutdown: CancellationToken,
) {
    use paved_proto::events::v1::{AccessDenied, envelope::Payload};
    let mut batch = Vec::with_capacity(256);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            n = denials.recv_many(&mut batch, 256) => if n == 0 { return },
        }
        let entries: Vec<(String, Vec<u8>)> = batch
            .drain(..)
            .map(|d: paved_grpc::auth::Denied| {
                let envelope = paved_stream::event::envelope(
                    &d.service,
                    "paved.events.v1.access.denied",
                    format!("methods{}", d.method),
                    Payload::AccessDenied(AccessDenied {
                        service: d.service.clone(),
                        method: d.method,
                        subject: d.subject,
                        reason: d.reason,
                        message: d.message,
                    }),
                );
                (paved_stream::stream_name(&d.service), paved_stream::event::encode(&envelope))
            })
            .collect();
        if let Err(e) = stream.publish_batch(&entries).await {
            tracing::warn!(error = %e, dropped = entries.len(), "cannot record refused calls as events");
        }
    }
}
