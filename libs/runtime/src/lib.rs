//! `paved-runtime`: the local data plane's host. It holds the workload
//! proxies of one machine (their listening sockets, routes and weights, the
//! requests held while a workload wakes) in a process of its own, so that
//! workload traffic goes on while the provisioner restarts, crashes or is
//! upgraded; the provisioner drives it over a Unix socket.
//!
//! # Layout
//! - [`host`] — [`Host`]: the proxies, the `RuntimeService` that commands
//!   them, and how long they outlive a control plane that went away.
//! - `convert` — between the wire's messages and `paved-local`'s types.
//! - [`pb`] — the generated messages and stubs of `paved.runtime.v1`.
//! - [`client`] — connecting to a host, or starting one when none runs,
//!   or one that takes over from a host of another build.
//! - [`handover`] — a new host takes the proxies of the old one without
//!   closing their listening sockets; `fds` passes the sockets.
//! - `main.rs` — the binary: the socket (same user only) and the grace period.
//!
//! # Never
//! The host never depends on the provisioner or its database: like
//! `paved-local`, it is told what to serve and says what happened.

pub mod client;
mod convert;
mod fds;
pub mod handover;
pub mod host;
pub mod pb;

pub use convert::{route_from, route_to, traffic_from};
pub use host::{Host, build_of};
