//! `paved up` as a command: its flags, then the platform in a terminal —
//! started, waited for, shown (endpoint, root token, status) and stopped on
//! Ctrl-C or SIGTERM.

use super::platform::{CostOptions, DATA_PLANE_GRACE_SECONDS, Platform, SelfHosted, UpOptions};
use crate::{DEFAULT_ENDPOINT, client::connect_with, credentials, output::Format, status};
use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

#[derive(clap::Args)]
pub struct UpArgs {
    /// Where state is kept (SQLite files, workload logs).
    #[arg(long, default_value = ".paved", env = "PAVED_DATA_DIR")]
    data_dir: PathBuf,
    /// The one gRPC address for every service (also /healthz and /metrics).
    #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_LISTEN")]
    listen: SocketAddr,
    /// Do not deploy examples/hello on first start.
    #[arg(long)]
    no_example: bool,
    /// Run the provisioner on PostgreSQL + Redis and let it deploy the
    /// other four services from deploy/platform/.
    #[arg(long)]
    self_hosted: bool,
    /// PostgreSQL server for --self-hosted (no database name: each service gets its own).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432", env = "PAVED_POSTGRES_URL")]
    postgres_url: String,
    /// Redis for --self-hosted.
    #[arg(long, default_value = "redis://127.0.0.1:6379", env = "PAVED_REDIS_URL")]
    redis_url: String,
    /// Prefix of the services' PostgreSQL database names for --self-hosted.
    #[arg(long, default_value = "paved_", env = "PAVED_DATABASE_PREFIX")]
    database_prefix: String,
    /// A trusted attestation signer: NAME=<hex Ed25519 public key> (repeatable).
    // This text is `--help`'s, printed as it is: not HTML.
    #[allow(rustdoc::invalid_html_tags)]
    #[arg(long = "trusted-key", value_parser = parse_trusted_key)]
    trusted_keys: Vec<(String, String)>,
    /// Prometheus for analysis metrics of kind `prometheus` and for
    /// right-sizing from its series, e.g. http://127.0.0.1:9090.
    #[arg(long, env = "PAVED_PROMETHEUS_URL")]
    prometheus_url: Option<String>,
    /// The cost scheduler's price sheet (YAML, see docs/cost.md); without
    /// one, OpenCost's default prices.
    #[arg(long, env = "PAVED_PRICE_SHEET")]
    price_sheet: Option<PathBuf>,
    /// Default schedules by environment, for workloads whose spec has no
    /// `schedule` (YAML, see docs/cost.md), e.g. so dev and previews sleep.
    #[arg(long, env = "PAVED_SCHEDULE_DEFAULTS")]
    schedule_defaults: Option<PathBuf>,
    /// How often the cost scheduler reads each replica's usage.
    #[arg(long, env = "PAVED_SAMPLE_SECONDS", hide = true)]
    sample_seconds: Option<u64>,
    /// Seconds the workloads and their proxies serve on after this platform
    /// vanished (killed, say): a `paved up` started again within them adopts
    /// everything without an outage; after them, the workloads stop.
    #[arg(long, default_value_t = DATA_PLANE_GRACE_SECONDS, env = "PAVED_DATA_PLANE_GRACE_SECONDS")]
    data_plane_grace: u64,
}

impl From<UpArgs> for UpOptions {
    fn from(args: UpArgs) -> Self {
        let UpArgs {
            data_dir,
            listen,
            no_example,
            self_hosted,
            postgres_url,
            redis_url,
            database_prefix,
            trusted_keys,
            prometheus_url,
            price_sheet,
            schedule_defaults,
            sample_seconds,
            data_plane_grace,
        } = args;
        let self_hosted = self_hosted.then_some(SelfHosted { postgres_url, redis_url, database_prefix });
        let trusted_keys = trusted_keys.into_iter().collect();
        // Absolute: the self-hosted cost scheduler runs in another directory.
        let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        let cost =
            CostOptions { price_sheet: price_sheet.map(absolute), schedule_defaults: schedule_defaults.map(absolute), sample_seconds };
        UpOptions {
            data_dir,
            listen,
            example: !no_example,
            self_hosted,
            bin_dirs: Vec::new(),
            trusted_keys,
            prometheus_url,
            cost,
            data_plane_grace_seconds: data_plane_grace,
        }
    }
}

fn parse_trusted_key(s: &str) -> Result<(String, String), String> {
    let (name, key) = s.split_once('=').ok_or_else(|| format!("expected NAME=<hex public key>, got {s:?}"))?;
    let bytes = hex::decode(key.trim()).map_err(|e| format!("{name}: the key is not hex: {e}"))?;
    if bytes.len() != 32 {
        return Err(format!("{name}: an Ed25519 public key is 32 bytes, got {}", bytes.len()));
    }
    Ok((name.to_string(), key.trim().to_lowercase()))
}

/// What `paved up` tells its user. The terminal may be gone (closed, or a
/// `| tee` that died with the Ctrl-C): a failed write is dropped, never a
/// panic, which would skip the shutdown and leave the workloads running.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// [`say!`] on stderr.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let options = UpOptions::from(args);
    let _telemetry = paved_telemetry::init("paved", paved_telemetry::LogFormat::Pretty)?;
    let started = std::time::Instant::now();
    let mode = if options.self_hosted.is_some() { "self-hosted" } else { "embedded" };
    note!("paved: starting ({mode} mode, data in {})", options.data_dir.display());
    // A closed terminal ends it as Ctrl-C does, not by SIGHUP's default
    // death, which would leave the workloads to the data plane's grace.
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let platform = Platform::start(&options).await?;
    let shutdown = platform.shutdown_token();
    tokio::spawn(paved_service::cancel_on_signal(shutdown.clone()));
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            hangup.recv().await;
            shutdown.cancel();
        }
    });
    let timeout = if options.self_hosted.is_some() { Duration::from_secs(120) } else { Duration::from_secs(60) };
    let ready = tokio::select! {
        r = platform.wait_ready(timeout, |pending| note!("paved: waiting for {}", pending.join(", "))) => r,
        _ = shutdown.cancelled() => Ok(Vec::new()),
    };
    match ready {
        Ok(failed) => {
            for line in failed {
                note!("paved: workload {line}");
            }
        }
        Err(e) => {
            note!("paved: {e:#}");
            note!("paved: the platform keeps running; see `paved status`");
        }
    }
    // Whatever fails in the greeting, the platform runs: it stops only as
    // asked, at once also while it greets.
    tokio::select! {
        greeted = greet(&platform, mode, &options, started) => {
            if let Err(e) = greeted {
                note!("paved: {e:#}");
            }
        }
        _ = shutdown.cancelled() => {}
    }
    shutdown.cancelled().await;
    platform.stop().await?;
    note!("paved: stopped");
    Ok(ExitCode::SUCCESS)
}

/// What a user sees once the platform is up: where it serves, the root
/// token, the workloads, what to try.
async fn greet(platform: &Platform, mode: &str, options: &UpOptions, started: std::time::Instant) -> anyhow::Result<()> {
    let endpoint = platform.addr.to_string();
    // Like a development server: the CLI on this machine is logged in.
    let stored = credentials::store(&endpoint, &platform.root_token);
    say!("\nPaved is up in {:.1}s ({mode} mode, data in {}).", started.elapsed().as_secs_f64(), options.data_dir.display());
    say!("  gRPC endpoint  {}   every service, grpc.health.v1 and reflection", platform.addr);
    say!("  metrics        http://{}/metrics", platform.addr);
    say!("\nRoot token (shown once; valid 24 h, every scope):\n\n  {}\n", platform.root_token);
    match stored {
        Ok(path) => say!("The CLI here is logged in with it ({}); elsewhere: paved login --endpoint {endpoint}\n", path.display()),
        Err(e) => say!("Could not store it for the CLI ({e:#}); run: paved login --endpoint {endpoint}\n"),
    }
    // The token and the login come first: without the status, they still
    // let the user ask for it.
    let status = status::status(connect_with(&endpoint, &platform.root_token).await?).await?;
    say!("{}", status::status_text(&status, Format::Table)?.trim_end());
    say!("\nTry:");
    say!("  paved status --endpoint {}", platform.addr);
    if let Some(hello) = status.workloads.iter().find(|w| w.name == "hello") {
        say!("  curl http://{}/", hello.endpoint);
    }
    say!("  paved deploy examples/hello --env dev --endpoint {}", platform.addr);
    say!("Press Ctrl-C to stop: requests drain and every workload is stopped.");
    Ok(())
}
