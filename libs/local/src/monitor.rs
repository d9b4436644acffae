//! Watching a healthy replica: its exit, its health checks, and the
//! rotations of the secrets it was given (a file rewritten and signalled,
//! or a restart asked for). It says why the watch ended; its supervisor
//! (`runtime`) decides what follows.

use crate::{
    identity::{self, Rotation, Rotations},
    launch::Launch,
    probe::probe,
    process::{Group, Output, Proc, exit_message},
    state::{Instance, State},
};
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use std::{net::SocketAddr, path::Path};
use tokio_util::sync::CancellationToken;

/// A healthy replica, as its monitor watches it.
pub(crate) struct Watch<'a> {
    pub(crate) launch: &'a Launch,
    pub(crate) index: usize,
    pub(crate) addr: SocketAddr,
    pub(crate) output: &'a Output,
    pub(crate) group: &'a Group,
    pub(crate) probe: &'a Client<HttpConnector, Empty<Bytes>>,
    /// Where its secret files are (the runtime's `secrets/`).
    pub(crate) secrets_dir: &'a Path,
}

/// The next rotation, or never when there are none to wait for.
async fn next_rotation(rotations: &mut Rotations) -> Option<Rotation> {
    match rotations {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// How a healthy process's watch ended.
pub(crate) enum Ended {
    /// Its supervisor was cancelled.
    Cancelled,
    /// It exited or stopped answering: restarted as a crash.
    Failed(String),
    /// Its delivered secrets changed and its spec says `restart` (or it
    /// has no SIGHUP handler to be told of a rewritten file).
    Rotated,
}

/// Watches a healthy process, and hands it the rotations of its
/// secrets. Returns why it must be restarted, or that it was cancelled.
pub(crate) async fn monitor(
    child: &mut Proc,
    watch: &Watch<'_>,
    rotations: &mut Rotations,
    send: &impl Fn(Instance),
    cancel: &CancellationToken,
) -> Ended {
    let (addr, health) = (watch.addr, &watch.launch.spec.health);
    let mut failures = 0u32;
    let mut ticker = tokio::time::interval(health.period);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ended::Cancelled,
            message = exit_message(child, watch.output) => return Ended::Failed(message),
            rotation = next_rotation(rotations) => match rotation {
                Some(Rotation::File { name, value }) => {
                    let dir = identity::dir(watch.secrets_dir, &watch.launch.revision_id, watch.index);
                    // A process without a SIGHUP handler would die of
                    // it: restarted instead, it reads the new file.
                    if !identity::rewrite(&dir, watch.group, &name, value) {
                        return Ended::Rotated;
                    }
                }
                Some(Rotation::Restart) => return Ended::Rotated,
                // Whoever sent them is gone: no more rotations.
                None => *rotations = None,
            },
            _ = ticker.tick() => {
                match probe(watch.probe, addr, health).await {
                    Ok(()) => {
                        if failures >= health.failure_threshold {
                            send(Instance { state: State::Healthy, addr: Some(addr), message: String::new() });
                        }
                        failures = 0;
                    }
                    Err(e) => {
                        failures += 1;
                        if failures == health.failure_threshold {
                            send(Instance { state: State::Unhealthy, addr: None, message: format!("health check failing: {e}") });
                        }
                        // Still failing after twice the threshold: a hung
                        // process does not heal by itself; restart it.
                        if failures >= health.failure_threshold * 2 {
                            return Ended::Failed(format!("restarted after {failures} failed health checks: {e}"));
                        }
                    }
                }
            }
        }
    }
}
