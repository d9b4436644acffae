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

/// The (environment, workload) an event's subject names
/// (`environments/<env>/workloads/<name>`), both checked as names: a
/// subject comes from a producer's request, and what reads it may make
/// labels of them.
pub fn workload_of(subject: &str) -> Option<(&str, &str)> {
    let (environment, workload) = subject.strip_prefix("environments/")?.split_once("/workloads/")?;
    (paved_proto::is_name(environment) && paved_proto::is_name(workload)).then_some((environment, workload))
}

pub fn encode(envelope: &Envelope) -> Vec<u8> {
    envelope.encode_to_vec()
}

pub fn decode(bytes: &[u8]) -> Result<Envelope, prost::DecodeError> {
    Envelope::decode(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_subject_names_a_workload_only_with_two_names() {
        assert_eq!(super::workload_of("environments/dev/workloads/shop"), Some(("dev", "shop")));
        for subject in
            ["environments/dev", "teams/shop/environments/dev", "environments/dev/workloads/a/b", "environments/Dev/workloads/shop"]
        {
            assert_eq!(super::workload_of(subject), None, "{subject}");
        }
    }
}
