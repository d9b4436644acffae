//! `paved`: see the crate documentation of the `paved` library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use paved::{DEFAULT_ENDPOINT, artifacts, canary, commands, output::Format, rollouts, up};
use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

// mimalloc: glibc's malloc and free took about a tenth of the platform's
// CPU under load; issuing tokens went 6-7% faster with it (`cargo xtask
// bench broker`, A/B in one session).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What `paved render` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
enum RenderTarget {
    /// The resolved spec (the local runtime's input).
    #[default]
    Paved,
    /// Kubernetes manifests.
    Kubernetes,
}

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
        /// A trusted attestation signer: NAME=<hex Ed25519 public key> (repeatable).
        #[arg(long = "trusted-key", value_parser = parse_trusted_key)]
        trusted_keys: Vec<(String, String)>,
        /// Prometheus for analysis metrics of kind `prometheus`, e.g. http://127.0.0.1:9090.
        #[arg(long, env = "PAVED_PROMETHEUS_URL")]
        prometheus_url: Option<String>,
    },
    /// Content-addressed artifacts and their signed attestations.
    Artifact {
        #[command(subcommand)]
        command: ArtifactCommand,
        #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
    },
    /// Store a token for the CLI (the root token `paved up` printed, or one
    /// from `paved token issue`). Reads it from stdin unless given.
    Login {
        /// The token; omit to read it from stdin (keeps it out of shell history).
        #[arg(long)]
        token: Option<String>,
        #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
    },
    /// KV secrets: versioned, encrypted, generated and rotated, watched.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
        #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
    },
    /// Dynamic PostgreSQL credentials: a login of its own per lease.
    Db {
        #[command(subcommand)]
        command: DbCommand,
        #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
    },
    /// Leases on what the broker handed out: list, renew, revoke.
    Lease {
        #[command(subcommand)]
        command: LeaseCommand,
        #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
    },
    /// The internal CA: its trust bundle, its rotation, SPIFFE certificates for mTLS.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
        #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
    },
    /// Access tokens: issue, list, revoke; rotate the signing key.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
    },
    /// Show the services and workloads of a running platform.
    Status {
        #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Format,
    },
    /// Print <dir>/paved.yaml (or score.yaml) resolved for an environment
    /// (with its overlay), or as Kubernetes manifests.
    Render {
        /// A directory with a paved.yaml or score.yaml, or the spec file itself.
        dir: PathBuf,
        #[arg(long)]
        env: String,
        #[arg(long, value_enum, default_value_t)]
        target: RenderTarget,
        /// Kubernetes: render the spec as a canary taking this percentage of
        /// traffic (its own Deployment and Service, and a weighted HTTPRoute).
        #[arg(long, value_name = "PERCENT")]
        canary_weight: Option<u32>,
        /// Kubernetes: the image repository prefix (`<registry>/<workload>@sha256:…`).
        #[arg(long, default_value = "registry.paved.local")]
        registry: String,
        /// Kubernetes: the Gateway API gateway a canary's HTTPRoute attaches to.
        #[arg(long, default_value = "paved")]
        gateway: String,
        /// Kubernetes: apply the manifests with server-side apply to the
        /// cluster of the kubeconfig ($KUBECONFIG, else ~/.kube/config).
        #[arg(long)]
        apply: bool,
        #[arg(long, env = "KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
    },
    /// Deploy <dir>/paved.yaml to an environment and follow its rollout:
    /// exits 0 when promoted, 1 when rolled back.
    Deploy {
        /// A directory with a paved.yaml, or the spec file itself.
        dir: PathBuf,
        #[arg(long)]
        env: String,
        #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
        /// Return at once with the rollout's id instead of following it.
        #[arg(long)]
        detach: bool,
        #[arg(long, short, value_enum, default_value_t)]
        output: Format,
    },
    /// Show what `paved deploy` would change: exit 0 nothing, 2 changes or
    /// drift, 1 an error.
    Plan {
        /// A directory with a paved.yaml, or the spec file itself.
        dir: PathBuf,
        #[arg(long)]
        env: String,
        #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: Format,
    },
    /// Preview environments pr-<n>: open, close, list.
    Preview {
        #[command(subcommand)]
        command: PreviewCommand,
        #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
    },
    /// Policy bundles (Rego).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Inspect and steer rollouts.
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
        #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
    },
    /// The canary analyzer's judgements of a rollout.
    Canary {
        #[command(subcommand)]
        command: CanaryCommand,
        #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
    },
    /// Return all of a workload's traffic to its last known-good revision.
    Rollback {
        workload: String,
        #[arg(long)]
        env: String,
        #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
    },
    /// Requests per revision through a workload's proxy.
    Traffic {
        workload: String,
        #[arg(long)]
        env: String,
        #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
        endpoint: String,
    },
}

#[derive(Subcommand)]
enum ArtifactCommand {
    /// Stream a file to the store; prints its sha256 digest.
    Push { path: PathBuf },
    /// An artifact's size and attestations.
    Get { digest: String },
    /// Write a new Ed25519 private key to FILE; prints the public key.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a JSON payload as an attestation of DIGEST and attach it.
    Sign {
        digest: String,
        /// sbom, vulnerabilities ({"findings": [{"id", "cvss"}]}) or coverage ({"ratio"}).
        #[arg(long)]
        kind: String,
        #[arg(long)]
        payload: PathBuf,
        /// The private key file (from `paved artifact keygen`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Verify DIGEST's attestations against public keys: exit 0 when all verify.
    Verify {
        digest: String,
        /// A public key (hex) or a file holding it (repeatable).
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
    },
}

fn parse_trusted_key(s: &str) -> Result<(String, String), String> {
    let (name, key) = s.split_once('=').ok_or_else(|| format!("expected NAME=<hex public key>, got {s:?}"))?;
    let bytes = hex::decode(key.trim()).map_err(|e| format!("{name}: the key is not hex: {e}"))?;
    if bytes.len() != 32 {
        return Err(format!("{name}: an Ed25519 public key is 32 bytes, got {}", bytes.len()));
    }
    Ok((name.to_string(), key.trim().to_lowercase()))
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Write a new version: the value from stdin (or --value), or --generate N random bytes.
    Put {
        path: String,
        /// The value (prefer stdin: it stays out of shell history).
        #[arg(long, conflicts_with = "generate")]
        value: Option<String>,
        /// A random value of N bytes that the broker rotates.
        #[arg(long)]
        generate: Option<u32>,
        /// How often a generated value is rotated (default 24h).
        #[arg(long, value_parser = commands::parse_ttl)]
        rotate_every: Option<Duration>,
    },
    /// Print a value (the latest, or --version N).
    Get {
        path: String,
        #[arg(long, default_value_t = 0)]
        version: u32,
    },
    /// Secrets under a prefix, latest versions: never values.
    List {
        #[arg(default_value = "")]
        prefix: String,
    },
    /// Print the value, then each new version as it is written or rotated.
    Watch { path: String },
    /// Re-seal every key under the current root key (after a root key rotation).
    Rewrap,
    /// The policy compiled from a workload's spec, with the uses of each
    /// grant; without a workload, every workload's (--unused: only those
    /// holding grants never used).
    Policy {
        workload: Option<String>,
        /// The workload's environment (needed with a workload).
        #[arg(long)]
        env: Option<String>,
        #[arg(long, conflicts_with = "workload")]
        unused: bool,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Print the trust bundle (PEM; the CAs on stderr): what peers and
    /// `PAVED_CA_BUNDLE` trust.
    Bundle,
    /// Start a new CA: it signs after a short publication; the one before
    /// stays trusted until the last certificate it signed expires.
    Rotate,
    /// A key made here and its certificate: <dir>/key.pem, cert.pem, bundle.pem.
    Issue {
        /// spiffe://paved/<env>/<workload>; the token's own subject when
        /// omitted (either needs certs:issue:<env>/<workload>).
        #[arg(long, default_value = "")]
        spiffe_id: String,
        /// Default 1h, at most 24h.
        #[arg(long, value_parser = commands::parse_ttl)]
        ttl: Option<Duration>,
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Renew the certificate in <dir> (as `issue` wrote it) with itself,
    /// over mTLS to an https:// endpoint: no token. A new key and
    /// certificate replace the old ones.
    Renew {
        /// At most (and by default) 1h; never past what its enrolment allows.
        #[arg(long, value_parser = commands::parse_ttl)]
        ttl: Option<Duration>,
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Register a PostgreSQL database: the admin connection URL from stdin
    /// (or --url) and a pre-created NOLOGIN group role holding the grants.
    Configure {
        name: String,
        #[arg(long)]
        group_role: String,
        /// The admin connection URL (prefer stdin: it holds a password).
        #[arg(long)]
        url: Option<String>,
        /// A lease's default length (default 1h).
        #[arg(long, value_parser = commands::parse_ttl)]
        default_ttl: Option<Duration>,
        /// The longest a lease may be renewed to (default 24h).
        #[arg(long, value_parser = commands::parse_ttl)]
        max_ttl: Option<Duration>,
    },
    /// Databases configured (never their credentials).
    List,
    /// A login of your own under a lease; prints it once.
    Creds {
        name: String,
        #[arg(long, value_parser = commands::parse_ttl)]
        ttl: Option<Duration>,
    },
}

#[derive(Subcommand)]
enum LeaseCommand {
    /// Leases under a prefix (e.g. database/shop/), newest first.
    List {
        #[arg(default_value = "")]
        prefix: String,
    },
    /// Extend a lease (never past its maximum).
    Renew {
        lease_id: String,
        #[arg(long, value_parser = commands::parse_ttl)]
        increment: Option<Duration>,
    },
    /// Revoke a lease, or every lease under --prefix: its role is dropped.
    Revoke {
        #[arg(required_unless_present = "prefix", conflicts_with = "prefix")]
        lease_id: Option<String>,
        #[arg(long)]
        prefix: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token (within your own scopes); prints it once.
    Issue {
        /// Who it is for: a user or a SPIFFE id.
        #[arg(long)]
        subject: String,
        /// admin, viewer or deployer (with --env and optionally --workloads).
        #[arg(long)]
        role: Option<String>,
        /// An explicit scope, e.g. read:audit (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long)]
        env: Option<String>,
        /// A team's workloads as a name pattern, e.g. shop-*.
        #[arg(long)]
        workloads: Option<String>,
        /// Time to live (default 15m, at most 24h).
        #[arg(long, value_parser = commands::parse_ttl)]
        ttl: Option<Duration>,
        /// How long renewals may extend it (default 8h, at most 30d).
        #[arg(long, value_parser = commands::parse_ttl)]
        max_ttl: Option<Duration>,
        /// One service's short name instead of the whole platform.
        #[arg(long)]
        audience: Option<String>,
    },
    /// Tokens issued (never their values), newest first.
    List {
        #[arg(long)]
        subject: Option<String>,
    },
    /// Revoke a token by id, or every token of a subject.
    Revoke {
        id: Option<String>,
        #[arg(long, conflicts_with = "id")]
        subject: Option<String>,
    },
    /// Start signing with a new key (the old one verifies its tokens until they expire).
    RotateKey,
    /// Mint a root token as the holder of the root key, on the broker's
    /// database (production mode: the platform's first token).
    Root {
        #[command(flatten)]
        broker: RootKeyHolder,
    },
    /// Mint each platform service's enrolling token as the holder of the
    /// root key, on the broker's database (production mode with mTLS):
    /// `<out>/<service>/identity.token`, mode 0600, what the service's
    /// PAVED_IDENTITY_TOKEN_FILE names. Values are never printed.
    Enrol {
        #[command(flatten)]
        broker: RootKeyHolder,
        /// The directory the token files go under.
        #[arg(long)]
        out: PathBuf,
        /// How long each token may enrol its service (once; it then renews
        /// with its certificate). At most 24h.
        #[arg(long, default_value = "10m", value_parser = commands::parse_ttl)]
        ttl: Duration,
        /// The services (default: every one but the broker, its own CA).
        services: Vec<String>,
    },
}

/// The broker's database and root key, for commands run as the root key's
/// holder without the broker.
#[derive(clap::Args)]
struct RootKeyHolder {
    /// The broker's database, e.g. postgres://…/paved_secrets_broker.
    #[arg(long, env = "PAVED_BROKER_DATABASE_URL")]
    database_url: String,
    /// The event stream (the broker publishes the issue events).
    #[arg(long, default_value = "redis://127.0.0.1:6379", env = "PAVED_STREAM_URL")]
    stream_url: String,
    /// The root key file the broker uses. The key itself in PAVED_ROOT_KEY
    /// (never as an argument) wins over it, as with the broker.
    #[arg(long, env = "PAVED_ROOT_KEY_FILE")]
    root_key_file: Option<PathBuf>,
}

impl RootKeyHolder {
    async fn authority(&self) -> anyhow::Result<paved_secrets_broker::authority::Authority> {
        let value = std::env::var("PAVED_ROOT_KEY").ok();
        let root =
            paved_secrets_broker::seal::RootKey::configured(value.as_deref(), self.root_key_file.as_deref(), false, "PAVED_ROOT_KEY")?
                .context("the root key is needed: --root-key-file (PAVED_ROOT_KEY_FILE), or the key in PAVED_ROOT_KEY")?;
        let stream = paved_stream::open(&self.stream_url, paved_stream::DEFAULT_MAX_LEN).await?;
        paved_secrets_broker::offline_authority(&self.database_url, stream, root).await
    }
}

#[derive(Subcommand)]
enum PreviewCommand {
    /// Deploy <dir>/paved.yaml to pr-<n> and follow its rollout.
    Open {
        dir: PathBuf,
        #[arg(long)]
        pr: u32,
        /// Time to live: the preview closes itself after it (e.g. 48h, 30m, 2d).
        #[arg(long, default_value = "48h", value_parser = commands::parse_ttl)]
        ttl: Duration,
    },
    /// Destroy everything pr-<n> created.
    Close {
        #[arg(long)]
        pr: u32,
    },
    /// Open previews, their workloads and when they expire.
    List,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Run a bundle's unit tests (`test_*` rules in `*_test.rego`), as `opa test` does.
    Test {
        /// A directory of .rego files, e.g. deploy/policies.
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum CanaryCommand {
    /// Why each step of a rollout passed, failed or was extended: every
    /// judgement's checks, statistics, bounds and effect sizes.
    Explain { rollout: String },
    /// Judge a rollout's recorded looks again; exits 1 when a look fails.
    Replay {
        rollout: String,
        /// A workload spec whose `analysis` replaces the recorded one.
        #[arg(long)]
        spec: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum RolloutCommand {
    /// A rollout's state and transitions.
    Get { id: String },
    /// Follow a rollout until it ends; exits 0 when promoted.
    Watch { id: String },
    /// A workload's rollouts, newest first.
    List {
        workload: String,
        #[arg(long)]
        env: String,
    },
    /// Hold the current traffic step.
    Pause { id: String },
    /// Continue a paused rollout.
    Resume { id: String },
    /// Stop the rollout; all traffic back to the stable revision.
    Abort { id: String },
    /// Skip the remaining steps: the new revision takes all traffic now.
    Promote { id: String },
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
        Command::Up {
            data_dir,
            listen,
            no_example,
            self_hosted,
            postgres_url,
            redis_url,
            database_prefix,
            trusted_keys,
            prometheus_url,
        } => {
            let self_hosted = self_hosted.then_some(up::SelfHosted { postgres_url, redis_url, database_prefix });
            let trusted_keys = trusted_keys.into_iter().collect();
            let options =
                up::UpOptions { data_dir, listen, example: !no_example, self_hosted, bin_dirs: Vec::new(), trusted_keys, prometheus_url };
            up_command(options).await
        }
        Command::Artifact { command, endpoint } => artifact_command(command, &endpoint).await,
        Command::Login { token, endpoint } => {
            let token = match token {
                Some(t) => t,
                None => {
                    eprintln!("paved: paste the token and press Enter");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line
                }
            };
            let claims = paved::tokens::check(&endpoint, &token).await?;
            let path = paved::credentials::store(&endpoint, token.trim())?;
            let expires = chrono::DateTime::from_timestamp(claims.exp, 0).map(|t| t.to_rfc3339()).unwrap_or_default();
            println!(
                "logged in to {endpoint} as {} (scopes {}; expires {expires}); stored in {}",
                claims.sub,
                claims.scp.join(" "),
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command, endpoint } => token_command(command, &endpoint).await,
        Command::Secrets { command, endpoint } => secrets_command(command, &endpoint).await,
        Command::Db { command, endpoint } => db_command(command, &endpoint).await,
        Command::Ca { command, endpoint } => ca_command(command, &endpoint).await,
        Command::Lease { command, endpoint } => lease_command(command, &endpoint).await,
        Command::Render { dir, env, target: RenderTarget::Paved, canary_weight: None, apply: false, .. } => {
            print!("{}", commands::render(&dir, &env)?.0.text);
            Ok(ExitCode::SUCCESS)
        }
        Command::Render { target: RenderTarget::Paved, .. } => {
            anyhow::bail!("--canary-weight and --apply are for --target kubernetes")
        }
        Command::Render { dir, env, target: RenderTarget::Kubernetes, canary_weight, registry, gateway, apply, kubeconfig } => {
            let spec = commands::render(&dir, &env)?.0.spec;
            let manifests = paved_k8s::manifests(&spec, &env, &paved_k8s::Target { registry, gateway, canary_weight })?;
            if !apply {
                print!("{}", paved_k8s::to_yaml(&manifests));
                return Ok(ExitCode::SUCCESS);
            }
            let kubeconfig = kubeconfig
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".kube/config")))
                .filter(|p| p.is_file())
                .context("no kubeconfig: set KUBECONFIG or --kubeconfig, or create ~/.kube/config")?;
            for a in paved_k8s::apply(&kubeconfig, &manifests).await? {
                println!("{}/{} applied (resourceVersion {})", a.kind, a.name, a.resource_version);
            }
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
            let deployed = commands::deploy(channel, &dir, &env, !detach, |line| {
                if !json {
                    eprintln!("{line}");
                }
            })
            .await?;
            let revision = &deployed.revision;
            let (rollout_id, state) = match &deployed.rollout {
                Some(r) => (r.id.clone(), rollouts::state(r).short_name()),
                None => (String::new(), "unchanged"),
            };
            if json {
                let out = serde_json::json!({ "revision_id": revision.id, "revision": revision.number, "rollout_id": rollout_id, "state": state });
                println!("{out}");
            } else if detach && deployed.changed {
                println!("{rollout_id}");
            } else {
                println!("revision {} of {}: {state}", revision.number, revision.workload);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { dir, env, endpoint, output } => {
            let (name, plan) = commands::plan(commands::connect(&endpoint).await?, &dir, &env).await?;
            match output {
                Format::Json => {
                    let action = paved_proto::provisioner::v1::PlanAction::try_from(plan.action).unwrap_or_default();
                    let changes: Vec<_> =
                        plan.changes.iter().map(|c| serde_json::json!({"path": c.path, "before": c.before, "after": c.after})).collect();
                    let out = serde_json::json!({
                        "workload": name, "environment": env, "action": action.as_str_name().trim_start_matches("PLAN_ACTION_").to_lowercase(),
                        "current_revision": plan.current_revision, "changes": changes, "drift": plan.drift, "reason": plan.reason,
                    });
                    println!("{out}");
                }
                Format::Table => print!("{}", commands::describe_plan(&name, &env, &plan)),
            }
            Ok(ExitCode::from(commands::plan_exit_code(&plan)))
        }
        Command::Preview { command, endpoint } => preview_command(command, &endpoint).await,
        Command::Policy { command: PolicyCommand::Test { dir } } => {
            let (report, passed) = commands::policy_test(&dir)?;
            print!("{report}");
            Ok(if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Rollout { command, endpoint } => {
            let channel = commands::connect(&endpoint).await?;
            match command {
                RolloutCommand::Get { id } => print!("{}", rollouts::describe(&rollouts::get(channel, &id).await?)),
                RolloutCommand::Watch { id } => {
                    let ended = rollouts::follow(channel, &id, |line| eprintln!("{line}")).await?;
                    let state = rollouts::state(&ended).short_name();
                    println!("rollout {id}: {state}");
                    if state != "promoted" {
                        return Ok(ExitCode::FAILURE);
                    }
                }
                RolloutCommand::List { workload, env } => {
                    let rows: Vec<Vec<String>> = rollouts::list(channel, &workload, &env)
                        .await?
                        .iter()
                        .map(|r| {
                            vec![
                                r.id.clone(),
                                r.revision_id.clone(),
                                rollouts::state(r).short_name().to_string(),
                                format!("{}%", r.weight),
                                r.message.clone(),
                            ]
                        })
                        .collect();
                    print!("{}", paved::output::table(&["ROLLOUT", "REVISION", "STATE", "WEIGHT", "MESSAGE"], &rows));
                }
                RolloutCommand::Pause { id } => print_state(rollouts::operate(channel, &id, rollouts::Operation::Pause).await?),
                RolloutCommand::Resume { id } => print_state(rollouts::operate(channel, &id, rollouts::Operation::Resume).await?),
                RolloutCommand::Abort { id } => print_state(rollouts::operate(channel, &id, rollouts::Operation::Abort).await?),
                RolloutCommand::Promote { id } => print_state(rollouts::operate(channel, &id, rollouts::Operation::Promote).await?),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Canary { command, endpoint } => {
            let channel = commands::connect(&endpoint).await?;
            match command {
                CanaryCommand::Explain { rollout } => print!("{}", canary::explain_rollout(channel, &rollout).await?),
                CanaryCommand::Replay { rollout, spec } => {
                    let (report, failed) = canary::replay(channel, &rollout, spec.as_deref()).await?;
                    print!("{report}");
                    if failed {
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rollback { workload, env, endpoint } => {
            let started = std::time::Instant::now();
            let done = rollouts::rollback(commands::connect(&endpoint).await?, &workload, &env).await?;
            println!("{workload} in {env}: all traffic on revision {} ({} ms)", done.revision_id, started.elapsed().as_millis());
            Ok(ExitCode::SUCCESS)
        }
        Command::Traffic { workload, env, endpoint } => {
            print!("{}", rollouts::traffic(commands::connect(&endpoint).await?, &workload, &env).await?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn preview_command(command: PreviewCommand, endpoint: &str) -> anyhow::Result<ExitCode> {
    use paved_proto::provisioner::v1::{ClosePreviewRequest, ListPreviewsRequest, provisioner_service_client::ProvisionerServiceClient};
    let channel = commands::connect(endpoint).await?;
    let failed = |s: tonic::Status| anyhow::anyhow!("{}", commands::explain(&s));
    let expires = |p: &paved_proto::provisioner::v1::Preview| {
        let ms = p.expire_time.as_ref().map(paved_proto::millis_from_timestamp).unwrap_or_default();
        chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default()
    };
    match command {
        PreviewCommand::Open { dir, pr, ttl } => {
            let opened = commands::open_preview(channel.clone(), &dir, pr, ttl).await?;
            let preview = opened.preview.ok_or_else(|| anyhow::anyhow!("the server returned no preview"))?;
            eprintln!("preview {} open until {}", preview.environment, expires(&preview));
            if let Some(rollout) = opened.applied.and_then(|a| a.rollout) {
                let ended = rollouts::follow(channel, &rollout.id, |line| eprintln!("{line}")).await?;
                if rollouts::state(&ended).short_name() != "promoted" {
                    anyhow::bail!("the preview's rollout was not promoted: {}", ended.message);
                }
            }
            let status = commands::status(commands::connect(endpoint).await?).await?;
            for w in status.workloads.iter().filter(|w| w.environment == preview.environment) {
                println!("{} in {}: http://{}", w.name, w.environment, w.endpoint);
            }
        }
        PreviewCommand::Close { pr } => {
            let closed =
                ProvisionerServiceClient::new(channel).close_preview(ClosePreviewRequest { pr: pr as i32 }).await.map_err(failed)?;
            println!("closed pr-{pr}: destroyed {}", closed.into_inner().workloads.join(", "));
        }
        PreviewCommand::List => {
            let previews = ProvisionerServiceClient::new(channel).list_previews(ListPreviewsRequest {}).await.map_err(failed)?.into_inner();
            let rows: Vec<Vec<String>> =
                previews.previews.iter().map(|p| vec![p.environment.clone(), p.workloads.join(","), expires(p)]).collect();
            print!("{}", paved::output::table(&["PREVIEW", "WORKLOADS", "EXPIRES"], &rows));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn artifact_command(command: ArtifactCommand, endpoint: &str) -> anyhow::Result<ExitCode> {
    match command {
        ArtifactCommand::Keygen { out } => {
            let (private, public) = paved_attest::generate();
            write_private(&out, &private)?;
            println!("{public}");
            eprintln!("private key written to {}; trust the public key with `paved up --trusted-key NAME={public}`", out.display());
        }
        ArtifactCommand::Push { path } => {
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let pushed = artifacts::push(commands::connect(endpoint).await?, &path, move |sent, total| {
                if terminal {
                    eprint!("\rpushing {} / {} KiB", sent / 1024, total / 1024);
                }
            })
            .await?;
            if terminal {
                eprintln!();
            }
            eprintln!("{} bytes{}", pushed.size, if pushed.existed { ", already in the store" } else { "" });
            println!("{}", pushed.digest);
        }
        ArtifactCommand::Get { digest } => print!("{}", artifacts::describe(commands::connect(endpoint).await?, &digest).await?),
        ArtifactCommand::Sign { digest, kind, payload, key } => {
            let signer = artifacts::sign(commands::connect(endpoint).await?, &digest, &kind, &payload, &key).await?;
            println!("attached {kind} to {digest}, signed by {signer}");
        }
        ArtifactCommand::Verify { digest, keys } => {
            let keys = keys.iter().map(|k| artifacts::read_key(k)).collect::<anyhow::Result<Vec<_>>>()?;
            let (report, ok) = artifacts::verify(commands::connect(endpoint).await?, &digest, &keys).await?;
            print!("{report}");
            if !ok {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn secrets_command(command: SecretsCommand, endpoint: &str) -> anyhow::Result<ExitCode> {
    use paved_proto::secrets_broker::v1::PutSecretRequest;
    use std::io::Write;
    let channel = commands::connect(endpoint).await?;
    let print = |secret: &paved_proto::secrets_broker::v1::Secret| {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&secret.value);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    };
    match command {
        SecretsCommand::Put { path, value, generate, rotate_every } => {
            let value = match (value, generate) {
                (Some(v), _) => v.into_bytes(),
                (None, Some(_)) => Vec::new(),
                (None, None) => {
                    let mut v = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
                    // A value typed or piped ends with a newline that is not part of it.
                    if v.ends_with(b"\n") {
                        v.pop();
                    }
                    v
                }
            };
            let request = PutSecretRequest {
                path,
                value,
                generate_bytes: generate.unwrap_or(0),
                rotate_every: rotate_every.map(paved_proto::duration_from_std),
            };
            let written = paved::secrets::put(channel, request).await?;
            println!("{} version {}", written.path, written.version);
        }
        SecretsCommand::Get { path, version } => print(&paved::secrets::get(channel, &path, version).await?),
        SecretsCommand::List { prefix } => print!("{}", paved::secrets::table(&paved::secrets::list(channel, &prefix).await?)),
        SecretsCommand::Watch { path } => paved::secrets::watch(channel, &path, print).await?,
        SecretsCommand::Rewrap => {
            let done = paved::secrets::rewrap(channel).await?;
            println!("{} keys re-sealed under root key {}", done.rewrapped, done.root_key_id);
        }
        SecretsCommand::Policy { workload: Some(workload), env, .. } => {
            let env = env.ok_or_else(|| anyhow::anyhow!("--env is needed with a workload: paved secrets policy {workload} --env <env>"))?;
            print!("{}", paved::secrets::policy_report(&paved::secrets::policy(channel, &env, &workload).await?));
        }
        SecretsCommand::Policy { workload: None, env, unused } => {
            let policies = paved::secrets::policies(channel, env.as_deref().unwrap_or_default(), unused).await?;
            if policies.is_empty() {
                println!("{}", if unused { "every grant of every policy has been used" } else { "no policies compiled yet" });
            }
            for policy in &policies {
                println!("{}", paved::secrets::policy_report(policy));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn ca_command(command: CaCommand, endpoint: &str) -> anyhow::Result<ExitCode> {
    // Renewal presents the certificate, not a token.
    let channel = || commands::connect(endpoint);
    match command {
        CaCommand::Bundle => {
            let bundle = paved::ca::bundle(channel().await?).await?;
            eprint!("{}", paved::ca::table(&bundle.authorities));
            print!("{}", bundle.trust_bundle_pem);
        }
        CaCommand::Rotate => {
            let ca = paved::ca::rotate(channel().await?).await?;
            println!("CA {} signs from {}", ca.id, paved::secrets::time(ca.create_time.as_ref()));
        }
        CaCommand::Issue { spiffe_id, ttl, out } => {
            let issued = paved::ca::issue(channel().await?, &spiffe_id, ttl, &out).await?;
            println!(
                "{} until {} (CA {}): {}/cert.pem, key.pem, bundle.pem",
                issued.spiffe_id,
                paved::secrets::time(issued.expire_time.as_ref()),
                issued.authority_id,
                out.display()
            );
        }
        CaCommand::Renew { ttl, dir } => {
            let (spiffe_id, expire_time) = paved::ca::renew(endpoint, ttl, &dir).await?;
            println!("{spiffe_id} until {}: {}/cert.pem, key.pem, bundle.pem", paved::secrets::time(expire_time.as_ref()), dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn db_command(command: DbCommand, endpoint: &str) -> anyhow::Result<ExitCode> {
    let channel = commands::connect(endpoint).await?;
    match command {
        DbCommand::Configure { name, group_role, url, default_ttl, max_ttl } => {
            let url = match url {
                Some(url) => url,
                None => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim().to_string()
                }
            };
            let db = paved::leases::configure(channel, &name, url, &group_role, (default_ttl, max_ttl)).await?;
            println!("database {} configured: {} as members of {}", db.name, db.target, db.group_role);
        }
        DbCommand::List => print!("{}", paved::leases::databases_table(&paved::leases::databases(channel).await?)),
        DbCommand::Creds { name, ttl } => {
            let creds = paved::leases::credentials(channel, &name, ttl).await?;
            let lease = creds.lease.unwrap_or_default();
            println!("username  {}", creds.username);
            println!("password  {}", creds.password);
            println!("lease     {}", lease.lease_id);
            println!("expires   {}", paved::leases::time(lease.expire_time.as_ref()));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn lease_command(command: LeaseCommand, endpoint: &str) -> anyhow::Result<ExitCode> {
    use paved_proto::secrets_broker::v1::revoke_lease_request::Target;
    let channel = commands::connect(endpoint).await?;
    match command {
        LeaseCommand::List { prefix } => print!("{}", paved::leases::table(&paved::leases::leases(channel, &prefix).await?)),
        LeaseCommand::Renew { lease_id, increment } => {
            let lease = paved::leases::renew(channel, &lease_id, increment).await?;
            println!("{} expires {}", lease.lease_id, paved::leases::time(lease.expire_time.as_ref()));
        }
        LeaseCommand::Revoke { lease_id, prefix } => {
            let target = match (lease_id, prefix) {
                (Some(id), _) => Target::LeaseId(id),
                (None, Some(prefix)) => Target::Prefix(prefix),
                (None, None) => anyhow::bail!("name a lease or --prefix"),
            };
            let done = paved::leases::revoke(channel, target).await?;
            println!("{} lease(s) revoked", done.revoked);
            if done.failed > 0 {
                eprintln!("paved: {} revocation(s) failed; the broker retries them (see paved lease list)", done.failed);
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn token_command(command: TokenCommand, endpoint: &str) -> anyhow::Result<ExitCode> {
    use paved_proto::secrets_broker::v1::{IssueTokenRequest, revoke_token_request::Target};
    match command {
        TokenCommand::Root { broker } => {
            let authority = broker.authority().await?;
            println!("{}", authority.issue("paved token root", &paved_secrets_broker::root_grant()).await?.0);
            return Ok(ExitCode::SUCCESS);
        }
        TokenCommand::Enrol { broker, out, ttl, services } => {
            let services = paved::tokens::enrolled_services(services, ttl)?;
            paved::tokens::enrol(&broker.authority().await?, &services, ttl, &out).await?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let channel = commands::connect(endpoint).await?;
    let duration = |d: Option<Duration>| d.map(paved_proto::duration_from_std);
    match command {
        TokenCommand::Issue { subject, role, scopes, env, workloads, ttl, max_ttl, audience } => {
            let request = IssueTokenRequest {
                subject,
                scopes,
                role: role.unwrap_or_default(),
                environment: env.unwrap_or_default(),
                workloads: workloads.unwrap_or_default(),
                ttl: duration(ttl),
                max_ttl: duration(max_ttl),
                audience: audience.unwrap_or_default(),
            };
            let issued = paved::tokens::issue(channel, request).await?;
            if let Some(info) = &issued.info {
                eprintln!("paved: token {} for {} ({})", info.token_id, info.subject, info.scopes.join(" "));
            }
            println!("{}", issued.token);
        }
        TokenCommand::List { subject } => {
            print!("{}", paved::tokens::table(&paved::tokens::list(channel, &subject.unwrap_or_default()).await?))
        }
        TokenCommand::Revoke { id, subject } => {
            let target = match (id, subject) {
                (Some(id), _) => Target::TokenId(id),
                (None, Some(subject)) => Target::Subject(subject),
                (None, None) => anyhow::bail!("name a token id or --subject"),
            };
            println!("revoked {} token(s)", paved::tokens::revoke(channel, target).await?);
        }
        TokenCommand::RotateKey => println!("signing with key {}", paved::tokens::rotate(channel).await?),
        // Need no endpoint: handled before connecting.
        TokenCommand::Root { .. } | TokenCommand::Enrol { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a private key readable by its owner only.
fn write_private(path: &std::path::Path, key: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("create {}: {e} (an existing key is never overwritten)", path.display()))?;
    file.write_all(key.as_bytes())?;
    Ok(())
}

fn print_state(rollout: paved_proto::provisioner::v1::Rollout) {
    println!("rollout {}: {} ({})", rollout.id, rollouts::state(&rollout).short_name(), rollout.message);
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
    let endpoint = platform.addr.to_string();
    let status = commands::status(commands::connect_with(&endpoint, &platform.root_token).await?).await?;
    // Like a development server: the CLI on this machine is logged in.
    let stored = paved::credentials::store(&endpoint, &platform.root_token);
    println!("\nPaved is up in {:.1}s ({mode} mode, data in {}).", started.elapsed().as_secs_f64(), options.data_dir.display());
    println!("  gRPC endpoint  {}   every service, grpc.health.v1 and reflection", platform.addr);
    println!("  metrics        http://{}/metrics", platform.addr);
    println!("\nRoot token (shown once; valid 24 h, every scope):\n\n  {}\n", platform.root_token);
    match stored {
        Ok(path) => println!("The CLI here is logged in with it ({}); elsewhere: paved login --endpoint {endpoint}\n", path.display()),
        Err(e) => println!("Could not store it for the CLI ({e:#}); run: paved login --endpoint {endpoint}\n"),
    }
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
