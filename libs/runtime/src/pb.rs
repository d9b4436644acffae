//! The generated messages and stubs of `paved.runtime.v1` (see `build.rs`).

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("paved.runtime.v1");
