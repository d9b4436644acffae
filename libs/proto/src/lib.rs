//! Generated code for every gRPC package and event type of Paved, and the file
//! descriptor set that the reflection service serves.
//!
//! The `.proto` sources live in `proto/` at the workspace root; `build.rs`
//! compiles them with protox. Nothing here is written by hand except the small
//! helpers on the event envelope.

#![allow(clippy::all, missing_docs)]

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
