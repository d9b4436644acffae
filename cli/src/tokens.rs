//! `paved token issue|list|revoke|rotate-key|root|enrol`: the CLI side of
//! the broker's tokens. `root` and `enrol` act as the root key's holder, on
//! the broker's database, without a running broker.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output::time,
    ttl::parse_ttl,
};
use anyhow::Context;
use paved_grpc::client::AuthChannel;
use paved_proto::secrets_broker::v1::{
    IssueTokenRequest, IssueTokenResponse, ListTokensRequest, RevokeTokenRequest, RotateSigningKeyRequest, TokenInfo,
    revoke_token_request::Target, secrets_broker_service_client::SecretsBrokerServiceClient,
};
use std::{fmt::Write as _, path::PathBuf, process::ExitCode, time::Duration};

#[derive(clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
    /// Lines (or a table) for people, or JSON for scripts.
    #[arg(long, short, global = true, value_enum, default_value_t)]
    output: crate::output::Format,
}

#[derive(clap::Subcommand)]
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
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<Duration>,
        /// How long renewals may extend it (default 8h, at most 30d).
        #[arg(long, value_parser = parse_ttl)]
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
        #[arg(long, default_value = "10m", value_parser = parse_ttl)]
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

pub async fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let TokenArgs { command, endpoint, output } = args;
    match command {
        TokenCommand::Root { broker } => {
            let authority = broker.authority().await?;
            let token = authority.issue("paved token root", &paved_secrets_broker::root_grant()).await?.0;
            crate::output::print(output, || format!("{token}\n"), || serde_json::json!({ "token": token }))?;
            return Ok(ExitCode::SUCCESS);
        }
        TokenCommand::Enrol { broker, out, ttl, services } => {
            let services = enrolled_services(services, ttl)?;
            enrol(&broker.authority().await?, &services, ttl, &out).await?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let channel = connect(&endpoint).await?;
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
            let issued = issue(channel, request).await?;
            if let Some(info) = issued.info.as_ref().filter(|_| output == crate::output::Format::Table) {
                eprintln!("paved: token {} for {} ({})", info.token_id, info.subject, info.scopes.join(" "));
            }
            // The token and what `token list` shows of it.
            let issued_json = || {
                let mut out = json(issued.info.as_slice()).get(0).cloned().unwrap_or_else(|| serde_json::json!({}));
                out["token"] = serde_json::json!(issued.token);
                out
            };
            crate::output::print(output, || format!("{}\n", issued.token), issued_json)?;
        }
        TokenCommand::List { subject } => {
            let tokens = list(channel, &subject.unwrap_or_default()).await?;
            crate::output::print(output, || table(&tokens), || json(&tokens))?;
        }
        TokenCommand::Revoke { id, subject } => {
            let target = match (id, subject) {
                (Some(id), _) => Target::TokenId(id),
                (None, Some(subject)) => Target::Subject(subject),
                (None, None) => anyhow::bail!("name a token id or --subject"),
            };
            let revoked = revoke(channel, target).await?;
            crate::output::print(output, || format!("revoked {revoked} token(s)\n"), || serde_json::json!({ "revoked": revoked }))?;
        }
        TokenCommand::RotateKey => {
            let key = rotate(channel).await?;
            crate::output::print(output, || format!("signing with key {key}\n"), || serde_json::json!({ "key_id": key }))?;
        }
        // Need no endpoint: handled before connecting.
        TokenCommand::Root { .. } | TokenCommand::Enrol { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn broker(channel: AuthChannel) -> SecretsBrokerServiceClient<AuthChannel> {
    SecretsBrokerServiceClient::new(channel)
}

pub async fn issue(channel: AuthChannel, request: IssueTokenRequest) -> anyhow::Result<IssueTokenResponse> {
    Ok(broker(channel).issue_token(request).await.map_err(failed)?.into_inner())
}

pub async fn list(channel: AuthChannel, subject: &str) -> anyhow::Result<Vec<TokenInfo>> {
    let request = ListTokensRequest { subject: subject.to_string(), page_size: 1000, ..Default::default() };
    Ok(broker(channel).list_tokens(request).await.map_err(failed)?.into_inner().tokens)
}

pub async fn revoke(channel: AuthChannel, target: Target) -> anyhow::Result<i32> {
    Ok(broker(channel).revoke_token(RevokeTokenRequest { target: Some(target) }).await.map_err(failed)?.into_inner().revoked)
}

pub async fn rotate(channel: AuthChannel) -> anyhow::Result<String> {
    Ok(broker(channel).rotate_signing_key(RotateSigningKeyRequest {}).await.map_err(failed)?.into_inner().key_id)
}

/// One line per token: id, subject, scopes, expiry, state.
/// The tokens for scripts: never the tokens themselves, only what they are.
pub fn json(tokens: &[TokenInfo]) -> serde_json::Value {
    let time = crate::output::rfc3339;
    tokens
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.token_id, "subject": t.subject, "scopes": t.scopes, "audience": t.audience,
                "issue_time": time(t.issue_time.as_ref()), "expire_time": time(t.expire_time.as_ref()),
                "revoke_time": time(t.revoke_time.as_ref()),
            })
        })
        .collect()
}

pub fn table(tokens: &[TokenInfo]) -> String {
    let mut out = format!("{:<36}  {:<40}  {:<19}  {:<8}  SCOPES\n", "ID", "SUBJECT", "EXPIRES", "STATE");
    let now = chrono::Utc::now().timestamp();
    for t in tokens {
        let state = if t.revoke_time.is_some() {
            "revoked"
        } else if t.expire_time.as_ref().is_some_and(|e| e.seconds < now) {
            "expired"
        } else {
            "live"
        };
        let _ = writeln!(
            out,
            "{:<36}  {:<40}  {:<19}  {:<8}  {}",
            t.token_id,
            t.subject,
            time(t.expire_time.as_ref()),
            state,
            t.scopes.join(" ")
        );
    }
    out
}

/// The services `paved token enrol` mints for: each named one, or every
/// platform service but the broker (its own CA); checked before any is.
pub fn enrolled_services(named: Vec<String>, ttl: Duration) -> anyhow::Result<Vec<String>> {
    use paved_grpc::tls::PLATFORM_SERVICES;
    use paved_secrets_broker::authority::MAX_TTL;
    anyhow::ensure!(ttl <= MAX_TTL, "--ttl {ttl:?} is over the longest a token lives, {MAX_TTL:?}");
    const BROKER: &str = <paved_secrets_broker::SecretsBroker as paved_service::ConsumerService>::NAME;
    if named.is_empty() {
        return Ok(PLATFORM_SERVICES.iter().filter(|s| **s != BROKER).map(|s| s.to_string()).collect());
    }
    for service in &named {
        anyhow::ensure!(
            PLATFORM_SERVICES.contains(&service.as_str()),
            "{service:?} is not a platform service (one of {})",
            PLATFORM_SERVICES.join(", ")
        );
        anyhow::ensure!(service != BROKER, "the {BROKER} is its own CA: it enrols with no token");
    }
    Ok(named)
}

/// What a platform service's own calls present (the tokens its certificate
/// is exchanged for): the provisioner's, for the processes it starts and to
/// the analyzer; the cost scheduler's, to sleep and wake workloads.
pub fn calls_of(service: &str) -> &'static [&'static str] {
    match service {
        "provisioner" => &paved_provisioner::CALL_SCOPES,
        "cost-scheduler" => &paved_cost_scheduler::CALL_SCOPES,
        _ => &[],
    }
}

/// Mints each service's enrolling token into `<out>/<service>/identity.token`
/// (mode 0600, replacing an older one) and says on stderr what it wrote,
/// never the values.
pub async fn enrol(
    authority: &paved_secrets_broker::authority::Authority,
    services: &[String],
    ttl: Duration,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    for service in services {
        let grant = paved_secrets_broker::enrolment_grant(service, calls_of(service), ttl);
        let (token, info) = authority.issue("paved token enrol", &grant).await?;
        let dir = out.join(service);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let file = dir.join("identity.token");
        paved_grpc::tls::replace_private(&file, &token).with_context(|| format!("write {}", file.display()))?;
        eprintln!("paved: token {} for {} ({}) → {}", info.token_id, info.subject, info.scopes.join(" "), file.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::enrolled_services;
    use std::time::Duration;

    #[test]
    fn enrols_the_services_it_can() {
        let ten = Duration::from_secs(600);
        assert_eq!(enrolled_services(vec![], ten).expect("all"), ["provisioner", "canary-analyzer", "cost-scheduler", "audit"]);
        assert_eq!(enrolled_services(vec!["audit".into()], ten).expect("one"), ["audit"]);
        let refused =
            |named: &[&str], ttl| enrolled_services(named.iter().map(|s| s.to_string()).collect(), ttl).expect_err("refused").to_string();
        assert!(refused(&["audit", "billing"], ten).contains("\"billing\" is not a platform service"));
        assert!(refused(&["secrets-broker"], ten).contains("its own CA"));
        assert!(refused(&[], Duration::from_secs(25 * 3600)).contains("over the longest a token lives"));
    }
}
