//! `paved db configure|list|creds`: PostgreSQL databases the broker hands
//! out logins for, each login its own role under a lease (see
//! [`crate::leases`]). A password is printed once, never in an error.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output::time,
    ttl::parse_ttl,
};
use paved_grpc::client::AuthChannel;
use paved_proto::secrets_broker::v1::{
    ConfigureDatabaseRequest, Database, IssueDatabaseCredentialsRequest, IssueDatabaseCredentialsResponse, ListDatabasesRequest,
    secrets_broker_service_client::SecretsBrokerServiceClient,
};
use std::{fmt::Write as _, process::ExitCode, time::Duration};

#[derive(clap::Args)]
pub struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
    #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
    /// Lines (or a table) for people, or JSON for scripts.
    #[arg(long, short, global = true, value_enum, default_value_t)]
    output: crate::output::Format,
}

#[derive(clap::Subcommand)]
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
        #[arg(long, value_parser = parse_ttl)]
        default_ttl: Option<Duration>,
        /// The longest a lease may be renewed to (default 24h).
        #[arg(long, value_parser = parse_ttl)]
        max_ttl: Option<Duration>,
    },
    /// Databases configured (never their credentials).
    List,
    /// A login of your own under a lease; prints it once.
    Creds {
        name: String,
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<Duration>,
    },
}

pub async fn run(args: DbArgs) -> anyhow::Result<ExitCode> {
    let channel = connect(&args.endpoint).await?;
    let format = args.output;
    match args.command {
        DbCommand::Configure { name, group_role, url, default_ttl, max_ttl } => {
            let url = match url {
                Some(url) => url,
                None => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim().to_string()
                }
            };
            let db = configure(channel, &name, url, &group_role, (default_ttl, max_ttl)).await?;
            let line = || format!("database {} configured: {} as members of {}\n", db.name, db.target, db.group_role);
            crate::output::print(format, line, || database_json(&db))?;
        }
        DbCommand::List => {
            let databases = databases(channel).await?;
            let json = || serde_json::Value::Array(databases.iter().map(database_json).collect());
            crate::output::print(format, || databases_table(&databases), json)?;
        }
        DbCommand::Creds { name, ttl } => {
            let creds = credentials(channel, &name, ttl).await?;
            let lease = creds.lease.unwrap_or_default();
            // The password is what was asked for: printed once, on stdout only.
            let lines = || {
                let expires = time(lease.expire_time.as_ref());
                format!("username  {}\npassword  {}\nlease     {}\nexpires   {expires}\n", creds.username, creds.password, lease.lease_id)
            };
            let json = || {
                serde_json::json!({
                    "username": creds.username, "password": creds.password, "lease_id": lease.lease_id,
                    "expire_time": crate::output::rfc3339(lease.expire_time.as_ref()),
                })
            };
            crate::output::print(format, lines, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn configure(
    channel: AuthChannel,
    name: &str,
    connection_url: String,
    group_role: &str,
    ttl: (Option<Duration>, Option<Duration>),
) -> anyhow::Result<Database> {
    let request = ConfigureDatabaseRequest {
        name: name.to_string(),
        connection_url,
        group_role: group_role.to_string(),
        default_ttl: ttl.0.map(paved_proto::duration_from_std),
        max_ttl: ttl.1.map(paved_proto::duration_from_std),
    };
    let answer = SecretsBrokerServiceClient::new(channel).configure_database(request).await.map_err(failed)?.into_inner();
    answer.database.ok_or_else(|| anyhow::anyhow!("the broker answered no database"))
}

pub async fn databases(channel: AuthChannel) -> anyhow::Result<Vec<Database>> {
    Ok(SecretsBrokerServiceClient::new(channel).list_databases(ListDatabasesRequest {}).await.map_err(failed)?.into_inner().databases)
}

pub async fn credentials(channel: AuthChannel, database: &str, ttl: Option<Duration>) -> anyhow::Result<IssueDatabaseCredentialsResponse> {
    let request = IssueDatabaseCredentialsRequest { database: database.to_string(), ttl: ttl.map(paved_proto::duration_from_std) };
    Ok(SecretsBrokerServiceClient::new(channel).issue_database_credentials(request).await.map_err(failed)?.into_inner())
}

/// One line per database: name, group role, target, TTLs.
/// A configured database for scripts (never its admin URL's password:
/// `target` is host, port and database only).
fn database_json(d: &Database) -> serde_json::Value {
    let secs = |d: &Option<prost_types::Duration>| d.as_ref().map_or(0, |d| d.seconds);
    serde_json::json!({
        "name": d.name, "group_role": d.group_role, "target": d.target,
        "default_ttl_seconds": secs(&d.default_ttl), "max_ttl_seconds": secs(&d.max_ttl),
    })
}

pub fn databases_table(databases: &[Database]) -> String {
    let mut out = format!("{:<24}  {:<24}  {:<40}  {:>8}  {:>8}\n", "NAME", "GROUP ROLE", "TARGET", "TTL", "MAX TTL");
    let secs = |d: &Option<prost_types::Duration>| d.as_ref().map_or(0, |d| d.seconds);
    for d in databases {
        let _ =
            writeln!(out, "{:<24}  {:<24}  {:<40}  {:>7}s  {:>7}s", d.name, d.group_role, d.target, secs(&d.default_ttl), secs(&d.max_ttl));
    }
    out
}
