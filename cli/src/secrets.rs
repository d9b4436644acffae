//! `paved secrets put|get|list|watch|rewrap|policy`: KV secrets through the broker,
//! and the policies compiled for workloads.
//! Values go to stdout only when asked for (`get`, `watch`), never in errors.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output::time,
    ttl::parse_ttl,
};
use paved_grpc::client::AuthChannel;
use paved_proto::secrets_broker::v1::{
    DeleteSecretRequest, GetSecretRequest, GetWorkloadPolicyRequest, ListSecretsRequest, ListWorkloadPoliciesRequest, PutSecretRequest,
    RewrapKeysRequest, RewrapKeysResponse, Secret, SecretVersion, WatchSecretRequest, WorkloadPolicy,
    secrets_broker_service_client::SecretsBrokerServiceClient,
};
use std::{fmt::Write as _, process::ExitCode, time::Duration};

#[derive(clap::Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    command: SecretsCommand,
    #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
}

#[derive(clap::Subcommand)]
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
        #[arg(long, value_parser = parse_ttl)]
        rotate_every: Option<Duration>,
        #[arg(long, short, value_enum, default_value_t)]
        output: crate::output::Format,
    },
    /// Delete a secret: every version, at once (reads then answer not found).
    Delete {
        path: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: crate::output::Format,
    },
    /// Print a value (the latest, or --version N).
    Get {
        path: String,
        #[arg(long, default_value_t = 0)]
        version: u32,
        #[arg(long, short, value_enum, default_value_t)]
        output: crate::output::Format,
    },
    /// Secrets under a prefix, latest versions: never values.
    List {
        #[arg(default_value = "")]
        prefix: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: crate::output::Format,
    },
    /// Print the value, then each new version as it is written or rotated
    /// (with --output json, one JSON document per line).
    Watch {
        path: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: crate::output::Format,
    },
    /// Re-seal every key under the current root key (after a root key rotation).
    Rewrap {
        #[arg(long, short, value_enum, default_value_t)]
        output: crate::output::Format,
    },
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
        #[arg(long, short, value_enum, default_value_t)]
        output: crate::output::Format,
    },
}

pub async fn run(args: SecretsArgs) -> anyhow::Result<ExitCode> {
    let channel = connect(&args.endpoint).await?;
    match args.command {
        SecretsCommand::Put { path, value, generate, rotate_every, output } => {
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
            let written = put(channel, request).await?;
            let line = || format!("{} version {}\n", written.path, written.version);
            // What `secrets list` shows of it: never the value.
            crate::output::print(output, line, || version_json(&written))?;
        }
        SecretsCommand::Delete { path, output } => {
            let request = DeleteSecretRequest { path };
            let deleted = client(channel).delete_secret(request).await.map_err(failed)?.into_inner();
            crate::output::print(
                output,
                || format!("deleted {} ({} version(s))\n", deleted.path, deleted.versions),
                || serde_json::json!({ "path": deleted.path, "versions": deleted.versions }),
            )?;
        }
        SecretsCommand::Get { path, version, output } => print_value(&get(channel, &path, version).await?, output),
        SecretsCommand::List { prefix, output } => {
            let secrets = list(channel, &prefix).await?;
            crate::output::print(output, || table(&secrets), || json(&secrets))?;
        }
        SecretsCommand::Watch { path, output } => watch(channel, &path, |secret| print_value(secret, output)).await?,
        SecretsCommand::Rewrap { output } => {
            let done = rewrap(channel).await?;
            let line = || format!("{} keys re-sealed under root key {}\n", done.rewrapped, done.root_key_id);
            crate::output::print(output, line, || serde_json::json!({ "rewrapped": done.rewrapped, "root_key_id": done.root_key_id }))?;
        }
        SecretsCommand::Policy { workload: Some(workload), env, output, .. } => {
            let env = env.ok_or_else(|| anyhow::anyhow!("--env is needed with a workload: paved secrets policy {workload} --env <env>"))?;
            let policy = policy(channel, &env, &workload).await?;
            crate::output::print(output, || policy_report(&policy), || policy_json(&policy))?;
        }
        SecretsCommand::Policy { workload: None, env, unused, output } => {
            let policies = policies(channel, env.as_deref().unwrap_or_default(), unused).await?;
            let reports = || {
                if policies.is_empty() {
                    let none = if unused { "every grant of every policy has been used" } else { "no policies compiled yet" };
                    return format!("{none}\n");
                }
                policies.iter().map(|p| policy_report(p) + "\n").collect()
            };
            crate::output::print(output, reports, || policies.iter().map(policy_json).collect())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A value as read: the bytes and a newline for people; for scripts, one
/// JSON line with its version (`value` when it is UTF-8, else
/// `value_base64`). Flushed at once: a watch prints as versions come.
fn print_value(secret: &Secret, output: crate::output::Format) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if output == crate::output::Format::Json {
        let mut line = secret.meta.as_ref().map_or_else(|| serde_json::json!({}), version_json);
        match std::str::from_utf8(&secret.value) {
            Ok(text) => line["value"] = text.into(),
            Err(_) => line["value_base64"] = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &secret.value).into(),
        }
        let _ = writeln!(out, "{line}");
    } else {
        let _ = out.write_all(&secret.value);
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

fn client(channel: AuthChannel) -> SecretsBrokerServiceClient<AuthChannel> {
    SecretsBrokerServiceClient::new(channel)
}

pub async fn put(channel: AuthChannel, request: PutSecretRequest) -> anyhow::Result<SecretVersion> {
    client(channel)
        .put_secret(request)
        .await
        .map_err(failed)?
        .into_inner()
        .version
        .ok_or_else(|| anyhow::anyhow!("the broker answered no version"))
}

pub async fn get(channel: AuthChannel, path: &str, version: u32) -> anyhow::Result<Secret> {
    let answer = client(channel).get_secret(GetSecretRequest { path: path.to_string(), version }).await.map_err(failed)?.into_inner();
    answer.secret.ok_or_else(|| anyhow::anyhow!("the broker answered no secret"))
}

pub async fn list(channel: AuthChannel, prefix: &str) -> anyhow::Result<Vec<SecretVersion>> {
    let request = ListSecretsRequest { prefix: prefix.to_string(), page_size: 1000, ..Default::default() };
    Ok(client(channel).list_secrets(request).await.map_err(failed)?.into_inner().secrets)
}

pub async fn rewrap(channel: AuthChannel) -> anyhow::Result<RewrapKeysResponse> {
    Ok(client(channel).rewrap_keys(RewrapKeysRequest {}).await.map_err(failed)?.into_inner())
}

/// Calls `each` with every version of `path` as it is written, until the
/// stream ends (an error, or the token expiring).
pub async fn watch(channel: AuthChannel, path: &str, mut each: impl FnMut(&Secret)) -> anyhow::Result<()> {
    let mut stream = client(channel).watch_secret(WatchSecretRequest { path: path.to_string() }).await.map_err(failed)?.into_inner();
    while let Some(answer) = stream.message().await.map_err(failed)? {
        if let Some(secret) = &answer.secret {
            each(secret);
        }
    }
    Ok(())
}

/// One line per secret: path, version, written, generated and next rotation.
/// The secrets for scripts: their versions, never their values.
pub fn json(secrets: &[SecretVersion]) -> serde_json::Value {
    secrets.iter().map(version_json).collect()
}

/// One version for scripts, as [`json`] lists it.
fn version_json(s: &SecretVersion) -> serde_json::Value {
    let time = crate::output::rfc3339;
    serde_json::json!({
        "path": s.path, "version": s.version, "create_time": time(s.create_time.as_ref()),
        "generated": s.generated, "rotate_time": time(s.rotate_time.as_ref()),
    })
}

pub fn table(secrets: &[SecretVersion]) -> String {
    let mut out = format!("{:<48}  {:>7}  {:<19}  {:<9}  ROTATES\n", "PATH", "VERSION", "WRITTEN", "GENERATED");
    for s in secrets {
        let generated = if s.generated { "yes" } else { "no" };
        let _ = writeln!(
            out,
            "{:<48}  {:>7}  {:<19}  {:<9}  {}",
            s.path,
            s.version,
            time(s.create_time.as_ref()),
            generated,
            time(s.rotate_time.as_ref())
        );
    }
    out
}

pub async fn policy(channel: AuthChannel, environment: &str, workload: &str) -> anyhow::Result<WorkloadPolicy> {
    let request = GetWorkloadPolicyRequest { environment: environment.to_string(), workload: workload.to_string() };
    let answer = client(channel).get_workload_policy(request).await.map_err(failed)?.into_inner();
    answer.policy.ok_or_else(|| anyhow::anyhow!("the broker answered no policy"))
}

/// Every policy (of `environment`, unless empty), page after page.
pub async fn policies(channel: AuthChannel, environment: &str, unused_only: bool) -> anyhow::Result<Vec<WorkloadPolicy>> {
    let mut client = client(channel);
    let (mut all, mut page_token) = (Vec::new(), String::new());
    loop {
        let request = ListWorkloadPoliciesRequest {
            environment: environment.to_string(),
            unused_only,
            page_size: 1000,
            page_token: page_token.clone(),
        };
        let answer = client.list_workload_policies(request).await.map_err(failed)?.into_inner();
        all.extend(answer.policies);
        if answer.next_page_token.is_empty() {
            return Ok(all);
        }
        page_token = answer.next_page_token;
    }
}

/// A policy for scripts: every grant with its uses.
pub fn policy_json(policy: &WorkloadPolicy) -> serde_json::Value {
    let time = crate::output::rfc3339;
    let grants: Vec<serde_json::Value> = policy
        .grants
        .iter()
        .map(|g| {
            serde_json::json!({
                "scope": g.scope, "use_count": g.use_count,
                "first_use_time": time(g.first_use_time.as_ref()), "last_use_time": time(g.last_use_time.as_ref()),
            })
        })
        .collect();
    serde_json::json!({
        "spiffe_id": policy.spiffe_id, "environment": policy.environment, "workload": policy.workload,
        "revision_id": policy.revision_id, "compile_time": time(policy.compile_time.as_ref()), "grants": grants,
    })
}

/// A policy, one grant per line with its uses, then the grants never used.
pub fn policy_report(policy: &WorkloadPolicy) -> String {
    let mut out = format!(
        "{}  revision {}, compiled {}\n{:<56}  {:>6}  LAST USED\n",
        policy.spiffe_id,
        policy.revision_id,
        time(policy.compile_time.as_ref()),
        "GRANT",
        "USES"
    );
    if policy.grants.is_empty() {
        out.push_str("(no grants: the spec declares no secrets)\n");
    }
    for grant in &policy.grants {
        let last = if grant.use_count == 0 { "never".to_string() } else { time(grant.last_use_time.as_ref()) };
        let _ = writeln!(out, "{:<56}  {:>6}  {last}", grant.scope, grant.use_count);
    }
    let unused: Vec<&str> = policy.grants.iter().filter(|g| g.use_count == 0).map(|g| g.scope.as_str()).collect();
    if !unused.is_empty() {
        let _ = writeln!(
            out,
            "{} grant(s) never used: {} (if the workload does not need them, take them out of its spec's secrets)",
            unused.len(),
            unused.join(", ")
        );
    }
    out
}
