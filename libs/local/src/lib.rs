//! The local target: workloads as real OS processes on this machine, each
//! workload behind an L7 proxy of its own — the embedded mode's runtime,
//! beside `paved-k8s`, the Kubernetes target.
//!
//! # Layout
//! - [`runtime`] — [`LocalRuntime`]: starts a revision as one process per
//!   replica, supervises them (health checks, restarts with backoff, crash
//!   limits) and stops them; every change of a revision's [`State`] is a
//!   [`Report`] on a channel.
//! - `process` — one workload process, our child or adopted: finding its
//!   program, its log (which it writes itself, so that it outlives its
//!   supervisor) and the tail quoted when it fails, its process group.
//! - `record` — the run directory's record of each running replica (process
//!   group and port), through which a platform started again adopts what
//!   the one before it left running; `orphan` — those replicas, found and
//!   held through their pidfds until adopted or stopped.
//! - `digest` — the sha256 of the executable a process starts from,
//!   computed at each start: an artifact whose file no longer hashes to its
//!   revision's digest is not started, and the digest is what the process's
//!   bootstrap exchange proves.
//! - `launch` — [`Launch`], what the runtime is told to start.
//! - `identity` — what a process is started with to be who it is
//!   ([`Identity`]: its identity token, resolved secrets, secret files in a
//!   directory of its own) and what rotates while it runs ([`Rotation`]).
//! - `monitor` — watching a healthy replica: its exit, its health checks,
//!   and the rotations of its secrets.
//! - `probe` — the HTTP health check.
//! - `state` — [`State`], a revision's state, and how it folds from the
//!   states of its replicas' processes. Its own module (not `lib.rs`) so
//!   that `runtime` depends on it without depending on the crate root:
//!   `lib.rs` only declares modules and re-exports.
//! - [`proxy`] — [`Proxy`]: a workload's stable address, splitting traffic
//!   between revisions by weight ([`Route`]).
//! - `hold` — wake on request: the bounds on requests a sleeping
//!   workload's proxy holds ([`Hold`]) and the wake it asks for.
//! - `traffic` — what went through a proxy, per revision ([`Traffic`]), and
//!   the same counts as Prometheus metrics.
//! - `usage` — what each replica's processes use ([`ProcessUsage`]), read
//!   from `/proc` for cost attribution and right-sizing.
//!
//! # Never
//! This crate never depends on the provisioner or its database (nor on any
//! service crate, `sea-orm` or `paved-store`): it persists nothing and knows
//! no records. It is told what to run ([`Launch`], [`Route`]) and says what
//! happened ([`Report`], [`Traffic`]); recording that is its caller's work.

mod digest;
mod hold;
mod identity;
mod launch;
mod monitor;
mod orphan;
mod probe;
mod process;
pub mod proxy;
mod record;
pub mod runtime;
mod state;
mod traffic;
mod usage;

pub use digest::of_file as file_digest;
pub use hold::{Hold, WakeFn};
pub use identity::{Bootstrap, Identity, Rotation};
pub use launch::Launch;
pub use orphan::stop_recorded;
pub use process::free_port;
pub use proxy::{Proxy, Route};
pub use runtime::{LocalRuntime, Report};
pub use state::State;
pub use traffic::Traffic;
pub use usage::ProcessUsage;
