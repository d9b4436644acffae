//! The rollout state machine, its driver, and the operations on it.
//!
//! `validate → policy → identity → start → step (once per weight) → promote
//! → done`, or from any stage straight to `done` as rolled back, aborted or
//! superseded. Every transition is committed, with its event, before the
//! stage acts, and every action is idempotent (start a revision that may
//! already run, route a proxy to the recorded weights). So a driver that dies
//! anywhere — the provisioner SIGKILLed — is replaced at the next start by
//! one that reads the last committed transition and carries on.
//!
//! The driver and the API (pause, abort, …) both update rollouts; each
//! update names the version it read ([`crate::store::update_rollout`]) and, when
//! another writer came first, reads again and decides anew. Transitions that
//! change a workload's routing (promote, roll back) also hold the apply lock,
//! so they never interleave with an apply of the same workload.
//!
//! - `driver` — `Driver`: one task per rollout in this process, advancing
//!   it from its committed stage, and holding its steps (the looks sent to
//!   the canary analyzer, and its verdicts acted on).
//! - `admit` — the stages before anything runs (validate, policy, identity),
//!   passed together in one transaction.
//! - `transitions` — the two ends of a rollout, promoted or not: traffic
//!   moved, the baseline and the other revisions stopped. The driver and
//!   the commands both end rollouts.
//! - `control` — `Rollouts`: what people do to rollouts (pause, resume,
//!   abort, promote now) and to workloads (roll back).
//! - `step` — a pass's vocabulary: what the driver does next, how often a
//!   step is looked at, and the step gate without an analyzer.
//! - `window` — the held step's measurement window, recorded in the
//!   rollout's row so that a restarted provisioner resumes it.

mod admit;
mod control;
mod driver;
mod step;
mod transitions;
mod window;

pub use control::RolloutError;
pub(crate) use control::Rollouts;
pub(crate) use driver::{Analyzer, Driver};
pub use step::gate;
pub(crate) use transitions::Transitions;
