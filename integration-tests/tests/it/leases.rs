//! Dynamic PostgreSQL credentials on the real PostgreSQL, end to end with
//! `paved up` and the CLI: a role per lease in a pre-created group role;
//! renewal up to the maximum; revocation (sessions ended, role dropped and
//! gone), by prefix, with the token that asked, at expiry also across a
//! restart; a failing revocation retried and reported; and no password in
//! any log.

use crate::secrets::{paved_at, stop, up};
use paved_integration_tests::{Cuttable, authed, eventually, postgres_database, text, unique};
use paved_proto::audit::v1::{ListEntriesRequest, audit_service_client::AuditServiceClient};
use paved_proto::secrets_broker::v1::{
    ConfigureDatabaseRequest, IssueDatabaseCredentialsRequest, IssueTokenRequest, RenewLeaseRequest, RevokeLeaseRequest,
    RevokeTokenRequest, revoke_lease_request::Target, revoke_token_request, secrets_broker_service_client::SecretsBrokerServiceClient,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

type Broker = SecretsBrokerServiceClient<paved_grpc::client::AuthChannel>;

/// A session as `user` (trust authentication here: the role must exist
/// and may log in; the password is not checked by this server).
async fn login(database: &str, user: &str, password: &str) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = sea_orm::ConnectOptions::new(format!("postgres://{user}:{password}@127.0.0.1:5432/{database}"));
    options.max_connections(1).connect_timeout(Duration::from_secs(5)).sqlx_logging(false);
    sea_orm::Database::connect(options).await
}

async fn one_i64(db: &DatabaseConnection, sql: &str, role: &str) -> Option<i64> {
    let query = Statement::from_sql_and_values(db.get_database_backend(), sql, [role.into()]);
    db.query_one_raw(query).await.expect("query").map(|row| row.try_get_by_index::<i64>(0).expect("a number"))
}

async fn role_exists(admin: &DatabaseConnection, role: &str) -> bool {
    one_i64(admin, "SELECT 1::bigint FROM pg_roles WHERE rolname = $1", role).await.is_some()
}

/// The role's VALID UNTIL, Unix seconds.
async fn valid_until(admin: &DatabaseConnection, role: &str) -> i64 {
    one_i64(admin, "SELECT extract(epoch FROM rolvaliduntil)::bigint FROM pg_roles WHERE rolname = $1", role).await.expect("VALID UNTIL")
}

fn seconds(n: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds: n, nanos: 0 })
}

#[tokio::test]
async fn database_credentials_are_leased_renewed_and_revoked() {
    // The target: a database, a table, a NOLOGIN group role holding the grant.
    let url = postgres_database("it_dbcreds").await;
    let database = url.rsplit('/').next().expect("database name").to_string();
    let admin = paved_store::connect(&url).await.expect("admin");
    let group = unique("shop_readers");
    admin
        .execute_unprepared(&format!(
            "CREATE TABLE orders (id int); INSERT INTO orders VALUES (1), (2); CREATE ROLE {group} NOLOGIN; GRANT SELECT ON orders TO {group}"
        ))
        .await
        .expect("set up the target");

    let dir = tempfile::tempdir().expect("temp dir");
    let platform = up(dir.path(), 1);
    let endpoint = platform.endpoint.clone();
    let cli = |token: &str, args: &[&str], stdin: Option<&str>| paved_at(&endpoint, dir.path(), token, args, stdin);
    let root = platform.root.clone();

    // Configure, as an operator would (the URL on stdin).
    let out = cli(&root, &["db", "configure", "shop", "--group-role", &group, "--default-ttl", "1h", "--max-ttl", "2h"], Some(&url)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("127.0.0.1:5432/{database}")), "{}", text(&out.stdout));
    let channel = paved::client::channel(&endpoint).await.expect("channel");
    let mut as_root: Broker = SecretsBrokerServiceClient::new(authed(channel.clone(), &root));
    let configure = ConfigureDatabaseRequest {
        name: "shop".into(),
        connection_url: url.clone(),
        group_role: group.clone(),
        default_ttl: seconds(3600),
        max_ttl: seconds(7200),
    };
    // Bad input: a group role that is not there, one that can log in, a bad name.
    let status = as_root
        .configure_database(ConfigureDatabaseRequest { group_role: "no_such_group".into(), ..configure.clone() })
        .await
        .expect_err("missing group role");
    assert_eq!(status.code(), Code::FailedPrecondition, "{}", status.message());
    let status = as_root
        .configure_database(ConfigureDatabaseRequest { group_role: "postgres".into(), ..configure.clone() })
        .await
        .expect_err("a login role as the group");
    assert!(status.code() == Code::FailedPrecondition && status.message().contains("NOLOGIN"), "{}", status.message());
    let status = as_root
        .configure_database(ConfigureDatabaseRequest { name: "Shop!".into(), group_role: "a\"b".into(), ..configure.clone() })
        .await
        .expect_err("bad names");
    let fields: Vec<String> = status.get_details_bad_request().expect("violations").field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["name", "group_role"]);

    // A workload holding database:creds:shop gets a login of its own.
    let issuer = as_root.clone();
    let issue = |subject: &str, scopes: &[&str]| {
        let request = IssueTokenRequest {
            subject: subject.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            audience: "secrets-broker".into(),
            ..Default::default()
        };
        let mut issuer = issuer.clone();
        async move { issuer.issue_token(request).await.expect("token").into_inner() }
    };
    // Its identity, by secret zero, from a spec declaring `databases: [shop]`.
    let bootstrap = paved_proto::secrets_broker::v1::IssueBootstrapTokenRequest {
        environment: "dev".into(),
        workload: "shop".into(),
        revision_id: "r1".into(),
        databases: vec!["shop".into()],
        ..Default::default()
    };
    let bootstrap = as_root.issue_bootstrap_token(bootstrap).await.expect("bootstrap token").into_inner().bootstrap_token;
    let exchange =
        paved_proto::secrets_broker::v1::ExchangeBootstrapTokenRequest { bootstrap_token: bootstrap, artifact_digest: String::new() };
    let shop = SecretsBrokerServiceClient::new(channel.clone()).exchange_bootstrap_token(exchange).await.expect("identity").into_inner();
    assert_eq!(shop.info.as_ref().expect("info").scopes, ["database:creds:shop"], "compiled from the declared database");
    let mut as_shop: Broker = SecretsBrokerServiceClient::new(authed(channel.clone(), &shop.token));
    let creds = |ttl: Option<prost_types::Duration>| IssueDatabaseCredentialsRequest { database: "shop".into(), ttl };
    let issued = as_shop.issue_database_credentials(creds(seconds(600))).await.expect("credentials").into_inner();
    let lease = issued.lease.clone().expect("lease");
    assert!(lease.lease_id.starts_with("database/shop/"), "{}", lease.lease_id);
    let role = issued.username.clone();
    let session = login(&database, &role, &issued.password).await.expect("log in as the leased role");
    let count = session.query_one_raw(Statement::from_string(session.get_database_backend(), "SELECT count(*) FROM orders")).await;
    assert_eq!(count.expect("read").expect("row").try_get_by_index::<i64>(0).expect("count"), 2, "the group's grant");
    let write = session.execute_unprepared("INSERT INTO orders VALUES (3)").await;
    assert!(write.is_err(), "only what the group holds");
    let member = one_i64(&admin, &format!("SELECT pg_has_role($1, '{group}', 'MEMBER')::int::bigint"), &role).await;
    assert_eq!(member, Some(1), "a member of the group role");
    let expire = lease.expire_time.as_ref().expect("expiry").seconds;
    assert!((valid_until(&admin, &role).await - expire).abs() <= 1, "VALID UNTIL is the lease's expiry");
    // The grant is used, and the policy says so.
    let policy = as_root
        .get_workload_policy(paved_proto::secrets_broker::v1::GetWorkloadPolicyRequest {
            environment: "dev".into(),
            workload: "shop".into(),
        })
        .await
        .expect("policy")
        .into_inner()
        .policy
        .expect("policy");
    let grants: Vec<(&str, u64)> = policy.grants.iter().map(|g| (g.scope.as_str(), g.use_count)).collect();
    assert_eq!(grants, [("database:creds:shop", 1)]);

    // Refused: no scope, an unknown database, another's lease, an unknown lease.
    let other = issue("spiffe://paved/dev/billing", &["database:creds:billing"]).await;
    let mut as_other: Broker = SecretsBrokerServiceClient::new(authed(channel.clone(), &other.token));
    let status = as_other.issue_database_credentials(creds(None)).await.expect_err("no scope");
    assert!(status.code() == Code::PermissionDenied && status.message().contains("database:creds:shop"), "{}", status.message());
    let status = as_shop
        .issue_database_credentials(IssueDatabaseCredentialsRequest { database: "nope".into(), ttl: None })
        .await
        .expect_err("no such database");
    assert_eq!(status.code(), Code::PermissionDenied, "the scope is checked first: {}", status.message());
    let status = as_root
        .issue_database_credentials(IssueDatabaseCredentialsRequest { database: "nope".into(), ttl: None })
        .await
        .expect_err("no such database");
    assert_eq!(status.code(), Code::NotFound, "{}", status.message());
    let renew = |id: &str, increment: i64| RenewLeaseRequest { lease_id: id.into(), increment: seconds(increment) };
    let status = as_other.renew_lease(renew(&lease.lease_id, 60)).await.expect_err("another's lease");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = as_shop.renew_lease(renew("database/shop/nope", 60)).await.expect_err("unknown lease");
    assert_eq!(status.code(), Code::NotFound);
    let status = as_shop.renew_lease(renew("leases/x", 60)).await.expect_err("malformed lease id");
    assert_eq!(status.code(), Code::InvalidArgument);
    // Leases take tokens for the broker or the platform, not another service's.
    let audit_token = as_root
        .issue_token(IssueTokenRequest {
            subject: "spiffe://paved/dev/shop".into(),
            scopes: vec!["leases:manage".into()],
            audience: "audit".into(),
            ..Default::default()
        })
        .await
        .expect("token")
        .into_inner()
        .token;
    let mut as_audit: Broker = SecretsBrokerServiceClient::new(authed(channel.clone(), &audit_token));
    let status = as_audit.renew_lease(renew(&lease.lease_id, 60)).await.expect_err("wrong audience");
    assert_eq!(status.code(), Code::Unauthenticated, "{}", status.message());

    // Renewal moves VALID UNTIL, never past the maximum (2 h from issue).
    let renewed = as_shop.renew_lease(renew(&lease.lease_id, 1800)).await.expect("renew").into_inner().lease.expect("lease");
    let new_expire = renewed.expire_time.expect("expiry").seconds;
    assert!(new_expire > expire && (valid_until(&admin, &role).await - new_expire).abs() <= 1);
    let capped = as_shop.renew_lease(renew(&lease.lease_id, 7 * 3600)).await.expect("renew").into_inner().lease.expect("lease");
    let max = lease.max_expire_time.expect("max").seconds;
    assert_eq!(capped.expire_time.expect("expiry").seconds, max, "capped at the maximum");

    // Revocation ends the open session, drops the role and checks it gone.
    let out = cli(&shop.token, &["lease", "revoke", &lease.lease_id], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!role_exists(&admin, &role).await, "the role is gone");
    let after = session.query_one_raw(Statement::from_string(session.get_database_backend(), "SELECT 1")).await;
    assert!(after.is_err(), "its session was ended");
    assert!(login(&database, &role, &issued.password).await.is_err(), "no new session");
    let status = as_shop.renew_lease(renew(&lease.lease_id, 60)).await.expect_err("revoked");
    assert_eq!(status.code(), Code::FailedPrecondition);

    // Revoking the token that asked revokes what it leased.
    let short = as_shop.issue_database_credentials(creds(None)).await.expect("credentials").into_inner();
    assert!(role_exists(&admin, &short.username).await);
    let revoke = RevokeTokenRequest { target: Some(revoke_token_request::Target::TokenId(shop.info.expect("info").token_id)) };
    as_root.revoke_token(revoke).await.expect("revoke the token");
    eventually("the revoked token's role dropped", Duration::from_secs(5), || {
        let (admin, role) = (admin.clone(), short.username.clone());
        async move { (!role_exists(&admin, &role).await).then_some(()) }
    })
    .await;

    // By prefix: every lease of the database, for a holder of leases:manage.
    let holder = issue("spiffe://paved/dev/shop", &["database:creds:shop"]).await;
    let mut as_holder: Broker = SecretsBrokerServiceClient::new(authed(channel.clone(), &holder.token));
    let mut roles = Vec::new();
    for _ in 0..3 {
        roles.push(as_holder.issue_database_credentials(creds(None)).await.expect("credentials").into_inner().username);
    }
    let by_prefix = RevokeLeaseRequest { target: Some(Target::Prefix("database/shop/".into())) };
    let status = as_holder.revoke_lease(by_prefix.clone()).await.expect_err("needs leases:manage");
    assert_eq!(status.code(), Code::PermissionDenied);
    let done = as_root.revoke_lease(by_prefix).await.expect("revoke by prefix").into_inner();
    assert_eq!((done.revoked, done.failed), (3, 0));
    for role in &roles {
        assert!(!role_exists(&admin, role).await, "{role} dropped");
    }

    // A revocation that fails (the database away) is reported, retried with
    // backoff, and done once the database is back.
    let target: std::net::SocketAddr = "127.0.0.1:5432".parse().expect("addr");
    let mut flaky = Cuttable::start(target).await;
    let flaky_url = format!("postgres://postgres@127.0.0.1:{}/{database}", flaky.port);
    as_root
        .configure_database(ConfigureDatabaseRequest { name: "flaky".into(), connection_url: flaky_url, ..configure.clone() })
        .await
        .expect("configure through the forwarder");
    let flaky_creds = as_root
        .issue_database_credentials(IssueDatabaseCredentialsRequest { database: "flaky".into(), ttl: None })
        .await
        .expect("credentials")
        .into_inner();
    let flaky_lease = flaky_creds.lease.expect("lease").lease_id;
    flaky.cut();
    let status = as_root
        .revoke_lease(RevokeLeaseRequest { target: Some(Target::LeaseId(flaky_lease.clone())) })
        .await
        .expect_err("the database is away");
    assert_eq!(status.code(), Code::Unavailable, "{}", status.message());
    assert_eq!(status.get_details_error_info().expect("reason").reason, "LEASE_REVOCATION_FAILED");
    let listed = text(&cli(&root, &["lease", "list", "database/flaky/"], None).await.stdout);
    assert!(listed.contains("revocation failing"), "{listed}");
    let listed = cli(&root, &["lease", "list", "database/flaky/", "--output", "json"], None).await.stdout;
    let leases: Vec<serde_json::Value> = serde_json::from_slice(&listed).expect("lease list json");
    assert!(leases.iter().any(|l| l["revoke_attempts"].as_u64().is_some_and(|n| n > 0) && l["revoke_time"].is_null()), "{leases:?}");
    assert!(role_exists(&admin, &flaky_creds.username).await, "not dropped yet");
    flaky.restore().await;
    eventually("the failed revocation retried until done", Duration::from_secs(30), || {
        let (admin, role) = (admin.clone(), flaky_creds.username.clone());
        async move { (!role_exists(&admin, &role).await).then_some(()) }
    })
    .await;

    // Expiry, across a restart: a lease that expires while the broker is down
    // is revoked when it comes back.
    let brief = as_root.issue_database_credentials(creds(seconds(3))).await.expect("credentials").into_inner();
    let passwords = [issued.password.clone(), short.password.clone(), flaky_creds.password.clone(), brief.password.clone()];
    let audit = AuditServiceClient::new(authed(channel.clone(), &root));
    let entries = eventually("lease events in the audit log", Duration::from_secs(20), || {
        let mut audit = audit.clone();
        async move {
            let entries = audit.list_entries(ListEntriesRequest { page_size: 1000, page_token: String::new() }).await.ok()?.into_inner();
            let kinds: Vec<String> = entries.entries.iter().map(|e| e.r#type.clone()).collect();
            [
                "database.configured",
                "lease.issued",
                "lease.renewed",
                "lease.revoked",
                "lease.revoke_failed",
                "lease.denied",
                "database.denied",
            ]
            .iter()
            .all(|k| kinds.iter().any(|t| t.ends_with(k)))
            .then_some(entries)
        }
    })
    .await;
    stop(platform);
    assert!(role_exists(&admin, &brief.username).await, "still there while the broker is down");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = up(dir.path(), 2);
    eventually("the expired lease revoked after the restart", Duration::from_secs(10), || {
        let (admin, role) = (admin.clone(), brief.username.clone());
        async move { (!role_exists(&admin, &role).await).then_some(()) }
    })
    .await;
    stop(again);

    // No password in any log of the run.
    let mut logs = format!("{entries:?}");
    for file in ["up-1.log", "up-1.out", "up-2.log", "up-2.out"] {
        logs.push_str(&std::fs::read_to_string(dir.path().join(file)).expect("a log of the run"));
    }
    assert!(logs.contains("lease.revoked"), "the logs were captured");
    for password in passwords {
        assert!(!logs.contains(&password), "a database password leaked into the logs");
    }
}

/// A token revoked before verifiers knew leases nothing: refused as they
/// would refuse it (TOKEN_REVOKED), with a `database.denied` event and no
/// role. A revocation in flight holds the token's row, so a lease asked
/// meanwhile waits for it and is refused; one committed before it is found
/// by it and made due; one revoked while its role is being created leaves
/// no role behind.
#[tokio::test]
async fn a_revoked_token_leases_nothing() {
    use crate::secrets::{Tokens, holding, lock_waiters};
    use paved_secrets_broker::{authority::Target, database::Databases, leases::LeaseError, leases::Leases};
    use sea_orm::TransactionTrait;
    let url = postgres_database("it_lease_revoked").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = Tokens::open(&url, dir.path()).await;
    let group = unique("revoked_readers");
    tokens.db.execute_unprepared(&format!("CREATE ROLE {group} NOLOGIN")).await.expect("group role");
    let databases = Databases::new(tokens.db.clone(), tokens.authority.keys().clone(), tokens.relay.clone());
    let ttl = Duration::from_secs(600);
    databases.configure("test", "shop", &url, &group, (ttl, ttl)).await.expect("configure");
    let leases = Leases::new(tokens.db.clone(), tokens.relay.clone(), databases);
    let claims = |jti: &str| {
        let now = chrono::Utc::now().timestamp();
        let (sub, aud, jti) = ("shop".into(), "secrets-broker".into(), jti.into());
        paved_token::Claims { sub, aud, scp: vec![], iat: now, exp: now + 600, ren: 0, jti, kid: String::new(), dig: String::new() }
    };
    let members = "SELECT COUNT(*) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE g.rolname = $1";
    // Credentials for the token, asked in a task of their own; the lease id.
    let ask = |jti: &str| {
        let (leases, claims) = (leases.clone(), claims(jti));
        tokio::spawn(async move { leases.issue_database(&claims, "shop", None).await.map(|c| c.lease.lease_id) })
    };
    let revoke = |jti: String| {
        let authority = tokens.authority.clone();
        async move { authority.revoke("test", &Target::Token(jti), "compromised").await.expect("revoke") }
    };

    // Asked before the revocation: made due by it.
    let early = tokens.issue(None, "early").await;
    let lease = leases.issue_database(&claims(&early), "shop", None).await.expect("credentials").lease;
    revoke(early).await;
    let due = leases.lease(&lease.lease_id).await.expect("lease").expire_time_ms;
    assert!(due / 1000 <= chrono::Utc::now().timestamp(), "due now: {due:?}");
    assert_eq!(one_i64(&tokens.db, members, &group).await, Some(1), "its role, until the lease loop drops it");

    // Asked after it, before verifiers knew: refused.
    let late = tokens.issue(None, "late").await;
    revoke(late.clone()).await;
    let refused = leases.issue_database(&claims(&late), "shop", None).await.err().expect("a revoked token's lease");
    assert!(matches!(&refused, LeaseError::TokenRevoked(id) if *id == late), "{refused}");

    // Asked while it is in flight: waits for it, then refused.
    let racing = tokens.issue(None, "racing").await;
    let revoking = holding(&tokens.db, &racing, "revoke_time_ms = 1").await;
    let asked = ask(&racing);
    lock_waiters(&tokens.db, 1, "the lease to wait for the revocation holding its token's row").await;
    revoking.commit().await.expect("commit the revocation");
    let refused = asked.await.expect("task").expect_err("a lease of a token revoked meanwhile");
    assert!(matches!(&refused, LeaseError::TokenRevoked(id) if *id == racing), "{refused}");

    assert_eq!(one_i64(&tokens.db, members, &group).await, Some(1), "no role for a revoked token");

    // Recorded while a revocation waits for it: the revocation finds it.
    // (The lease waits to insert, holding its token's row; the revocation
    // waits for that row.)
    let recording = tokens.issue(None, "recording").await;
    let blocker = tokens.db.begin().await.expect("begin");
    blocker.execute_unprepared("LOCK TABLE leases IN SHARE MODE").await.expect("lock leases");
    let asked = ask(&recording);
    lock_waiters(&tokens.db, 1, "the lease to hold its token's row and wait to insert").await;
    let revoking = tokio::spawn(revoke(recording.clone()));
    lock_waiters(&tokens.db, 2, "the revocation to wait for the lease's hold on the token").await;
    blocker.commit().await.expect("let the lease insert");
    assert_eq!(revoking.await.expect("revocation"), 1);
    // Handed out before the revocation committed, or refused after it: due
    // either way, and its role goes with the loop's next look.
    match asked.await.expect("task") {
        Ok(id) => assert!(leases.lease(&id).await.expect("lease").expire_time_ms / 1000 <= chrono::Utc::now().timestamp()),
        Err(e) => assert!(matches!(e, LeaseError::Revoked(_)), "{e}"),
    }
    leases.revoke_due().await.expect("the loop's look");
    assert_eq!(one_i64(&tokens.db, members, &group).await, Some(0), "no role of a revoked token is left");

    // Revoked, and looked at by the loop, while its role is being created:
    // the loop finds no role to drop. Read again once the role exists, the
    // lease is due again and hands out nothing; the loop then drops the
    // role. (Role creation is held back, server-wide, for a moment.)
    let creating = tokens.issue(None, "creating").await;
    let roles_held = tokens.db.begin().await.expect("begin");
    roles_held.execute_unprepared("LOCK TABLE pg_authid IN SHARE MODE").await.expect("hold role creation back");
    let asked = ask(&creating);
    lock_waiters(&tokens.db, 1, "the lease's role creation to wait").await;
    revoke(creating.clone()).await;
    assert_eq!(leases.revoke_due().await.expect("the loop's look"), 1, "the lease, whose role is not there yet");
    roles_held.commit().await.expect("let the role be created");
    let refused = asked.await.expect("task").expect_err("a lease revoked before its role existed");
    assert!(matches!(&refused, LeaseError::Revoked(_)), "{refused}");
    leases.revoke_due().await.expect("the loop's next look");
    assert_eq!(one_i64(&tokens.db, members, &group).await, Some(0), "its role is dropped");

    let types = tokens.outbox_types().await;
    assert_eq!(types.iter().filter(|t| t.ends_with(".database.denied")).count(), 2, "{types:?}");
    assert_eq!(types.iter().filter(|t| t.ends_with(".lease.issued")).count(), 3, "{types:?}");
}
