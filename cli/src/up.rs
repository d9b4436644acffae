//! `paved up`: the whole platform in one process.
//!
//! Embedded mode: the five services share one gRPC server, SQLite files under
//! the data directory (one per service, plus the event stream's), and the
//! local runtime. Self-hosted mode: the provisioner runs here on PostgreSQL
//! and Redis and deploys the other four services as workloads of environment
//! `platform` from `deploy/platform/`; their calls are forwarded.
//!
//! # Layout
//! - `platform` assembles the platform ([`Platform`], [`UpOptions`]), what
//!   the integration tests start too;
//! - `command` is the command around it: flags, the banner, Ctrl-C;
//! - `private` keeps the data directory the platform's alone (0700, files
//!   0600; refused when other users can write it).
//!
//! Both are children of this module, which only re-exports: `command`
//! imports `platform`, never this module, so there is no cycle.

mod command;
mod platform;
mod private;

pub use command::{UpArgs, run};
pub use platform::{CostOptions, DATA_PLANE_GRACE_SECONDS, HELLO_SPEC, PLATFORM_SPECS, Platform, SelfHosted, UpOptions};
