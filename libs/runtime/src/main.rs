//! `paved-runtime --socket <path> [--grace <duration>] [--run-dir <dir>]
//! [--take-over]`: serves a host's workload proxies to the control plane
//! over a Unix socket that only the same user may use (checked by the
//! peer's credentials, and the socket file is 0600).

use clap::Parser;
use paved_runtime::{Host, pb::runtime_service_server::RuntimeServiceServer};
use std::{os::unix::fs::PermissionsExt, path::PathBuf, time::Duration};
use tokio_stream::StreamExt;

#[derive(Parser)]
#[command(version, about = "The local data plane: a host's workload proxies, apart from the provisioner")]
struct Args {
    /// The Unix socket the control plane drives the host through.
    #[arg(long)]
    socket: PathBuf,
    /// How long to keep serving with no control plane attached, then stop
    /// the workloads and exit (e.g. `10s`); without it, serve until told.
    #[arg(long, value_parser = parse_duration)]
    grace: Option<Duration>,
    /// Where the local runtime records the workload processes it runs:
    /// stopped with the host.
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Take the proxies of the host serving `--socket` (another build of
    /// this one) over, with their listening sockets, and the socket too;
    /// it drains and exits. With no host there, start empty.
    #[arg(long)]
    take_over: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = number.parse().map_err(|_| format!("{s:?} is not a duration like 10s or 500ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{s:?} is not a duration like 10s or 500ms")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = paved_telemetry::init("paved-runtime", paved_telemetry::LogFormat::Pretty)?;
    let host = Host::new(args.run_dir, Some(args.socket.clone()));
    let taken = if args.take_over {
        paved_runtime::handover::take_over(&host, &args.socket).await?
    } else if paved_runtime::client::connect(&args.socket).await.is_ok() {
        // Another host answering there keeps it; a socket file nobody
        // answers on is what a killed host left.
        anyhow::bail!("a host already serves {}", args.socket.display());
    } else {
        None
    };
    // Bound beside it and renamed over it: a host that hands over keeps
    // answering on the path until its successor does.
    let binding = args.socket.with_extension(format!("{}.new", std::process::id()));
    let bound = async {
        let listener = tokio::net::UnixListener::bind(&binding)?;
        std::fs::set_permissions(&binding, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&binding, &args.socket)?;
        anyhow::Ok(listener)
    };
    let listener = bound.await.inspect_err(|_| {
        let _ = std::fs::remove_file(&binding);
    })?;
    let me = rustix::process::getuid().as_raw();
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener).filter(move |stream| match stream {
        Ok(stream) => {
            let same = stream.peer_cred().is_ok_and(|c| c.uid() == me);
            if !same {
                tracing::warn!(peer = ?stream.peer_cred().ok(), "refused a connection from another user");
            }
            same
        }
        Err(_) => true,
    });

    let stopping = host.stopping();
    let server = tonic::transport::Server::builder()
        .add_service(RuntimeServiceServer::new(host.clone()))
        .serve_with_incoming_shutdown(incoming, stopping.clone().cancelled_owned());
    let server = tokio::spawn(server);
    tracing::info!(socket = %args.socket.display(), grace = ?args.grace, "serving");
    if let Some(taken) = taken {
        // This host serves the proxies and the socket now, whatever the
        // previous one makes of the answer.
        match taken.serving().await {
            Ok(proxies) => tracing::info!(proxies, "took the proxies over from the previous host"),
            Err(e) => tracing::error!(error = %e, "took the proxies over; the previous host did not confirm it let go"),
        }
    }
    let released = host.released();
    let mut handed_over = false;
    let orphaned = async {
        match args.grace {
            Some(grace) => host.orphaned(grace).await,
            None => std::future::pending().await,
        }
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = stopping.cancelled() => {}
        // A new host serves the proxies and the socket: the workloads are
        // its to stop.
        _ = released.cancelled() => {
            host.drain_all().await;
            handed_over = true;
        }
        _ = orphaned => {
            tracing::warn!(grace = ?args.grace, "no control plane attached for the grace period: stopping the workloads");
            host.stop_all().await;
        }
        // Stopped as a service is (SIGTERM, or Ctrl-C when run by hand):
        // everything it serves stops with it.
        _ = terminate.recv() => host.stop_all().await,
        _ = tokio::signal::ctrl_c() => host.stop_all().await,
    }
    // Answers in flight (Shutdown's own) go out before the exit.
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    if !handed_over {
        let _ = std::fs::remove_file(&args.socket);
    }
    tracing::info!(handed_over, "stopped");
    Ok(())
}
