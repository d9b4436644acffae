//! `paved`: see the crate documentation of the `paved` library. This file
//! is the list of commands and the dispatch to each one's module, where its
//! flags and its `run` live.

use clap::{CommandFactory, Parser, Subcommand};
use paved::{
    artifacts, audit, ca, canary, cost, db, delete, deploy, init, leases, login, plan, policy, power, preview, render, rollback, rollouts,
    secrets, shell, status, tokens, traffic, up,
};
use std::process::ExitCode;

// mimalloc: glibc's malloc and free took about a tenth of the platform's
// CPU under load; issuing tokens went 6-7% faster with it (`cargo xtask
// bench broker`, A/B in one session).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "paved", version, about = "Deployment-driven development: one paved road to production")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// The doc comment of each variant is its line in `paved --help`; the
// arguments' own documentation is beside them, in the command's module.
#[derive(Subcommand)]
enum Command {
    /// Start the platform: all five services in this process.
    Up(up::UpArgs),
    /// Scaffold a new workload (spec, overlays, a hello-world program) that
    /// `paved deploy` takes live as it is.
    Init(init::InitArgs),
    /// Content-addressed artifacts and their signed attestations.
    Artifact(artifacts::ArtifactArgs),
    /// Store a token for the CLI (the root token `paved up` printed, or one
    /// from `paved token issue`). Reads it from stdin unless given.
    Login(login::LoginArgs),
    /// KV secrets: versioned, encrypted, generated and rotated, watched.
    Secrets(secrets::SecretsArgs),
    /// Dynamic PostgreSQL credentials: a login of its own per lease.
    Db(db::DbArgs),
    /// Leases on what the broker handed out: list, renew, revoke.
    Lease(leases::LeaseArgs),
    /// The internal CA: its trust bundle, its rotation, SPIFFE certificates for mTLS.
    Ca(ca::CaArgs),
    /// Access tokens: issue, list, revoke; rotate the signing key.
    Token(tokens::TokenArgs),
    /// Show the services and workloads of a running platform.
    Status(status::StatusArgs),
    /// Print <dir>/paved.yaml (or score.yaml) resolved for an environment
    /// (with its overlay), or as Kubernetes manifests.
    Render(render::RenderArgs),
    /// Deploy <dir>/paved.yaml to an environment and follow its rollout:
    /// exits 0 when promoted, 1 when rolled back.
    Deploy(deploy::DeployArgs),
    /// Show what `paved deploy` would change: exit 0 nothing, 2 changes or
    /// drift, 1 an error.
    Plan(plan::PlanArgs),
    /// Preview environments pr-<n>: open, close, list.
    Preview(preview::PreviewArgs),
    /// Policy bundles (Rego).
    Policy(policy::PolicyArgs),
    /// Inspect and steer rollouts.
    Rollout(rollouts::RolloutArgs),
    /// The canary analyzer's judgements of a rollout.
    Canary(canary::CanaryArgs),
    /// The audit log: its verifier key, its checkpoints.
    Audit(audit::AuditArgs),
    /// Return all of a workload's traffic to its last known-good revision.
    Rollback(rollback::RollbackArgs),
    /// Delete a workload: its rollouts end, its processes stop, its proxy
    /// closes and its records go.
    Delete(delete::DeleteArgs),
    /// Requests per revision through a workload's proxy.
    Traffic(traffic::TrafficArgs),
    /// Put a workload to sleep: its processes stop, its proxy wakes it on a request.
    Sleep(power::PowerArgs),
    /// Wake a sleeping workload (and keep it up `--for` a while).
    Wake(power::PowerArgs),
    /// What workloads cost: by team, environment or workload.
    Cost(cost::CostArgs),
    /// Print a shell completion script, e.g. `paved completions bash > /etc/bash_completion.d/paved`.
    Completions(shell::CompletionsArgs),
    /// Write man pages: paved.1 and one per command.
    Man(shell::ManArgs),
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
            // Not eprintln!: a stderr that is gone must not turn a failure
            // into a panic.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "paved: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // With OTEL_EXPORTER_OTLP_ENDPOINT set, a command's calls are traced and
    // its trace continues in every service they reach (`paved up` sets up
    // its own telemetry). Flushed when dropped, after the command.
    let _traces = match &cli.command {
        Command::Up(_) => None,
        _ => Some(paved_telemetry::init_traces("paved-cli")?),
    };
    match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Init(args) => init::run(args),
        Command::Artifact(args) => artifacts::run(args).await,
        Command::Login(args) => login::run(args).await,
        Command::Secrets(args) => secrets::run(args).await,
        Command::Db(args) => db::run(args).await,
        Command::Lease(args) => leases::run(args).await,
        Command::Ca(args) => ca::run(args).await,
        Command::Token(args) => tokens::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Render(args) => render::run(args).await,
        Command::Deploy(args) => deploy::run(args).await,
        Command::Plan(args) => plan::run(args).await,
        Command::Preview(args) => preview::run(args).await,
        Command::Policy(args) => policy::run(args),
        Command::Rollout(args) => rollouts::run(args).await,
        Command::Canary(args) => canary::run(args).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Rollback(args) => rollback::run(args).await,
        Command::Delete(args) => delete::run(args).await,
        Command::Traffic(args) => traffic::run(args).await,
        Command::Sleep(args) => power::sleep(args).await,
        Command::Wake(args) => power::wake(args).await,
        Command::Cost(args) => cost::run(args).await,
        Command::Completions(args) => shell::completions(args, Cli::command()),
        Command::Man(args) => shell::man(args, Cli::command()),
    }
}
