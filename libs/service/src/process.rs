//! The process around a service: the `main` of its binary (arguments,
//! configuration, runtime, telemetry, binding) and draining on SIGTERM or
//! Ctrl-C.

use crate::{
    config::{Common, ServiceConfig, defaults, load_config},
    shape::{ConsumerService, run_consumer},
};
use std::{future::Future, net::SocketAddr, path::PathBuf, process::ExitCode};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Parser)]
struct Args {
    /// Configuration file (YAML or TOML); `PAVED_*` environment variables override it.
    #[arg(long, short, env = "PAVED_CONFIG")]
    config: Option<PathBuf>,
}

/// The whole `main` of a standalone service binary.
pub fn main<C, F, Fut>(service: &'static str, port: u16, run: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, TcpListener, CancellationToken) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let args = <Args as clap::Parser>::parse();
    let config: C = match load_config(service, &defaults(service, port), args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paved-{service}: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("paved-{service}: start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let format = config.common().log_format.parse().unwrap_or_default();
        let _telemetry = match paved_telemetry::init(&format!("paved-{service}"), format) {
            Ok(g) => g,
            Err(e) => {
                eprintln!("paved-{service}: telemetry: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let addr = listen_addr(config.common());
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot bind");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(service, %addr, "listening");
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        match run(config, listener, shutdown).await {
            Ok(()) => {
                tracing::info!(service, "stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!(service, error = format!("{e:#}"), "failed");
                ExitCode::FAILURE
            }
        }
    })
}

/// The whole `main` of a consumer service's binary.
pub fn main_consumer<S: ConsumerService>() -> ExitCode {
    main(S::NAME, S::PORT, run_consumer::<S>)
}

/// The configured address, unless `PORT` is set: a process started by the
/// local runtime (the platform deploying itself) listens where it is told.
fn listen_addr(common: &Common) -> SocketAddr {
    match std::env::var("PORT").ok().and_then(|p| p.parse::<u16>().ok()) {
        Some(port) => SocketAddr::new(common.listen.ip(), port),
        None => common.listen,
    }
}

/// Cancels `token` on SIGTERM or Ctrl-C.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: draining requests and stopping workloads");
    token.cancel();
}
