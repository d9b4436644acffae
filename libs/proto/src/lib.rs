//! Generated code for every gRPC package and event type of Paved, and the file
//! descriptor set that the reflection service serves.
//!
//! The `.proto` sources live in `proto/` at the workspace root; `build.rs`
//! compiles them with protox. Nothing here is written by hand except the small
//! helpers on the event envelope.

#![allow(clippy::all, missing_docs)]

/// The platform's five services, one package of these protos each: their
/// names as identities (`spiffe://paved/platform/<name>`), event streams
/// and token audiences.
pub const SERVICES: [&str; 5] = ["provisioner", "secrets-broker", "canary-analyzer", "cost-scheduler", "audit"];

/// Every file of `proto/`, encoded as a `google.protobuf.FileDescriptorSet`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/paved_descriptor.bin"));

pub mod events {
    pub mod v1 {
        tonic::include_proto!("paved.events.v1");
    }
}
pub mod provisioner {
    pub mod v1 {
        tonic::include_proto!("paved.provisioner.v1");
    }
}
pub mod secrets_broker {
    pub mod v1 {
        tonic::include_proto!("paved.secrets_broker.v1");
    }
}
pub mod canary_analyzer {
    pub mod v1 {
        tonic::include_proto!("paved.canary_analyzer.v1");
    }
}
pub mod cost_scheduler {
    pub mod v1 {
        tonic::include_proto!("paved.cost_scheduler.v1");
    }
}
pub mod audit {
    pub mod v1 {
        tonic::include_proto!("paved.audit.v1");
    }
}

/// Whether `s` can be an environment's or a workload's name: a DNS label
/// (1-63 of a-z, 0-9 and '-', not starting or ending with '-'). What reads
/// names off the wire (a SPIFFE id, an event's subject) checks them so
/// before using them as metric labels. `paved_spec` says why one is not.
pub fn is_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The well-known types the generated messages use, for their callers.
pub use prost_types;

/// Milliseconds since the Unix epoch (how the services store time) as a
/// protobuf timestamp.
pub fn timestamp_from_millis(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

/// A duration as protobuf, in whole seconds (how the APIs take TTLs).
pub fn duration_from_std(d: std::time::Duration) -> prost_types::Duration {
    prost_types::Duration { seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX), nanos: 0 }
}

/// The whole seconds of a `google.protobuf.Duration` field, or, when it is
/// unset, of the deprecated `<name>_seconds` field it replaced (requests
/// from clients built before it).
pub fn seconds_or(duration: Option<&prost_types::Duration>, deprecated_seconds: i64) -> i64 {
    duration.map_or(deprecated_seconds, |d| d.seconds)
}

/// A protobuf timestamp as milliseconds since the Unix epoch; one beyond
/// what milliseconds can hold is held at the end of the range. Timestamps
/// come from other processes (an event's time, a look's window): read as
/// they were, one near the range's end overflowed.
pub fn millis_from_timestamp(t: &prost_types::Timestamp) -> i64 {
    t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos) / 1_000_000)
}

impl provisioner::v1::RevisionState {
    /// The lower-case name users see: `healthy`, `failed`, …
    pub fn short_name(self) -> &'static str {
        use provisioner::v1::RevisionState as S;
        match self {
            S::Unspecified => "unspecified",
            S::Pending => "pending",
            S::Starting => "starting",
            S::Healthy => "healthy",
            S::Unhealthy => "unhealthy",
            S::Failed => "failed",
            S::Stopped => "stopped",
        }
    }
}

impl canary_analyzer::v1::Verdict {
    /// The lower-case name users see: `pass`, `fail`, …
    pub fn short_name(self) -> &'static str {
        use canary_analyzer::v1::Verdict as V;
        match self {
            V::Unspecified => "unspecified",
            V::Continue => "continue",
            V::Pass => "pass",
            V::Fail => "fail",
            V::Inconclusive => "inconclusive",
        }
    }
}

impl provisioner::v1::RolloutStage {
    pub fn short_name(self) -> &'static str {
        use provisioner::v1::RolloutStage as S;
        match self {
            S::Unspecified => "unspecified",
            S::Validate => "validate",
            S::Policy => "policy",
            S::Identity => "identity",
            S::Start => "start",
            S::Step => "step",
            S::Promote => "promote",
            S::Done => "done",
        }
    }
}

impl provisioner::v1::RolloutState {
    pub fn short_name(self) -> &'static str {
        use provisioner::v1::RolloutState as S;
        match self {
            S::Unspecified => "unspecified",
            S::Running => "running",
            S::Paused => "paused",
            S::Promoted => "promoted",
            S::RolledBack => "rolled_back",
            S::Aborted => "aborted",
            S::Superseded => "superseded",
        }
    }
}

#[cfg(test)]
mod tests {
    /// Seen in review of the `envelope` fuzz target: an event's time near
    /// the end of the range overflowed in every consumer that reads it.
    #[test]
    fn a_timestamp_beyond_milliseconds_is_held_at_the_range_end() {
        let t = |seconds, nanos| super::millis_from_timestamp(&prost_types::Timestamp { seconds, nanos });
        assert_eq!(t(1_800_000_000, 250_000_000), 1_800_000_000_250);
        assert_eq!(t(i64::MAX, 999_999_999), i64::MAX);
        assert_eq!(t(i64::MIN, -999_999_999), i64::MIN);
    }

    /// The Duration field wins when set (zero included: it says "default"
    /// in the new field's terms); the deprecated seconds only when it is not.
    #[test]
    fn a_duration_field_wins_over_the_seconds_it_replaced() {
        let d = |seconds| prost_types::Duration { seconds, nanos: 0 };
        assert_eq!(super::seconds_or(Some(&d(7200)), 60), 7200);
        assert_eq!(super::seconds_or(Some(&d(0)), 60), 0);
        assert_eq!(super::seconds_or(None, 60), 60);
        assert_eq!(super::seconds_or(None, 0), 0);
    }
}
