//! `paved`: see the crate documentation of the `paved` library.

use clap::{Parser, Subcommand};
use paved::{DEFAULT_ENDPOINT, commands, output::Format, up};
use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

#[derive(Parser)]
#[command(name = "paved", version, about = "Deployment-driven development: one paved road to production")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the platform: all five services in this process.
    Up {
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
    },
    /// Show the services and workloads of a running platform.
    Status {
        #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Format,
    },
    /// Print <dir>/paved.yaml resolved for an environment (with its overlay).
    Render {
        /// A directory with a paved.yaml, or the spec file itself.
        dir: PathBuf,
        #[arg(long)]
        env: String,
    },
    /// Deploy <dir>/paved.yaml to an environment and follow it until healthy.
    Deploy {
        /// A directory with a paved.yaml, or the spec file itself.
        dir: PathBuf,
        #[arg(long)]
        env: String,
        #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
        /// Return once the revision is created instead of waiting for it.
        #[arg(long)]
        detach: bool,
        #[arg(long, short, value_enum, default_value_t)]
        output: Format,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("paved: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("paved: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Up { data_dir, listen, no_example, self_hosted, postgres_url, redis_url, database_prefix } => {
            let self_hosted = self_hosted.then_some(up::SelfHosted { postgres_url, redis_url, database_prefix });
            up_command(up::UpOptions { data_dir, listen, example: !no_example, self_hosted, bin_dirs: Vec::new() }).await
        }
        Command::Render { dir, env } => {
            print!("{}", commands::render(&dir, &env)?.0.text);
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { endpoint, output } => {
            let status = commands::status(commands::connect(&endpoint).await?).await?;
            commands::print_status(&status, output)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Deploy { dir, env, endpoint, detach, output } => {
            let channel = commands::connect(&endpoint).await?;
            let json = output == Format::Json;
            let revision = commands::deploy(channel, &dir, &env, !detach, |line| {
                if !json {
                    eprintln!("{line}");
                }
            })
            .await?;
            let state = paved_proto::provisioner::v1::RevisionState::try_from(revision.state).unwrap_or_default().short_name();
            if json {
                println!("{}", serde_json::json!({ "revision_id": revision.id, "revision": revision.number, "state": state }));
            } else {
                println!("revision {} of {} is {state}", revision.number, revision.workload);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn up_command(options: up::UpOptions) -> anyhow::Result<ExitCode> {
    let _telemetry = paved_telemetry::init("paved", paved_telemetry::LogFormat::Pretty)?;
    let started = std::time::Instant::now();
    let mode = if options.self_hosted.is_some() { "self-hosted" } else { "embedded" };
    eprintln!("paved: starting ({mode} mode, data in {})", options.data_dir.display());
    let platform = up::Platform::start(&options).await?;
    let shutdown = platform.shutdown_token();
    tokio::spawn(paved_service::cancel_on_signal(shutdown.clone()));
    let timeout = if options.self_hosted.is_some() { Duration::from_secs(120) } else { Duration::from_secs(60) };
    let ready = tokio::select! {
        r = platform.wait_ready(timeout, |pending| eprintln!("paved: waiting for {}", pending.join(", "))) => r,
        _ = shutdown.cancelled() => Ok(Vec::new()),
    };
    match ready {
        Ok(failed) => {
            for line in failed {
                eprintln!("paved: workload {line}");
            }
        }
        Err(e) => {
            eprintln!("paved: {e:#}");
            eprintln!("paved: the platform keeps running; see `paved status`");
        }
    }
    let status = commands::status(commands::connect(&platform.addr.to_string()).await?).await?;
    println!("\nPaved is up in {:.1}s ({mode} mode, data in {}).", started.elapsed().as_secs_f64(), options.data_dir.display());
    println!("  gRPC endpoint  {}   every service, grpc.health.v1 and reflection", platform.addr);
    println!("  metrics        http://{}/metrics\n", platform.addr);
    commands::print_status(&status, Format::Table)?;
    println!("\nTry:");
    println!("  paved status --endpoint {}", platform.addr);
    if let Some(hello) = status.workloads.iter().find(|w| w.name == "hello") {
        println!("  curl http://{}/", hello.endpoint);
    }
    println!("  paved deploy examples/hello --env dev --endpoint {}", platform.addr);
    println!("Press Ctrl-C to stop: requests drain and every workload is stopped.");
    shutdown.cancelled().await;
    platform.stop().await?;
    eprintln!("paved: stopped");
    Ok(ExitCode::SUCCESS)
}
