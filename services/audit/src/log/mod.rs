//! The transparency log: every event a leaf of one RFC 6962 Merkle tree,
//! in one durable order, with signed checkpoints, read as C2SP tlog-tiles.

pub mod answer;
pub mod append;
pub mod bundle;
pub mod chains;
pub mod cosign;
pub mod entry;
pub mod http;
pub mod key;
pub mod metrics;
pub mod note;
pub mod query;
pub mod read;
pub mod schema;
pub mod signer;
pub mod store;
pub mod tiles;
pub mod verify;
pub mod witnessed;
