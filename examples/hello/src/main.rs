//! `hello`: the demo workload. A small HTTP service whose behaviour is set by
//! its environment, so rollouts and canaries have something to judge:
//!
//! - `PORT` (default 8080) and `HOST` (default 127.0.0.1): where it listens
//!   (the local runtime passes 127.0.0.1, a Kubernetes pod 0.0.0.0);
//! - `HELLO_VERSION` (default `v1`): the version its body names;
//! - `HELLO_ERROR_RATE` (0–1, default 0): share of requests answered 500;
//! - `HELLO_LATENCY_MS` (default 0): latency added to every request.
//!
//! `GET /` greets, `GET /healthz` answers 200 (it is not subject to the error
//! rate or latency, which describe the service's work, not its liveness).

use axum::{Router, http::StatusCode, routing::get};
use std::{process::ExitCode, sync::Arc, time::Duration};

struct Settings {
    host: std::net::IpAddr,
    port: u16,
    version: String,
    error_rate: f64,
    latency: Duration,
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
    Ok(Settings { host, port, version: var("HELLO_VERSION").unwrap_or_else(|| "v1".into()), error_rate, latency })
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
        move || {
            let s = s.clone();
            async move {
                if !s.latency.is_zero() {
                    tokio::time::sleep(s.latency).await;
                }
                if s.error_rate > 0.0 && rand::random::<f64>() < s.error_rate {
                    return (StatusCode::INTERNAL_SERVER_ERROR, format!("hello {} failed (injected error)\n", s.version));
                }
                (StatusCode::OK, format!("hello from {}\n", s.version))
            }
        }
    };
    let app = Router::new().route("/", get(greet)).route("/healthz", get(|| async { "ok\n" }));
    println!("hello {} listening on {address}", settings.version);
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        eprintln!("hello: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
