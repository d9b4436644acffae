//! Health checks: HTTP GET of the spec's health path on an instance.

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use paved_spec::HealthCheck;
use std::{net::SocketAddr, time::Duration};

pub(crate) async fn wait_healthy(client: &ProbeClient, addr: SocketAddr, health: &HealthCheck) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + health.startup_timeout;
    let mut last = String::from("no answer yet");
    // Probe often during start-up: becoming healthy fast is what users wait
    // for (a request held while its workload wakes, above all). Every
    // millisecond for the first 20 ms — a process that starts in 3 ms is
    // seen then, not at the next doubling — then doubling to 25 ms: one that
    // takes seconds is probed 40 times a second.
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(1);
    while tokio::time::Instant::now() < deadline {
        match probe(client, addr, health).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        tokio::time::sleep(pause).await;
        if started.elapsed() > Duration::from_millis(20) {
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }
    Err(format!("not healthy after {:?}: {last}", health.startup_timeout))
}

pub(crate) type ProbeClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

pub(crate) async fn probe(client: &ProbeClient, addr: SocketAddr, health: &HealthCheck) -> Result<(), String> {
    let uri: http::Uri = format!("http://{addr}{}", health.path).parse().map_err(|e| format!("bad health URI: {e}"))?;
    match tokio::time::timeout(health.timeout, client.get(uri)).await {
        Err(_) => Err(format!("GET {} timed out after {:?}", health.path, health.timeout)),
        Ok(Err(e)) => Err(format!("GET {}: {e}", health.path)),
        Ok(Ok(response)) if response.status().is_success() => Ok(()),
        Ok(Ok(response)) => Err(format!("GET {} answered {}", health.path, response.status())),
    }
}
