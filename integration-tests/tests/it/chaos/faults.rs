//! The faults of a chaos run, drawn from its seed: which, when, for how
//! long. Every kind comes once first, in a seeded order (each service
//! killed, PostgreSQL crashed, Redis killed, one link cut), then they
//! come at random.

use super::{backends::Postgres, link::Link};
use crate::compose::Platform;
use paved_integration_tests::OwnRedis;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use std::{collections::BTreeMap, fmt, time::Duration};

#[derive(Clone, Debug)]
pub(crate) enum Fault {
    /// `kill -9` of a service, started again as compose would.
    Kill(String),
    /// PostgreSQL stopped the way a crash stops it, then started again.
    Postgres,
    /// Redis killed with SIGKILL, then started again (every write it
    /// acknowledged is in its append-only file: nothing is lost).
    Redis,
    /// The network to a service, PostgreSQL or Redis cut.
    Cut(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kill(service) => write!(f, "kill -9 {service}"),
            Fault::Postgres => f.write_str("PostgreSQL crashed"),
            Fault::Redis => f.write_str("kill -9 Redis"),
            Fault::Cut(target) => write!(f, "network to {target} cut"),
        }
    }
}

/// The seeded sequence of faults.
pub(crate) struct Schedule {
    rng: StdRng,
    first: Vec<Fault>,
    services: Vec<String>,
    links: Vec<String>,
}

impl Schedule {
    pub(crate) fn new(seed: u64, services: Vec<String>, links: Vec<String>) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut first: Vec<Fault> = services.iter().cloned().map(Fault::Kill).collect();
        first.extend([Fault::Postgres, Fault::Redis, Fault::Cut(links[rng.random_range(0..links.len())].clone())]);
        first.shuffle(&mut rng);
        Self { rng, first, services, links }
    }

    /// The pause before the next fault, the fault, and how long it lasts.
    pub(crate) fn next(&mut self) -> (Duration, Fault, Duration) {
        let pause = Duration::from_millis(self.rng.random_range(2_000..6_000));
        let fault = self.first.pop().unwrap_or_else(|| match self.rng.random_range(0..10) {
            0..5 => Fault::Kill(self.services[self.rng.random_range(0..self.services.len())].clone()),
            5..8 => Fault::Cut(self.links[self.rng.random_range(0..self.links.len())].clone()),
            8 => Fault::Postgres,
            _ => Fault::Redis,
        });
        let lasting = match fault {
            Fault::Kill(_) => self.rng.random_range(100..3_000),
            Fault::Postgres | Fault::Redis => self.rng.random_range(500..4_000),
            Fault::Cut(_) => self.rng.random_range(1_000..8_000),
        };
        (pause, fault, Duration::from_millis(lasting))
    }
}

/// What the faults act on.
pub(crate) struct Targets<'a> {
    pub(crate) platform: &'a mut Platform,
    pub(crate) postgres: &'a Postgres,
    /// None only while it is down.
    pub(crate) redis: &'a mut Option<OwnRedis>,
    pub(crate) redis_dir: &'a std::path::Path,
    pub(crate) links: &'a BTreeMap<String, Link>,
    /// The trust bundle, to see a restarted service serve again.
    pub(crate) bundle: &'a str,
}

impl Targets<'_> {
    /// Inflicts `fault` for `lasting`, then ends it; a killed service is
    /// waited for until it serves again (its start is part of the fault).
    /// A service found already exited when it is about to be killed is
    /// named in `exited`, and started again.
    pub(crate) async fn inflict(&mut self, fault: &Fault, lasting: Duration, exited: &mut Vec<String>) {
        match fault {
            Fault::Kill(service) => {
                let child = &mut self.platform.running.get_mut(service).expect("running").child;
                match child.try_wait() {
                    Ok(Some(status)) => exited.push(format!("{service} ({status})")),
                    _ => {
                        child.start_kill().expect("kill -9");
                        let _ = child.wait().await;
                    }
                }
                tokio::time::sleep(lasting).await;
                self.platform.restart(service);
                self.platform.serving(service, self.bundle).await;
            }
            Fault::Postgres => {
                self.postgres.crash().await;
                tokio::time::sleep(lasting).await;
                self.postgres.start_again().await;
            }
            Fault::Redis => {
                let redis = self.redis.take().expect("Redis running");
                let port = redis.port;
                redis.kill().await;
                tokio::time::sleep(lasting).await;
                *self.redis = Some(OwnRedis::start(port, Some(self.redis_dir.to_path_buf())).await);
            }
            Fault::Cut(target) => {
                let link = &self.links[target];
                link.cut(true);
                tokio::time::sleep(lasting).await;
                link.cut(false);
            }
        }
    }
}
