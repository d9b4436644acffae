//! `cargo xtask bench dbcreds` (issue #5): dynamic PostgreSQL credentials
//! through `paved up`'s broker on the real PostgreSQL (127.0.0.1:5432, or
//! `PAVED_BENCH_POSTGRES_URL`): target ≥ 250/s (Vault's published example:
//! 226/s). Baseline in the same run: the same `CREATE ROLE … LOGIN
//! PASSWORD … VALID UNTIL … IN ROLE` issued straight to PostgreSQL by as
//! many concurrent callers, which bounds what any broker can do here. Then
//! every lease is revoked by prefix (role dropped and checked gone), timed.

use crate::tokens::throughput;
use paved_proto::secrets_broker::v1::{
    ConfigureDatabaseRequest, IssueDatabaseCredentialsRequest, RevokeLeaseRequest, revoke_lease_request::Target,
    secrets_broker_service_client::SecretsBrokerServiceClient,
};
use sea_orm::{ConnectOptions, ConnectionTrait};
use std::{
    path::Path,
    time::{Duration, Instant},
};

const CALLERS: usize = 16;
const TIME: Duration = Duration::from_secs(5);

pub fn run(bin: &Path) -> anyhow::Result<()> {
    let server = std::env::var("PAVED_BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let (database, group) = (format!("paved_bench_dbcreds_{suffix}"), format!("paved_bench_group_{suffix}"));
    let url = format!("{server}/{database}");
    let platform = crate::pipeline::Platform::start(bin, "dbcreds")?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let admin = paved_store::connect(&url).await?;
        admin
            .execute_unprepared(&format!("CREATE TABLE orders (id int); CREATE ROLE {group} NOLOGIN; GRANT SELECT ON orders TO {group}"))
            .await?;
        let result = measure(&platform, &url, &group).await;
        // Clean up every member of the group (the baseline's roles, and the
        // broker's if a revocation did not run), whatever happened.
        let members = format!(
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member \
             JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = '{group}'"
        );
        for row in admin.query_all_raw(sea_orm::Statement::from_string(admin.get_database_backend(), members)).await? {
            let role: String = row.try_get("", "rolname")?;
            admin.execute_unprepared(&format!("DROP ROLE IF EXISTS \"{role}\"")).await?;
        }
        admin.execute_unprepared(&format!("DROP TABLE orders; DROP ROLE IF EXISTS {group}")).await?;
        drop(admin);
        let postgres = paved_store::connect(&format!("{server}/postgres")).await?;
        postgres.execute_unprepared(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await?;
        result
    })
}

async fn measure(platform: &crate::pipeline::Platform, url: &str, group: &str) -> anyhow::Result<()> {
    // Baseline: PostgreSQL creating such roles, as fast as it can.
    let mut options = ConnectOptions::new(url);
    options.max_connections(8).sqlx_logging(false);
    let pool = sea_orm::Database::connect(options).await?;
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%d %H:%M:%S+00").to_string();
    let group_owned = group.to_string();
    let baseline = throughput(CALLERS, TIME, move |_| {
        let (pool, until, group) = (pool.clone(), until.clone(), group_owned.clone());
        async move {
            let role = format!("paved_bench_base_{}", uuid::Uuid::new_v4().simple());
            let password = uuid::Uuid::new_v4().simple().to_string();
            pool.execute_unprepared(&format!(
                "CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}' VALID UNTIL '{until}' IN ROLE \"{group}\""
            ))
            .await?;
            Ok(())
        }
    })
    .await?;

    let channel = platform.channel().await?;
    let mut root = SecretsBrokerServiceClient::new(channel.clone());
    let configure = ConfigureDatabaseRequest {
        name: "bench".into(),
        connection_url: url.to_string(),
        group_role: group.to_string(),
        default_ttl: None,
        max_ttl: None,
    };
    root.configure_database(configure).await?;
    let broker = SecretsBrokerServiceClient::new(channel.clone());
    let issued = throughput(CALLERS, TIME, move |_| {
        let mut broker = broker.clone();
        async move {
            let creds = broker
                .issue_database_credentials(IssueDatabaseCredentialsRequest { database: "bench".into(), ttl: None })
                .await?
                .into_inner();
            anyhow::ensure!(creds.username.starts_with("paved_") && !creds.password.is_empty(), "no credentials");
            Ok(())
        }
    })
    .await?;
    let started = Instant::now();
    let revoked = root.revoke_lease(RevokeLeaseRequest { target: Some(Target::Prefix("database/bench/".into())) }).await?.into_inner();
    let revoke_rate = f64::from(revoked.revoked) / started.elapsed().as_secs_f64();

    println!("bench dbcreds: paved up, {CALLERS} concurrent callers, {} s each, PostgreSQL on this machine", TIME.as_secs());
    println!("  IssueDatabaseCredentials (lease recorded, role created): {issued:.0}/s (target ≥ 250/s; Vault's example 226/s)");
    println!(
        "  baseline: the same CREATE ROLE straight to PostgreSQL: {baseline:.0}/s; the broker runs at {:.0}% of it",
        issued / baseline * 100.0
    );
    println!(
        "  revoke by prefix: {} leases in {:.1} s ({revoke_rate:.0}/s; NOLOGIN, sessions ended, DROP ROLE, verified gone), {} failed",
        revoked.revoked,
        started.elapsed().as_secs_f64(),
        revoked.failed
    );
    anyhow::ensure!(revoked.failed == 0, "revocations failed");
    anyhow::ensure!(issued >= 250.0, "{issued:.0}/s, under the 250/s target");
    Ok(())
}
