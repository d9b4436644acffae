//! The Kubernetes target: a workload spec as opinionated manifests, built
//! from `k8s-openapi` types, and applied with server-side apply.
//!
//! For a workload `web` in environment `prod` (the namespace):
//!
//! - `ServiceAccount/web`, and a `Role`/`RoleBinding` granting `get` on the
//!   workload's declared secrets and nothing else (no rules when it has none,
//!   and then no API token is mounted either);
//! - `Deployment/web`: the artifact pinned by digest, requests and limits,
//!   non-root, read-only root filesystem (a writable `/tmp`), no privilege
//!   escalation, all capabilities dropped, readiness, liveness and startup
//!   probes from the health check; `${secret:x}` references read Secret `x`;
//! - `Service/web`, `PodDisruptionBudget/web` (one pod may be down);
//! - `NetworkPolicy/default-deny` (no ingress to any pod of the namespace
//!   unless allowed) and `NetworkPolicy/web` (the declared port);
//! - for a canary at weight W: the same spec as `Deployment/web-canary` and
//!   `Service/web-canary`, and `HTTPRoute/web` (Gateway API) sending
//!   100 − W percent to `web` and W to `web-canary`.
//!
//! # Layout
//!
//! - `render`: [`Target`], [`RenderError`] and [`manifests`], the builder
//!   of each object from the spec;
//! - `gateway`: the hand-written Gateway API `HTTPRoute` types a canary needs;
//! - `manifest`: [`Manifest`], the renderer's output, and [`to_yaml`];
//! - `apply`: server-side apply of manifests through `kube`.
//!
//! Dependencies point one way: `render` → `gateway`, `manifest`;
//! `apply` → `manifest`; `lib.rs` only re-exports.

mod apply;
mod gateway;
mod manifest;
mod render;

pub use apply::{Applied, apply};
pub use manifest::{Manifest, to_yaml};
pub use render::{RenderError, Target, manifests};
