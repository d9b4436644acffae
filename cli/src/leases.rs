//! `paved lease list|renew|revoke`: the leases the broker's handouts
//! (database logins, see [`crate::db`]) are held under; revoking one drops
//! its role.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output::time,
    ttl::parse_ttl,
};
use paved_grpc::client::AuthChannel;
use paved_proto::secrets_broker::v1::{
    Lease, ListLeasesRequest, RenewLeaseRequest, RevokeLeaseRequest, RevokeLeaseResponse, revoke_lease_request::Target,
    secrets_broker_service_client::SecretsBrokerServiceClient,
};
use std::{fmt::Write as _, process::ExitCode, time::Duration};

#[derive(clap::Args)]
pub struct LeaseArgs {
    #[command(subcommand)]
    command: LeaseCommand,
    #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
}

#[derive(clap::Subcommand)]
enum LeaseCommand {
    /// Leases under a prefix (e.g. database/shop/), newest first.
    List {
        #[arg(default_value = "")]
        prefix: String,
        #[arg(long, value_enum, default_value_t)]
        output: crate::output::Format,
    },
    /// Extend a lease (never past its maximum).
    Renew {
        lease_id: String,
        #[arg(long, value_parser = parse_ttl)]
        increment: Option<Duration>,
        #[arg(long, short, value_enum, default_value_t)]
        output: crate::output::Format,
    },
    /// Revoke a lease, or every lease under --prefix: its role is dropped.
    Revoke {
        #[arg(required_unless_present = "prefix", conflicts_with = "prefix")]
        lease_id: Option<String>,
        #[arg(long)]
        prefix: Option<String>,
        #[arg(long, short, value_enum, default_value_t)]
        output: crate::output::Format,
    },
}

pub async fn run(args: LeaseArgs) -> anyhow::Result<ExitCode> {
    let channel = connect(&args.endpoint).await?;
    match args.command {
        LeaseCommand::List { prefix, output } => {
            let leases = leases(channel, &prefix).await?;
            crate::output::print(output, || table(&leases), || json(&leases))?;
        }
        LeaseCommand::Renew { lease_id, increment, output } => {
            let lease = renew(channel, &lease_id, increment).await?;
            let line = || format!("{} expires {}\n", lease.lease_id, time(lease.expire_time.as_ref()));
            crate::output::print(output, line, || lease_json(&lease))?;
        }
        LeaseCommand::Revoke { lease_id, prefix, output } => {
            let target = match (lease_id, prefix) {
                (Some(id), _) => Target::LeaseId(id),
                (None, Some(prefix)) => Target::Prefix(prefix),
                (None, None) => anyhow::bail!("name a lease or --prefix"),
            };
            let done = revoke(channel, target).await?;
            let line = || format!("{} lease(s) revoked\n", done.revoked);
            crate::output::print(output, line, || serde_json::json!({ "revoked": done.revoked, "failed": done.failed }))?;
            if done.failed > 0 {
                eprintln!("paved: {} revocation(s) failed; the broker retries them (see paved lease list)", done.failed);
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn leases(channel: AuthChannel, prefix: &str) -> anyhow::Result<Vec<Lease>> {
    let request = ListLeasesRequest { prefix: prefix.to_string(), page_size: 1000, ..Default::default() };
    Ok(SecretsBrokerServiceClient::new(channel).list_leases(request).await.map_err(failed)?.into_inner().leases)
}

pub async fn renew(channel: AuthChannel, lease_id: &str, increment: Option<Duration>) -> anyhow::Result<Lease> {
    let request = RenewLeaseRequest { lease_id: lease_id.to_string(), increment: increment.map(paved_proto::duration_from_std) };
    let answer = SecretsBrokerServiceClient::new(channel).renew_lease(request).await.map_err(failed)?.into_inner();
    answer.lease.ok_or_else(|| anyhow::anyhow!("the broker answered no lease"))
}

/// Revokes one lease, or every lease under `prefix`.
pub async fn revoke(channel: AuthChannel, target: Target) -> anyhow::Result<RevokeLeaseResponse> {
    Ok(SecretsBrokerServiceClient::new(channel)
        .revoke_lease(RevokeLeaseRequest { target: Some(target) })
        .await
        .map_err(failed)?
        .into_inner())
}

/// One line per lease: id, holder, expiry, state.
/// The leases for scripts.
pub fn json(leases: &[Lease]) -> serde_json::Value {
    leases.iter().map(lease_json).collect()
}

/// One lease for scripts, as [`json`] lists it.
fn lease_json(l: &Lease) -> serde_json::Value {
    let time = crate::output::rfc3339;
    serde_json::json!({
        "id": l.lease_id, "subject": l.subject, "expire_time": time(l.expire_time.as_ref()),
        "revoke_time": time(l.revoke_time.as_ref()), "revoke_attempts": l.revoke_attempts, "last_error": l.last_error,
    })
}

pub fn table(leases: &[Lease]) -> String {
    let mut out = format!("{:<56}  {:<32}  {:<19}  STATE\n", "LEASE", "SUBJECT", "EXPIRES");
    for l in leases {
        let state = match (&l.revoke_time, l.revoke_attempts) {
            (Some(t), _) => format!("revoked {}", time(Some(t))),
            (None, 0) => "active".to_string(),
            (None, n) => format!("revocation failing ({n} attempts): {}", l.last_error),
        };
        let _ = writeln!(out, "{:<56}  {:<32}  {:<19}  {state}", l.lease_id, l.subject, time(l.expire_time.as_ref()));
    }
    out
}
