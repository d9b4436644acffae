//! `hello`: the demo workload. A small HTTP service whose behaviour is set by
//! its environment, so rollouts and canaries have something to judge:
//!
//! - `PORT` (default 8080) and `HOST` (default 127.0.0.1): where it listens
//!   (the local runtime passes 127.0.0.1, a Kubernetes pod 0.0.0.0);
//! - `HELLO_VERSION` (default `v1`): the version its body names;
//! - `HELLO_ERROR_RATE` (0–1, default 0): share of requests answered 500;
//! - `HELLO_LATENCY_MS` (default 0): latency added to every request;
//! - `HELLO_STOP` (`graceful` by default): on SIGTERM, `graceful` stops
//!   accepting and finishes the requests in flight; `immediate` exits at
//!   once, failing them, as many servers do.
//!
//! `GET /` and `POST /` greet (`?latency_ms=N` adds up to 10 s of latency to that request), `GET /healthz` answers 200 (it is not subject to the error
//! rate or latency, which describe the service's work, not its liveness).

use axum::{Router, http::StatusCode, routing::get};
use std::{process::ExitCode, sync::Arc, time::Duration};

struct Settings {
    host: std::net::IpAddr,
    port: u16,
    version: String,
    error_rate: f64,
    latency: Duration,
    /// Exit at once on SIGTERM.
    immediate: bool,
}

fn settings() -> Result<Settings, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let port = match var("PORT") {
        Some(p) => p.parse().map_err(|_| format!("PORT={p:?} is not a port number"))?,
        None => 8080,
    };
    let error_rate = match var("HELLO_ERROR_RATE") {
        Some(r) => match r.parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => v,
            _ => {
                return Err(format!("HELLO_ERROR_RATE={r:?} must be a number between 0 and 1"));
            }
        },
        None => 0.0,
    };
    let latency = match var("HELLO_LATENCY_MS") {
        Some(l) => Duration::from_millis(l.parse().map_err(|_| format!("HELLO_LATENCY_MS={l:?} must be a whole number of milliseconds"))?),
        None => Duration::ZERO,
    };
    let host = match var("HOST") {
        Some(h) => h.parse().map_err(|_| format!("HOST={h:?} is not an IP address"))?,
        None => std::net::IpAddr::from([127, 0, 0, 1]),
    };
    let immediate = match var("HELLO_STOP").as_deref() {
        None | Some("graceful") => false,
        Some("immediate") => true,
        Some(other) => return Err(format!("HELLO_STOP={other:?} must be graceful or immediate")),
    };
    Ok(Settings { host, port, version: var("HELLO_VERSION").unwrap_or_else(|| "v1".into()), error_rate, latency, immediate })
}

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match settings() {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("hello: {e}");
            return ExitCode::from(2);
        }
    };
    let address = std::net::SocketAddr::new(settings.host, settings.port);
    let listener = match tokio::net::TcpListener::bind(address).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hello: cannot listen on {address}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let greet = {
        let s = settings.clone();
        move |uri: axum::http::Uri| {
            let s = s.clone();
            async move {
                let latency = s.latency + asked_latency(&uri);
                if !latency.is_zero() {
                    tokio::time::sleep(latency).await;
                }
                if s.error_rate > 0.0 && rand::random::<f64>() < s.error_rate {
                    return (StatusCode::INTERNAL_SERVER_ERROR, format!("hello {} failed (injected error)\n", s.version));
                }
                (StatusCode::OK, format!("hello from {}\n", s.version))
            }
        }
    };
    let app = Router::new().route("/", get(greet.clone()).post(greet)).route("/healthz", get(|| async { "ok\n" }));
    println!("hello {} listening on {address}", settings.version);
    let immediate = settings.immediate;
    let shutdown = async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        if immediate {
            std::process::exit(0);
        }
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        eprintln!("hello: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// `latency_ms=N` in the query: a slow request on purpose, of at most 10 s.
fn asked_latency(uri: &axum::http::Uri) -> Duration {
    let asked = uri.query().unwrap_or_default().split('&').find_map(|kv| kv.strip_prefix("latency_ms="));
    Duration::from_millis(asked.and_then(|ms| ms.parse::<u64>().ok()).unwrap_or(0).min(10_000))
}
