//! Measuring helpers every benchmark shares: a free port to start a server
//! on, the median of timed runs, durations in milliseconds. Their own module
//! (not `bench.rs`, which dispatches to every benchmark) so that the
//! benchmark modules depend on them without depending on the dispatcher.

use std::time::Duration;

/// A port free on 127.0.0.1 now (the OS's choice), for a server to bind.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The middle value of `v` (the upper one of an even count).
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
