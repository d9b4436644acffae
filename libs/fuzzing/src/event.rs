//! Event envelopes off the stream, and what each consumer group reads of
//! them before it writes anything: the event's time (every recorder), a
//! revision's state (the analyzer's observations), the workload a subject
//! names (metric labels), and the audit log's leaf — chains, back-pointers
//! and people's names committed.

use paved_audit::log::entry::{self, COMMITMENT_PREFIX};
use paved_proto::{
    audit::v1::LogEntry,
    events::v1::{Envelope, envelope::Payload},
    provisioner::v1::RevisionState,
};
use prost::Message;
use std::collections::HashMap;

pub fn envelope(data: &[u8]) {
    let Ok(event) = paved_stream::event::decode(data) else { return };
    // Compared as bytes: a NaN amount is never equal to itself.
    let bytes = paved_stream::event::encode(&event);
    let again = paved_stream::event::decode(&bytes).map(|e| paved_stream::event::encode(&e));
    assert_eq!(again.ok(), Some(bytes), "an envelope changes once re-encoded");
    if let Some(time) = &event.time {
        let _ = paved_proto::millis_from_timestamp(time);
    }
    if let Some(Payload::RevisionStateChanged(changed)) = &event.payload {
        let _ = RevisionState::try_from(changed.to).unwrap_or_default().short_name();
    }
    let _ = paved_stream::event::workload_of(&event.subject);
    audited(&event);
}

/// The leaf the audit log appends for `event`: no person's name stands in
/// the fields that name people, and the leaf decodes to itself.
fn audited(event: &Envelope) {
    let people: Vec<String> = entry::people(event).into_iter().map(str::to_string).collect();
    let salts: HashMap<String, Vec<u8>> = people.iter().map(|p| (p.clone(), vec![7; 16])).collect();
    let _ = entry::chain_keys(event, &salts);
    let leaves = entry::leaves(&[event], "s", prost_types::Timestamp::default(), 0, &salts, &mut HashMap::new());
    let [leaf] = leaves.as_slice() else { panic!("{} leaves for one event", leaves.len()) };
    let committed = |name: &str| name.starts_with(COMMITMENT_PREFIX) && name.len() == COMMITMENT_PREFIX.len() + 64;
    if !leaf.entry.actor.is_empty() && entry::is_person(&leaf.entry.actor) {
        assert!(committed(&leaf.entry.actor), "the leaf's actor {:?} is not a commitment", leaf.entry.actor);
    }
    let Some(inside) = &leaf.entry.event else { panic!("a leaf without its event") };
    for name in entry::people(inside) {
        assert!(committed(name), "{name:?} stands in the leaf's event");
    }
    let bytes = leaf.entry.encode_to_vec();
    assert_eq!(LogEntry::decode(bytes.as_slice()).ok().map(|e| e.encode_to_vec()), Some(bytes), "a leaf changes once decoded");
}
