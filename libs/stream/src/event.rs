//! Building event envelopes.

use paved_proto::events::v1::Envelope;
use paved_proto::events::v1::envelope::Payload;
use prost::Message;

/// A new envelope with a fresh UUIDv7 id and the current time.
pub fn envelope(source: &str, kind: &str, subject: String, payload: Payload) -> Envelope {
    let now = chrono::Utc::now();
    Envelope {
        id: uuid::Uuid::now_v7().to_string(),
        source: format!("paved.{source}"),
        r#type: kind.to_string(),
        subject,
        time: Some(prost_types::Timestamp { seconds: now.timestamp(), nanos: now.timestamp_subsec_nanos() as i32 }),
        traceparent: String::new(),
        tracestate: String::new(),
        payload: Some(payload),
    }
}

pub fn encode(envelope: &Envelope) -> Vec<u8> {
    envelope.encode_to_vec()
}

pub fn decode(bytes: &[u8]) -> Result<Envelope, prost::DecodeError> {
    Envelope::decode(bytes)
}
