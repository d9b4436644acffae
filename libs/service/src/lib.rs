//! The process shell of a standalone Paved service: layered configuration
//! (defaults, then an optional YAML/TOML file, then `PAVED_*` environment
//! variables), telemetry, binding, connecting to the database and the event
//! stream with retries, serving, and draining on SIGTERM or Ctrl-C.
//!
//! A service crate provides its `Config` and `run`, or implements
//! [`ConsumerService`]; its `main.rs` is one call to [`main`] or
//! [`main_consumer`]. The embedded mode (`paved up`) skips this crate's
//! process handling and assembles the same components itself.
//!
//! # Layout
//!
//! Everything public is re-exported here, at `paved_service::X`; the modules
//! are private and say which concern each item belongs to.
//!
//! - `process` is the top: [`main`] reads the arguments and the
//!   configuration, starts the runtime and telemetry, binds, and runs the
//!   service until [`cancel_on_signal`] fires; [`main_consumer`] is [`main`]
//!   for a [`ConsumerService`].
//! - `connect` holds the retrying connections ([`retry`], [`database`],
//!   [`stream`]) that let a service wait for a database or Redis still
//!   starting instead of crashing. `shape` builds on them and `process`
//!   runs what `shape` builds, so they sit below both: imports go
//!   `process` → `shape` → `connect` → `config`, never back.
//! - `config` is what [`main`] loads: [`Common`] (with [`MtlsOptions`]),
//!   [`ServiceConfig`], [`BasicConfig`], and [`load_config`], which layers
//!   [`defaults`], the file and the environment. It depends on nothing else
//!   here.
//! - `shape` is what a service's `run` is made of. [`serve_standalone`]
//!   serves one component with what production adds around it;
//!   [`ConsumerService`] is the common shape (database, consumer group,
//!   API), whose component ([`consumer_component`]) the embedded mode
//!   builds too and whose production `run` is [`run_consumer`].
//! - `identity` and `denials` are the two loops [`serve_standalone`]
//!   starts besides the server: [`maintain_identity`] keeps the mTLS
//!   certificate, trust bundle and call token current ([`reload_token`] is
//!   the token from a file, without mTLS); [`publish_denials`] records the
//!   auth layer's refusals as events (the embedded mode starts it too).
//! - `ticks` — [`Ticks`], the clock of every periodic background loop.

mod config;
mod connect;
mod denials;
mod identity;
mod process;
mod shape;
mod ticks;

pub use config::{BasicConfig, Common, MtlsOptions, NoOptions, ServiceConfig, defaults, load_config};
pub use connect::{database, retry, stream};
pub use denials::publish_denials;
pub use identity::{maintain_identity, reload_token};
pub use process::{cancel_on_signal, main, main_consumer};
pub use shape::{Background, ConsumerService, Mount, consumer_component, run_consumer, serve_standalone};
pub use ticks::Ticks;
