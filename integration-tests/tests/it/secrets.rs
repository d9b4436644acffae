//! KV secrets end to end: `paved up` as a user runs it (its own process,
//! debug logs kept), the CLI writing, reading and watching secrets; scopes
//! per path; a tampered ciphertext; root key rotation; and a grep of every
//! log of the run for every value created.

use paved_integration_tests::{authed, bin_dir, clean_program, eventually, text};
use paved_proto::audit::v1::{ListEntriesRequest, audit_service_client::AuditServiceClient};
use paved_proto::secrets_broker::v1::{GetSecretRequest, IssueTokenRequest, secrets_broker_service_client::SecretsBrokerServiceClient};
use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};
use tonic::Code;

/// A `paved up` process, its endpoint and root token.
pub(crate) struct Up {
    child: std::process::Child,
    pub(crate) endpoint: String,
    pub(crate) root: String,
    /// Copies the rest of its standard output to `up-<n>.out`.
    output: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Up {
    /// Whatever ends a test (a failed assertion included), a `paved up`
    /// still running is stopped as Ctrl-C stops it, with its workloads.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            // Bounded: a paved up that does not stop fails the test, not hangs it.
            for _ in 0..300 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `paved up` in `dir` on a free port, start number `n`. Its logs go to
/// `dir/up-<n>.log`, its standard output to `dir/up-<n>.out`.
pub(crate) fn up(dir: &std::path::Path, n: u32) -> Up {
    up_with(dir, n, &[])
}

/// [`up`] with these environment variables too.
pub(crate) fn up_with(dir: &std::path::Path, n: u32, env: &[(&str, &str)]) -> Up {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    up_on(dir, n, port, &[], env)
}

/// [`up_with`] on `port`, with these arguments too.
pub(crate) fn up_on(dir: &std::path::Path, n: u32, port: u16, args: &[&str], env: &[(&str, &str)]) -> Up {
    up_from(&bin_dir().join("paved"), dir, n, port, args, env)
}

/// [`up_on`] with the `paved` binary installed at `paved`.
pub(crate) fn up_from(paved: &std::path::Path, dir: &std::path::Path, n: u32, port: u16, args: &[&str], env: &[(&str, &str)]) -> Up {
    let log = std::fs::File::create(dir.join(format!("up-{n}.log"))).expect("log file");
    let mut child = clean_program(paved)
        .args(["up", "--no-example"])
        .args(args)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "debug")
        .env("PAVED_CONFIG_DIR", dir.join("cli"))
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("paved up");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines().map_while(Result::ok);
    let mut seen = String::new();
    let token = lines
        .by_ref()
        .find_map(|l| {
            seen.push_str(&l);
            seen.push('\n');
            l.trim().starts_with("pvt1.").then(|| l.trim().to_string())
        })
        .expect("a root token printed");
    let dir = dir.to_path_buf();
    let output = std::thread::spawn(move || {
        let rest: Vec<String> = lines.collect();
        std::fs::write(dir.join(format!("up-{n}.out")), format!("{seen}{}", rest.join("\n"))).expect("write up.out");
    });
    Up { child, endpoint: format!("127.0.0.1:{port}"), root: token, output: Some(output) }
}

/// Kills it with SIGKILL, and waits for its output.
pub(crate) fn kill(mut up: Up) {
    let _ = up.child.kill();
    let _ = up.child.wait();
    if let Some(output) = up.output.take() {
        output.join().expect("output copied");
    }
}

/// Stops it as a user would (SIGTERM), and waits for its output.
pub(crate) fn stop(mut up: Up) {
    let _ = Command::new("kill").args(["-TERM", &up.child.id().to_string()]).status();
    let _ = up.child.wait();
    if let Some(output) = up.output.take() {
        output.join().expect("output copied");
    }
}

/// The `paved` CLI against `endpoint` presenting `token`, with `stdin`
/// written to it; the future owns its arguments.
pub(crate) fn paved_at(
    endpoint: &str,
    dir: &std::path::Path,
    token: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> impl Future<Output = std::process::Output> + use<> {
    let mut command = tokio::process::Command::new(bin_dir().join("paved"));
    command.args(args).args(["--endpoint", endpoint]).env("PAVED_TOKEN", token).env("PAVED_CONFIG_DIR", dir.join("cli"));
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let stdin = stdin.map(str::to_string);
    async move {
        let mut child = command.spawn().expect("paved");
        if let Some(text) = stdin {
            use tokio::io::AsyncWriteExt;
            child.stdin.take().expect("stdin").write_all(text.as_bytes()).await.expect("write stdin");
        }
        drop(child.stdin.take());
        child.wait_with_output().await.expect("paved output")
    }
}

#[tokio::test]
async fn secrets_are_versioned_scoped_watched_and_never_logged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first_up = up(dir.path(), 1);
    let (endpoint, root) = (first_up.endpoint.clone(), first_up.root.clone());
    let cli = |token: &str, args: &[&str], stdin: Option<&str>| paved_at(&endpoint, dir.path(), token, args, stdin);
    // Values that must never appear in a log.
    let first = "hunter2-FIRST-c0ffee";
    let second = "hunter2-SECOND-decaf";

    let out = cli(&root, &["secrets", "put", "dev/shop/db-password"], Some(&format!("{first}\n"))).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "dev/shop/db-password version 1\n");
    let out = cli(&root, &["secrets", "put", "dev/shop/db-password", "--value", second], None).await;
    assert_eq!(text(&out.stdout), "dev/shop/db-password version 2\n", "{}", text(&out.stderr));
    let out = cli(&root, &["secrets", "get", "dev/shop/db-password"], None).await;
    assert_eq!(text(&out.stdout), format!("{second}\n"));
    // The replaced version stays readable for the overlap window.
    let out = cli(&root, &["secrets", "get", "dev/shop/db-password", "--version", "1"], None).await;
    assert_eq!(text(&out.stdout), format!("{first}\n"));
    let out = cli(&root, &["secrets", "list", "dev/"], None).await;
    assert!(text(&out.stdout).contains("dev/shop/db-password") && !text(&out.stdout).contains("hunter2"), "{}", text(&out.stdout));
    let out = cli(&root, &["secrets", "list", "dev/", "--output", "json"], None).await;
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("secrets list json");
    assert!(listed.iter().any(|s| s["path"] == "dev/shop/db-password" && s["version"] == 2), "{listed:?}");
    assert!(!text(&out.stdout).contains("hunter2"), "values are never listed");

    // A workload's token reads its own paths and nothing else.
    let channel = paved::client::channel(&endpoint).await.expect("channel");
    let request = IssueTokenRequest {
        subject: "spiffe://paved/dev/shop".into(),
        scopes: vec!["secrets:read:dev/shop/*".into()],
        audience: "secrets-broker".into(),
        ..Default::default()
    };
    let shop = SecretsBrokerServiceClient::new(authed(channel.clone(), &root))
        .issue_token(request.clone())
        .await
        .expect("issue")
        .into_inner()
        .token;
    let mut as_shop = SecretsBrokerServiceClient::new(authed(channel.clone(), &shop));
    let secret = as_shop.get_secret(GetSecretRequest { path: "dev/shop/db-password".into(), version: 0 }).await.expect("own path");
    assert_eq!(secret.into_inner().secret.expect("secret").value, second.as_bytes());
    let denied = as_shop.get_secret(GetSecretRequest { path: "dev/billing/key".into(), version: 0 }).await.expect_err("other path");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains("secrets:read:dev/billing/key"), "{}", denied.message());
    let bad = as_shop.get_secret(GetSecretRequest { path: "dev/../etc".into(), version: 0 }).await.expect_err("bad path");
    assert_eq!(bad.code(), Code::InvalidArgument);
    // A wildcard covers what follows a separator: `dev/shop*` would also
    // cover `dev/shopping`, so it is no scope.
    let mut as_root = SecretsBrokerServiceClient::new(authed(channel.clone(), &root));
    let sloppy = IssueTokenRequest { scopes: vec!["secrets:read:dev/shop*".into()], ..request.clone() };
    assert_eq!(as_root.issue_token(sloppy).await.expect_err("prefix wildcard").code(), Code::InvalidArgument);
    // Secrets take tokens for the broker or the platform, not for another service.
    let elsewhere = IssueTokenRequest { audience: "provisioner".into(), ..request.clone() };
    let elsewhere = as_root.issue_token(elsewhere).await.expect("issue").into_inner().token;
    let mut as_elsewhere = SecretsBrokerServiceClient::new(authed(channel.clone(), &elsewhere));
    let status = as_elsewhere.get_secret(GetSecretRequest { path: "dev/shop/db-password".into(), version: 0 }).await.expect_err("audience");
    assert_eq!(status.code(), Code::Unauthenticated, "{}", status.message());
    let out = cli(&shop, &["secrets", "put", "dev/shop/db-password", "--value", "nope"], None).await;
    assert!(!out.status.success() && text(&out.stderr).contains("secrets:write:dev/shop/db-password"), "{}", text(&out.stderr));

    // A watch sees the current value, then a rotated one without a restart.
    let mut watch = tokio::process::Command::new(bin_dir().join("paved"))
        .args(["secrets", "watch", "dev/shop/db-password", "--endpoint", &endpoint])
        .env("PAVED_TOKEN", &shop)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("watch");
    let mut watched = tokio::io::BufReader::new(watch.stdout.take().expect("stdout"));
    let mut line = String::new();
    use tokio::io::AsyncBufReadExt;
    tokio::time::timeout(Duration::from_secs(10), watched.read_line(&mut line)).await.expect("first value").expect("read");
    assert_eq!(line.trim(), second);
    let third = "hunter2-THIRD-5ca1ab1e";
    assert!(cli(&root, &["secrets", "put", "dev/shop/db-password", "--value", third], None).await.status.success());
    line.clear();
    tokio::time::timeout(Duration::from_secs(5), watched.read_line(&mut line)).await.expect("rotated value pushed").expect("read");
    assert_eq!(line.trim(), third);
    drop(watch);

    // Generated secrets rotate by themselves.
    let out = cli(&root, &["secrets", "put", "dev/shop/api-key", "--generate", "24", "--rotate-every", "2s"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let generated = text(&cli(&root, &["secrets", "get", "dev/shop/api-key"], None).await.stdout).trim().to_string();
    assert_eq!(generated.len(), 32, "24 random bytes, base64url: {generated:?}");
    let rotated = eventually("the generated secret rotated", Duration::from_secs(10), || {
        let out = cli(&root, &["secrets", "get", "dev/shop/api-key"], None);
        let before = generated.clone();
        async move {
            let now = text(&out.await.stdout).trim().to_string();
            (now != before && now.len() == 32).then_some(now)
        }
    })
    .await;

    // Deleted: every version at once, only with the write scope; the
    // rotation stops with it, reads find nothing, and a watch ends saying so.
    let mut watch = tokio::process::Command::new(bin_dir().join("paved"))
        .args(["secrets", "watch", "dev/shop/api-key", "--endpoint", &endpoint])
        .env("PAVED_TOKEN", &root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("watch");
    let mut watched = tokio::io::BufReader::new(watch.stdout.take().expect("stdout"));
    line.clear();
    tokio::time::timeout(Duration::from_secs(10), watched.read_line(&mut line)).await.expect("the current value").expect("read");
    assert_eq!(line.trim().len(), 32, "{line:?}");
    let out = cli(&shop, &["secrets", "delete", "dev/shop/api-key"], None).await;
    assert!(!out.status.success() && text(&out.stderr).contains("secrets:write:dev/shop/api-key"), "{}", text(&out.stderr));
    let out = cli(&root, &["secrets", "delete", "dev/shop/api-key", "--output", "json"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let deleted: serde_json::Value = serde_json::from_slice(&out.stdout).expect("delete json");
    assert_eq!(deleted["path"], "dev/shop/api-key");
    assert!(deleted["versions"].as_u64().is_some_and(|n| n >= 2), "the rotated version and the one it replaced: {deleted}");
    let ended = tokio::time::timeout(Duration::from_secs(5), watch.wait_with_output()).await.expect("the watch ends").expect("watch");
    assert!(!ended.status.success() && text(&ended.stderr).contains("secret dev/shop/api-key was deleted"), "{}", text(&ended.stderr));
    for _ in 0..2 {
        let out = cli(&root, &["secrets", "get", "dev/shop/api-key"], None).await;
        assert!(!out.status.success() && text(&out.stderr).contains("no secret dev/shop/api-key"), "{}", text(&out.stderr));
        // Past its rotation period: nothing brings it back.
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    let out = cli(&root, &["secrets", "list", "dev/"], None).await;
    assert!(!text(&out.stdout).contains("api-key"), "{}", text(&out.stdout));
    let out = cli(&root, &["secrets", "delete", "dev/shop/api-key"], None).await;
    assert!(!out.status.success() && text(&out.stderr).contains("no secret dev/shop/api-key"), "{}", text(&out.stderr));

    // Reads, writes, deletions and denials are events, values never.
    let audit = AuditServiceClient::new(authed(channel.clone(), &root));
    let entries = eventually("secret events in the audit log", Duration::from_secs(20), || {
        let mut audit = audit.clone();
        async move {
            let entries = audit.list_entries(ListEntriesRequest { page_size: 1000, page_token: String::new() }).await.ok()?.into_inner();
            let kinds: Vec<String> = entries.entries.iter().map(|e| e.r#type.clone()).collect();
            ["secret.written", "secret.read", "secret.denied", "secret.rotated", "secret.deleted"]
                .iter()
                .all(|k| kinds.iter().any(|t| t.ends_with(k)))
                .then_some(entries)
        }
    })
    .await;
    let audit_dump = format!("{entries:?}");

    stop(first_up);
    // Tampered ciphertext: a flipped byte in the broker's database is
    // refused (DATA_LOSS), never decrypted to something else.
    let db = paved_store::connect(&paved_store::sqlite_url(&dir.path().join("data/secrets-broker.db"))).await.expect("broker db");
    use sea_orm::ConnectionTrait;
    db.execute_unprepared(
        // Byte 21 changed whatever it was (setting it to 0 would change
        // nothing one time in 256).
        "UPDATE secret_versions SET sealed_value = substr(sealed_value, 1, 20) \
         || CASE WHEN substr(sealed_value, 21, 1) = X'00' THEN X'01' ELSE X'00' END || substr(sealed_value, 22) \
         WHERE path = 'dev/shop/db-password' AND version = 3",
    )
    .await
    .map(|done| assert_eq!(done.rows_affected(), 1, "one version tampered with"))
    .expect("tamper");
    drop(db);
    let second_up = up(dir.path(), 2);
    let channel = paved::client::channel(&second_up.endpoint).await.expect("channel");
    let mut broker = SecretsBrokerServiceClient::new(authed(channel, &second_up.root));
    // Never the value in the test's output, should it open.
    let Err(tampered) = broker.get_secret(GetSecretRequest { path: "dev/shop/db-password".into(), version: 3 }).await else {
        panic!("a tampered ciphertext opened");
    };
    assert_eq!(tampered.code(), Code::DataLoss, "{}", tampered.message());
    let intact = broker.get_secret(GetSecretRequest { path: "dev/shop/db-password".into(), version: 2 }).await.expect("v2 intact");
    assert_eq!(
        intact.into_inner().secret.expect("secret").value,
        second.as_bytes(),
        "a restart keeps every value (root key from the data directory)"
    );
    stop(second_up);

    // Every log of the run: both starts of paved up (debug logs and
    // output), the audit log. No value anywhere.
    assert!(audit_dump.contains("dev/shop/db-password#3"), "the audit log names what was read");
    let mut logs = audit_dump;
    for file in ["up-1.log", "up-1.out", "up-2.log", "up-2.out"] {
        let log = std::fs::read_to_string(dir.path().join(file)).expect("a log of the run");
        let sign = if file.ends_with(".out") { "pvt1." } else { "DEBUG" };
        assert!(log.contains(sign), "{file} holds the run's output: {}", &log[..log.len().min(400)]);
        logs.push_str(&log);
    }
    for value in [first, second, third, generated.as_str(), rotated.as_str()] {
        assert!(!logs.contains(value), "a secret value leaked into the logs");
    }
}

/// Root key rotation: the new key opens nothing the old one sealed until
/// the keyring holds both; re-sealing moves every data key and signing key
/// to the new one, after which the old key is no longer needed.
#[tokio::test]
async fn root_key_rotation_reseals_without_downtime() {
    use paved_secrets_broker::{
        authority::Authority,
        ca::Ca,
        seal::{Keyring, RootKey},
        secrets::{Secrets, Value},
    };
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("temp dir");
    let db =
        paved_store::connect_and_migrate::<paved_secrets_broker::migration::Migrator>(&paved_store::sqlite_url(&dir.path().join("b.db")))
            .await
            .expect("db");
    let stream = paved_stream::open(&paved_store::sqlite_url(&dir.path().join("s.db")), 1000).await.expect("stream");
    let relay = paved_stream::outbox::Relay::new(db.clone(), stream);
    let (old, new) = (RootKey::from_bytes(&[1; 32]), RootKey::from_bytes(&[2; 32]));
    let open = |keys: Keyring| {
        let keys = Arc::new(keys);
        (
            Secrets::new(db.clone(), keys.clone(), relay.clone()),
            Authority::new(db.clone(), keys.clone(), relay.clone()),
            Ca::new(db.clone(), keys, relay.clone()),
        )
    };
    let certify = |ca: Ca| async move {
        let (_, csr) = paved_grpc::tls::new_key("spiffe://paved/dev/a").expect("key");
        ca.issue("test", "spiffe://paved/dev/a", &csr, Duration::from_secs(60), None).await.map(|_| ())
    };

    let (secrets, authority, ca) = open(Keyring::new(old.clone(), None));
    secrets.put("test", "dev/a/x", Value::Given(b"value-x".to_vec())).await.expect("put");
    let token = authority.issue("test", &paved_secrets_broker::root_grant()).await.expect("issue").0;
    certify(ca).await.expect("the first CA, made on first use");

    // The new key alone: what the old one sealed does not open.
    let (secrets, _, ca) = open(Keyring::new(new.clone(), None));
    assert!(secrets.get("dev/a/x", 0).await.is_err(), "the old seal needs the old key");
    assert!(certify(ca).await.is_err(), "the CA's key needs the old key");
    // Both: everything opens, then is re-sealed under the new one.
    let (secrets, authority, ca) = open(Keyring::new(new.clone(), Some(old.clone())));
    assert_eq!(secrets.get("dev/a/x", 0).await.expect("opens with the previous key").1, b"value-x");
    assert_eq!(secrets.rewrap().await.expect("rewrap"), (1, 0));
    assert_eq!(authority.rewrap().await.expect("rewrap signing keys"), 1);
    assert_eq!(ca.rewrap().await.expect("rewrap CA keys"), 1);
    assert_eq!(secrets.rewrap().await.expect("again"), (0, 0), "nothing left under the old key");
    assert_eq!(ca.rewrap().await.expect("again"), 0);
    // The new key alone now opens everything; tokens signed before still verify.
    let (secrets, authority, ca) = open(Keyring::new(new, None));
    assert_eq!(secrets.get("dev/a/x", 0).await.expect("opens with the new key").1, b"value-x");
    assert!(authority.introspect(&token).await.expect("key set").is_ok(), "signing keys survive the rotation");
    certify(ca).await.expect("the CA signs with its re-sealed key");
    let (secrets, ..) = open(Keyring::new(old, None));
    assert!(secrets.get("dev/a/x", 0).await.is_err(), "the old key opens nothing any more");
}

/// Secret zero: a bootstrap token, bound to one revision, exchanged once for
/// an identity that reads exactly the secrets the spec declares. A replay
/// is refused, reported and revokes the identity the first use got.
#[tokio::test]
async fn bootstrap_tokens_are_single_use_and_grant_only_declared_secrets() {
    use paved_proto::secrets_broker::v1::{
        ExchangeBootstrapTokenRequest, GetWorkloadPolicyRequest, IntrospectTokenRequest, IssueBootstrapTokenRequest,
        IssueCertificateRequest, ListWorkloadPoliciesRequest, PutSecretRequest,
    };
    use tonic_types::StatusExt;
    let (_dir, platform, _svc) = crate::rollouts::embedded().await;
    let endpoint = platform.addr.to_string();
    let channel = paved::client::channel(&endpoint).await.expect("channel");
    let mut root = SecretsBrokerServiceClient::new(authed(channel.clone(), &platform.root_token));
    for path in ["dev/shop/db-password", "dev/shop/undeclared", "dev/billing/key"] {
        let put = PutSecretRequest { path: path.into(), value: format!("value of {path}").into_bytes(), ..Default::default() };
        root.put_secret(put).await.expect("put");
    }
    // What the process runs: the exchange must present it.
    let digest = format!("sha256:{}", "ab".repeat(32));
    let request = IssueBootstrapTokenRequest {
        environment: "dev".into(),
        workload: "shop".into(),
        revision_id: "rev-1".into(),
        artifact_digest: digest.clone(),
        secrets: vec!["db-password".into()],
        ttl: None,
        databases: Vec::new(),
        certificate: false,
    };
    let issued = root.issue_bootstrap_token(request.clone()).await.expect("bootstrap").into_inner();
    assert_eq!(issued.scopes, ["secrets:read:dev/shop/db-password"], "the policy compiled from the declared secrets");
    let ttl = issued.expire_time.expect("expiry").seconds - chrono::Utc::now().timestamp();
    assert!((55..=60).contains(&ttl), "60 s by default: {ttl}");

    // Bad requests name their fields; a token without bootstrap:issue is refused.
    let bad = IssueBootstrapTokenRequest {
        workload: "Shop!".into(),
        secrets: vec!["a/b".into()],
        databases: vec!["orders".into(), "Bad DB".into()],
        artifact_digest: "sha256:abc".into(),
        ..request.clone()
    };
    let status = root.issue_bootstrap_token(bad).await.expect_err("invalid");
    let fields: Vec<String> = status.get_details_bad_request().expect("violations").field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["workload", "secrets[0]", "databases[1]", "artifact_digest"]);
    // Per workload: a pipeline for dev mints no identity for prod.
    let pipeline = IssueTokenRequest {
        subject: "pipeline".into(),
        scopes: vec!["write:secrets-broker".into(), "bootstrap:issue:dev/*".into()],
        ..Default::default()
    };
    let pipeline = root.issue_token(pipeline).await.expect("pipeline token").into_inner().token;
    let mut as_pipeline = SecretsBrokerServiceClient::new(authed(channel.clone(), &pipeline));
    as_pipeline.issue_bootstrap_token(request.clone()).await.expect("for dev/shop");
    let prod = IssueBootstrapTokenRequest { environment: "prod".into(), ..request.clone() };
    let status = as_pipeline.issue_bootstrap_token(prod).await.expect_err("for prod/shop");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("bootstrap:issue:prod/shop"), "{}", status.message());

    // The exchange needs no other credential; it gives the workload's identity.
    let mut open = SecretsBrokerServiceClient::new(channel.clone());
    let exchange = || ExchangeBootstrapTokenRequest { bootstrap_token: issued.bootstrap_token.clone(), artifact_digest: digest.clone() };
    let identity = open.exchange_bootstrap_token(exchange()).await.expect("exchange").into_inner();
    let info = identity.info.expect("info");
    assert_eq!(info.subject, "spiffe://paved/dev/shop");
    assert_eq!(info.scopes, ["secrets:read:dev/shop/db-password"]);
    assert_eq!(info.artifact_digest, digest, "the identity carries the digest it proved");
    let introspected = root.introspect_token(IntrospectTokenRequest { token: identity.token.clone() }).await.expect("introspect");
    assert_eq!(introspected.into_inner().info.expect("claims").artifact_digest, digest, "in the signed claims");
    let mut workload = SecretsBrokerServiceClient::new(authed(channel.clone(), &identity.token));
    let get = |path: &str| paved_proto::secrets_broker::v1::GetSecretRequest { path: path.into(), version: 0 };
    let read = workload.get_secret(get("dev/shop/db-password")).await.expect("its declared secret").into_inner();
    assert_eq!(read.secret.expect("secret").value, b"value of dev/shop/db-password");
    for other in ["dev/shop/undeclared", "dev/billing/key"] {
        let status = workload.get_secret(get(other)).await.expect_err("not declared");
        assert_eq!(status.code(), Code::PermissionDenied, "{other}");
    }
    // The identity is no platform caller: the provisioner refuses it.
    let status =
        paved_proto::provisioner::v1::provisioner_service_client::ProvisionerServiceClient::new(authed(channel.clone(), &identity.token))
            .list_workloads(paved_proto::provisioner::v1::ListWorkloadsRequest::default())
            .await
            .expect_err("audience secrets-broker only");
    assert_eq!(status.code(), Code::Unauthenticated);

    // A second use: refused, reported, and the first identity revoked.
    let status = open.exchange_bootstrap_token(exchange()).await.expect_err("replayed");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.get_details_error_info().expect("reason").reason, "BOOTSTRAP_REPLAYED");
    assert!(!status.message().contains(&issued.bootstrap_token[5..20]), "never the token in an error");
    let answer = root.introspect_token(IntrospectTokenRequest { token: identity.token.clone() }).await.expect("introspect").into_inner();
    assert!(!answer.active && answer.reason == "token revoked", "{answer:?}");
    eventually("the revoked identity refused", Duration::from_secs(5), || {
        let mut workload = workload.clone();
        async move { workload.get_secret(get("dev/shop/db-password")).await.err().filter(|s| s.code() == Code::Unauthenticated) }
    })
    .await;
    // Two racing exchanges of one token: one is a replay, and whichever
    // way the race went, no identity from that token stays valid.
    for _ in 0..5 {
        let token = root.issue_bootstrap_token(request.clone()).await.expect("bootstrap").into_inner().bootstrap_token;
        let exchange = || {
            let mut open = open.clone();
            let bootstrap_token = token.clone();
            let artifact_digest = digest.clone();
            async move { open.exchange_bootstrap_token(ExchangeBootstrapTokenRequest { bootstrap_token, artifact_digest }).await }
        };
        let (a, b) = tokio::join!(exchange(), exchange());
        let replayed = [&a, &b]
            .iter()
            .filter(|r| r.as_ref().err().and_then(|s| s.get_details_error_info()).is_some_and(|i| i.reason == "BOOTSTRAP_REPLAYED"))
            .count();
        assert!(replayed >= 1, "a second exchange is a replay: {a:?} {b:?}");
        for won in [a, b].into_iter().flatten() {
            let token = won.into_inner().token;
            let answer = root.introspect_token(IntrospectTokenRequest { token }).await.expect("introspect").into_inner();
            assert!(!answer.active, "an identity from a replayed token is revoked: {answer:?}");
        }
    }
    // Unknown and expired bootstrap tokens.
    let status = open
        .exchange_bootstrap_token(ExchangeBootstrapTokenRequest { bootstrap_token: "pvb1.nope".into(), ..Default::default() })
        .await
        .expect_err("unknown");
    assert_eq!(status.get_details_error_info().expect("reason").reason, "BOOTSTRAP_UNKNOWN");
    // A process running another executable, or proving none: refused,
    // reported, and the token spent (the right digest after it is a replay).
    let other = format!("sha256:{}", "cd".repeat(32));
    for (presented, shown) in [(other.as_str(), other.as_str()), ("", "no digest")] {
        let token = root.issue_bootstrap_token(request.clone()).await.expect("bootstrap").into_inner().bootstrap_token;
        let wrong = ExchangeBootstrapTokenRequest { bootstrap_token: token.clone(), artifact_digest: presented.into() };
        let status = open.exchange_bootstrap_token(wrong).await.expect_err("another artifact");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert_eq!(status.get_details_error_info().expect("reason").reason, "ARTIFACT_MISMATCH");
        assert!(status.message().contains(shown) && status.message().contains(&digest), "{}", status.message());
        let right = ExchangeBootstrapTokenRequest { bootstrap_token: token, artifact_digest: digest.clone() };
        let status = open.exchange_bootstrap_token(right).await.expect_err("spent");
        assert_eq!(status.get_details_error_info().expect("reason").reason, "BOOTSTRAP_REPLAYED");
    }
    let short = IssueBootstrapTokenRequest { ttl: Some(prost_types::Duration { seconds: 1, nanos: 0 }), ..request };
    let short = root.issue_bootstrap_token(short).await.expect("bootstrap").into_inner().bootstrap_token;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let status = open
        .exchange_bootstrap_token(ExchangeBootstrapTokenRequest { bootstrap_token: short, artifact_digest: digest.clone() })
        .await
        .expect_err("expired");
    assert_eq!(status.get_details_error_info().expect("reason").reason, "BOOTSTRAP_EXPIRED");

    // The provisioner asks for a bootstrap token for each process it starts
    // and exchanges it, proving the digest of the program it starts (here
    // `sh`): the process gets an identity for exactly what its spec
    // declares, carrying that digest.
    let handed = _dir.path().join("bootstrap-token");
    let spec = paved_integration_tests::handing_spec(&handed, "secrets: [db-password, api-key]\ndatabases: [orders]\ncertificate: true\n");
    let mut provisioner = paved_proto::provisioner::v1::provisioner_service_client::ProvisionerServiceClient::new(authed(
        channel.clone(),
        &platform.root_token,
    ));
    let apply = paved_proto::provisioner::v1::ApplyWorkloadRequest {
        environment: "dev".into(),
        spec_yaml: spec,
        spec_path: String::new(),
        request_id: String::new(),
        spec: None,
    };
    provisioner.apply_workload(apply).await.expect("deploy a workload declaring a secret");
    let (token, broker_url) = paved_integration_tests::handed(&handed, Duration::from_secs(20)).await;
    assert_eq!(broker_url, format!("http://{endpoint}"));
    let info = root.introspect_token(IntrospectTokenRequest { token: token.clone() }).await.expect("introspect").into_inner();
    let info = info.info.expect("an active identity");
    let compiled = ["secrets:read:dev/shop/db-password", "secrets:read:dev/shop/api-key", "database:creds:orders", "certs:issue:dev/shop"];
    assert_eq!(info.scopes, compiled, "compiled from the spec's secrets, databases and certificate");
    assert_eq!(info.subject, "spiffe://paved/dev/shop");
    let sh = paved_local::file_digest(&paved_integration_tests::which("sh")).expect("sh");
    assert_eq!(info.artifact_digest, sh, "the digest of the program the runtime started");
    let mut workload = SecretsBrokerServiceClient::new(authed(channel.clone(), &token));
    let read = workload.get_secret(get("dev/shop/db-password")).await.expect("the workload reads its secret").into_inner();
    assert_eq!(read.secret.expect("secret").value, b"value of dev/shop/db-password");
    // `certificate: true`: a certificate for its own SPIFFE id (the key
    // made here, by the workload), and for no other.
    let (_, csr_pem) = paved_grpc::tls::new_key("spiffe://paved/dev/shop").expect("key");
    let own = IssueCertificateRequest { csr_pem: csr_pem.clone(), spiffe_id: String::new(), ttl: None };
    let issued = workload.issue_certificate(own).await.expect("the workload's own certificate").into_inner();
    assert_eq!(issued.spiffe_id, "spiffe://paved/dev/shop");
    let chain = paved_grpc::tls::certificates(&issued.certificate_pem).expect("PEM");
    assert_eq!(paved_grpc::tls::spiffe_id(&chain[0]).as_deref(), Some("spiffe://paved/dev/shop"), "the SPIFFE id in the certificate");
    let other = IssueCertificateRequest { csr_pem, spiffe_id: "spiffe://paved/dev/billing".into(), ttl: None };
    let status = workload.issue_certificate(other).await.expect_err("another workload's id");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // The compiled policy, each grant with its uses: api-key was declared
    // but never read, and is reported.
    let policy = eventually("the read counted in the policy", Duration::from_secs(10), || {
        let mut root = root.clone();
        async move {
            let request = GetWorkloadPolicyRequest { environment: "dev".into(), workload: "shop".into() };
            let policy = root.get_workload_policy(request).await.ok()?.into_inner().policy?;
            policy.grants.iter().any(|g| g.use_count > 0).then_some(policy)
        }
    })
    .await;
    assert_eq!(policy.spiffe_id, "spiffe://paved/dev/shop");
    let uses: Vec<(&str, bool)> = policy.grants.iter().map(|g| (g.scope.as_str(), g.use_count > 0)).collect();
    assert_eq!(
        uses,
        [
            ("secrets:read:dev/shop/db-password", true),
            ("secrets:read:dev/shop/api-key", false),
            ("database:creds:orders", false),
            ("certs:issue:dev/shop", true)
        ]
    );
    let status = root
        .get_workload_policy(GetWorkloadPolicyRequest { environment: "dev".into(), workload: "nothing".into() })
        .await
        .expect_err("no such policy");
    assert_eq!(status.code(), Code::NotFound);
    let unused = ListWorkloadPoliciesRequest { unused_only: true, ..Default::default() };
    let unused = root.list_workload_policies(unused).await.expect("unused grants").into_inner().policies;
    assert!(unused.iter().any(|p| p.spiffe_id == "spiffe://paved/dev/shop"), "{unused:?}");
    // As a user sees it.
    let cli = |args: &'static [&'static str]| crate::secrets::paved_at(&endpoint, _dir.path(), &platform.root_token, args, None);
    let shown = cli(&["secrets", "policy", "shop", "--env", "dev"]).await;
    let out = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    assert!(
        out.contains("spiffe://paved/dev/shop")
            && out.contains("2 grant(s) never used: secrets:read:dev/shop/api-key, database:creds:orders"),
        "{out}"
    );
    let shown = cli(&["secrets", "policy", "--unused"]).await;
    assert!(String::from_utf8_lossy(&shown.stdout).contains("secrets:read:dev/shop/api-key"));
    let shown = cli(&["secrets", "policy", "shop"]).await;
    assert!(!shown.status.success() && String::from_utf8_lossy(&shown.stderr).contains("--env is needed"));

    // Every step is an event.
    let audit = AuditServiceClient::new(authed(channel.clone(), &platform.root_token));
    eventually("bootstrap events in the audit log", Duration::from_secs(20), || {
        let mut audit = audit.clone();
        async move {
            let entries = audit.list_entries(ListEntriesRequest { page_size: 1000, page_token: String::new() }).await.ok()?.into_inner();
            let kinds: Vec<String> = entries.entries.iter().map(|e| e.r#type.clone()).collect();
            [
                "bootstrap.issued",
                "bootstrap.exchanged",
                "bootstrap.replayed",
                "bootstrap.refused",
                "bootstrap.artifact_mismatch",
                "token.revoked",
            ]
            .iter()
            .all(|k| kinds.iter().any(|t| t.ends_with(k)))
            .then_some(())
        }
    })
    .await;
    platform.stop().await.expect("stop");
}

/// Writers racing on one path (several replicas on PostgreSQL): each write
/// gets its own version, none fails.
#[tokio::test]
async fn concurrent_writes_to_one_path_each_get_a_version() {
    use paved_secrets_broker::{
        seal::{Keyring, RootKey},
        secrets::{Secrets, Value},
    };
    let url = paved_integration_tests::postgres_database("secrets_race").await;
    let db = paved_store::connect_and_migrate::<paved_secrets_broker::migration::Migrator>(&url).await.expect("broker database");
    let dir = tempfile::tempdir().expect("temp dir");
    let stream = paved_stream::open(&paved_store::sqlite_url(&dir.path().join("s.db")), 1000).await.expect("stream");
    let keys = std::sync::Arc::new(Keyring::new(RootKey::from_bytes(&[7; 32]), None));
    // One Secrets per "replica": no shared in-process state between them.
    let writes = (0..8).map(|i| {
        let secrets = Secrets::new(db.clone(), keys.clone(), paved_stream::outbox::Relay::new(db.clone(), stream.clone()));
        async move { secrets.put("test", "dev/race/key", Value::Given(format!("value-{i}").into_bytes())).await }
    });
    let mut versions: Vec<u32> =
        futures::future::join_all(writes).await.into_iter().map(|r| r.expect("every write lands").version).collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=8).collect::<Vec<u32>>());
}

/// On PostgreSQL: a later revision's policy replaces the earlier one, and
/// uses add up across batches of read events.
#[tokio::test]
async fn policies_and_their_uses_on_postgres() {
    use paved_secrets_broker::{act::Act, bootstrap::Binding, policy};
    let url = paved_integration_tests::postgres_database("policy_uses").await;
    let db = paved_store::connect_and_migrate::<paved_secrets_broker::migration::Migrator>(&url).await.expect("broker database");
    let binding = |revision: &str, secrets: &[&str]| Binding {
        environment: "dev".into(),
        workload: "shop".into(),
        revision_id: revision.into(),
        artifact_digest: String::new(),
        secrets: secrets.iter().map(|s| s.to_string()).collect(),
        databases: vec!["orders".into()],
        certificate: false,
    };
    policy::compiled(&db, &binding("r1", &["a"]), 1_000).await.expect("compiled");
    policy::compiled(&db, &binding("r2", &["a", "b"]), 2_000).await.expect("compiled again");
    let read =
        |actor: &str, target: &str| Act { action: "secret.read".into(), actor: actor.into(), target: target.into(), ..Default::default() };
    let leased = Act { action: "lease.issued".into(), ..read("spiffe://paved/dev/shop", "database/orders/0190-ab") };
    let batch = [
        read("spiffe://paved/dev/shop", "dev/shop/a#1"),
        read("spiffe://paved/dev/shop", "dev/shop/a#2"),
        read("root", "dev/shop/b#1"),
        leased,
    ];
    policy::note_uses(&db, policy::uses(&batch), 3_000).await.expect("uses");
    policy::note_uses(&db, policy::uses(&batch[..1]), 4_000).await.expect("more uses");
    let policy = policy::get(&db, "dev", "shop").await.expect("get").expect("a policy");
    assert_eq!(policy.revision_id, "r2");
    let grants: Vec<(&str, u64, Option<i64>, Option<i64>)> = policy
        .grants
        .iter()
        .map(|g| (g.scope.as_str(), g.use_count, g.first_use_ms.map(|t| t / 1000), g.last_use_ms.map(|t| t / 1000)))
        .collect();
    // root's read is no use of the workload's grant.
    assert_eq!(
        grants,
        [
            ("secrets:read:dev/shop/a", 3, Some(3), Some(4)),
            ("secrets:read:dev/shop/b", 0, None, None),
            ("database:creds:orders", 1, Some(3), Some(3))
        ]
    );
    let (unused, read) = policy::list(&db, "dev", true, 10, 0).await.expect("list");
    assert_eq!((unused.len(), read), (1, 1));
    assert!(policy::get(&db, "prod", "shop").await.expect("get").is_none());
}

/// A replaced version is readable for the overlap window, then destroyed:
/// asking for it is SECRET_VERSION_EXPIRED, the latest stays (PostgreSQL).
#[tokio::test]
async fn replaced_versions_are_destroyed_after_the_overlap() {
    use paved_secrets_broker::{
        seal::{Keyring, RootKey},
        secrets::{SecretError, Secrets, Value},
    };
    use sea_orm::ConnectionTrait;
    let url = paved_integration_tests::postgres_database("secrets_prune").await;
    let db = paved_store::connect_and_migrate::<paved_secrets_broker::migration::Migrator>(&url).await.expect("broker database");
    let dir = tempfile::tempdir().expect("temp dir");
    let stream = paved_stream::open(&paved_store::sqlite_url(&dir.path().join("s.db")), 1000).await.expect("stream");
    let keys = std::sync::Arc::new(Keyring::new(RootKey::from_bytes(&[7; 32]), None));
    let secrets = Secrets::new(db.clone(), keys, paved_stream::outbox::Relay::new(db.clone(), stream));
    for value in ["one", "two", "three"] {
        secrets.put("test", "dev/prune/key", Value::Given(value.as_bytes().to_vec())).await.expect("put");
    }
    assert_eq!(secrets.prune().await.expect("prune"), 0, "within the overlap nothing goes");
    assert_eq!(secrets.get("dev/prune/key", 1).await.expect("version 1 within its overlap").1, b"one");
    // Version 1 replaced two hours ago, version 2 just now.
    let back = chrono::Utc::now().timestamp_millis() - 2 * 3600 * 1000;
    db.execute_unprepared(&format!("UPDATE secret_versions SET superseded_time_ms = {back} WHERE path = 'dev/prune/key' AND version = 1"))
        .await
        .expect("age version 1");
    assert_eq!(secrets.prune().await.expect("prune"), 1);
    let Err(SecretError::Expired(_, 1)) = secrets.get("dev/prune/key", 1).await else { panic!("version 1 is gone, and said so") };
    assert_eq!(secrets.get("dev/prune/key", 2).await.expect("version 2 within its overlap").1, b"two");
    assert_eq!(secrets.get("dev/prune/key", 0).await.expect("the latest").1, b"three");
    let Err(SecretError::NotFound(_)) = secrets.get("dev/prune/key", 9).await else { panic!("a version never written") };
    // Its event, not yet relayed (no relay runs here), names the version.
    let destroyed: Vec<String> =
        outbox(&db).await.into_iter().filter(|e| e.r#type.ends_with("secret.destroyed")).map(|e| e.subject).collect();
    assert_eq!(destroyed, ["secrets/dev/prune/key#1"]);
}

/// The broker's token authority on its database at `url` (events relayed
/// to a stream in `dir`), as the broker builds it, for tests of what lies
/// under its RPCs.
#[derive(Clone)]
pub(crate) struct Tokens {
    pub(crate) db: sea_orm::DatabaseConnection,
    pub(crate) relay: paved_stream::outbox::Relay,
    pub(crate) authority: paved_secrets_broker::authority::Authority,
}

impl Tokens {
    pub(crate) async fn open(url: &str, dir: &std::path::Path) -> Self {
        use paved_secrets_broker::seal::{Keyring, RootKey};
        let db = paved_store::connect_and_migrate::<paved_secrets_broker::migration::Migrator>(url).await.expect("db");
        let stream = paved_stream::open(&paved_store::sqlite_url(&dir.join("s.db")), 1000).await.expect("stream");
        let relay = paved_stream::outbox::Relay::new(db.clone(), stream);
        let keys = std::sync::Arc::new(Keyring::new(RootKey::from_bytes(&[3; 32]), None));
        let authority = paved_secrets_broker::authority::Authority::new(db.clone(), keys, relay.clone());
        Self { db, relay, authority }
    }

    /// A token for `subject`, issued with `parent`'s; its id.
    pub(crate) async fn issue(&self, parent: Option<&str>, subject: &str) -> String {
        self.authority.issue("test", &grant(parent, subject)).await.expect("issue").1.token_id
    }

    /// The types of the events in the outbox (relayed or not).
    pub(crate) async fn outbox_types(&self) -> Vec<String> {
        outbox(&self.db).await.into_iter().map(|e| e.r#type).collect()
    }
}

/// The events in `db`'s outbox, not yet relayed.
async fn outbox(db: &sea_orm::DatabaseConnection) -> Vec<paved_stream::Envelope> {
    use sea_orm::ConnectionTrait;
    let query = sea_orm::Statement::from_string(db.get_database_backend(), "SELECT payload FROM outbox");
    let rows = db.query_all_raw(query).await.expect("outbox");
    rows.iter().map(|r| paved_stream::event::decode(&r.try_get::<Vec<u8>>("", "payload").expect("payload")).expect("event")).collect()
}

pub(crate) fn grant(parent: Option<&str>, subject: &str) -> paved_secrets_broker::authority::Grant {
    paved_secrets_broker::authority::Grant {
        parent: parent.map(str::to_string),
        subject: subject.into(),
        ..paved_secrets_broker::root_grant()
    }
}

/// Waits until `n` sessions of `db`'s PostgreSQL database wait for a lock.
pub(crate) async fn lock_waiters(db: &sea_orm::DatabaseConnection, n: i64, what: &str) {
    use sea_orm::ConnectionTrait;
    let waiting = sea_orm::Statement::from_string(
        sea_orm::DbBackend::Postgres,
        "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    );
    paved_integration_tests::eventually(what, Duration::from_secs(5), || async {
        let found = db.query_one_raw(waiting.clone()).await.ok().flatten().and_then(|r| r.try_get::<i64>("", "n").ok());
        (found == Some(n)).then_some(())
    })
    .await;
}

/// A transaction of its own on PostgreSQL that has updated a token's row
/// (`set`, SQL) and holds it until it ends.
pub(crate) async fn holding(db: &sea_orm::DatabaseConnection, jti: &str, set: &str) -> sea_orm::DatabaseTransaction {
    use sea_orm::TransactionTrait;
    let txn = db.begin().await.expect("begin");
    update_token(&txn, jti, set).await;
    txn
}

/// Updates a token's row (`set`, SQL) in `txn`, waiting for its lock.
async fn update_token(txn: &sea_orm::DatabaseTransaction, jti: &str, set: &str) {
    use sea_orm::ConnectionTrait;
    let update = sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        format!("UPDATE tokens SET {set} WHERE jti = $1"),
        [jti.into()],
    );
    txn.execute_raw(update).await.expect("update the token's row");
}

/// Revoking a token takes every token issued with it, at any depth, and no
/// other; the walk is served by an index on both databases, since the
/// tokens table keeps every token ever issued.
async fn revocation_walks_descendants(url: &str) {
    use paved_secrets_broker::authority::{AuthorityError, Target, children};
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = Tokens::open(url, dir.path()).await;
    let (db, authority) = (&tokens.db, &tokens.authority);
    let a = tokens.issue(None, "a").await;
    let b = tokens.issue(Some(&a), "b").await;
    let (c1, c2) = (tokens.issue(Some(&b), "c1").await, tokens.issue(Some(&b), "c2").await);
    let d = tokens.issue(Some(&c2), "d").await;
    let other = tokens.issue(None, "other").await;
    let sibling = tokens.issue(Some(&other), "sibling").await;

    assert_eq!(authority.revoke("test", &Target::Token(b.clone()), "compromised").await.expect("revoke"), 4, "b, c1, c2 and d");
    for (id, revoked) in [(&a, false), (&b, true), (&c1, true), (&c2, true), (&d, true), (&other, false), (&sibling, false)] {
        let info = authority.token(id).await.expect("token").expect("stored");
        assert_eq!(info.revoke_time_ms.is_some(), revoked, "token of {}", info.subject);
    }
    assert_eq!(authority.revoke("test", &Target::Token(a.clone()), "again").await.expect("revoke"), 1, "what is revoked is not again");

    // A revoked token that asks before verifiers know gets nothing, and that
    // is an event.
    let refused = authority.issue("test", &grant(Some(&c1), "late")).await.expect_err("a child of a revoked token");
    assert!(matches!(&refused, AuthorityError::Revoked(id) if *id == c1), "{refused}");
    let types = tokens.outbox_types().await;
    assert_eq!(types.iter().filter(|t| t.ends_with(".token.denied")).count(), 1, "{types:?}");
    assert_eq!(types.iter().filter(|t| t.ends_with(".token.revoked")).count(), 5);

    // On PostgreSQL, a revocation in flight: the batch asking for a child
    // of the token waits on the token's row, then sees it revoked.
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        let parent = tokens.issue(Some(&other), "racing").await;
        let revoking = holding(db, &parent, "revoke_time_ms = 1").await;
        let late = tokio::spawn({
            let (authority, g) = (authority.clone(), grant(Some(&parent), "late-race"));
            async move { authority.issue("test", &g).await }
        });
        lock_waiters(db, 1, "the issuing batch to wait for the revocation holding its parent's row").await;
        revoking.commit().await.expect("commit the revocation");
        let refused = late.await.expect("task").expect_err("a child of a token revoked meanwhile");
        assert!(matches!(&refused, AuthorityError::Revoked(id) if *id == parent), "{refused}");
    }

    // More children than one statement takes: every one is revoked.
    let mut kids = tokio::task::JoinSet::new();
    for n in 0..1_100 {
        let (tokens, other) = (tokens.clone(), other.clone());
        kids.spawn(async move { tokens.issue(Some(&other), &format!("kid-{n}")).await });
    }
    while let Some(kid) = kids.join_next().await {
        kid.expect("issued");
    }
    // (The racing token, revoked already, is not counted again.)
    assert_eq!(authority.revoke("test", &Target::Token(other.clone()), "all").await.expect("revoke"), 1_102, "other, sibling, 1,100 kids");

    // The plan of one level of the walk names the index. PostgreSQL is told
    // not to scan, as it rightly would on a table this small.
    let txn = db.begin().await.expect("begin");
    let backend = txn.get_database_backend();
    let mut statement = backend.build(&children(&[a.clone(), b.clone()]));
    let (explain, column) = if backend == sea_orm::DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL enable_seqscan = off").await.expect("no scans");
        ("EXPLAIN", "QUERY PLAN")
    } else {
        ("EXPLAIN QUERY PLAN", "detail")
    };
    statement.sql = format!("{explain} {}", statement.sql);
    let plan: Vec<String> =
        txn.query_all_raw(statement).await.expect("explain").iter().map(|r| r.try_get::<String>("", column).expect("plan")).collect();
    assert!(plan.iter().any(|line| line.contains("tokens_by_parent")), "the walk uses the index: {plan:?}");
}

#[tokio::test]
async fn revocation_walks_descendants_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    revocation_walks_descendants(&paved_store::sqlite_url(&dir.path().join("b.db"))).await;
}

#[tokio::test]
async fn revocation_walks_descendants_on_postgres() {
    revocation_walks_descendants(&paved_integration_tests::postgres_database("it_revoke").await).await;
}

/// Transactions that lock tokens in different orders may deadlock, and
/// PostgreSQL then aborts one: a revocation (a level, then its children)
/// or a batch of issued tokens (their parents, in key order) so aborted is
/// run again and succeeds. Each deadlock is built with a transaction of the
/// test's own, which waits longest so that PostgreSQL aborts the other; the
/// test checks each was run again. (Not by PostgreSQL's deadlock count: its
/// statistics were seen to lag by more than 30 s on a loaded machine.)
#[tokio::test]
async fn deadlocked_revocations_and_batches_are_run_again_on_postgres() {
    use paved_secrets_broker::authority::Target;
    use sea_orm::ConnectionTrait;
    let url = paved_integration_tests::postgres_database("it_deadlock").await;
    // The broker's sessions look for a deadlock 3 s into a wait (1 s by
    // default), so a loaded machine still builds the cycle before they look.
    let admin = paved_store::connect(&url).await.expect("admin");
    let database = url.rsplit('/').next().expect("database name");
    admin.execute_unprepared(&format!("ALTER DATABASE \"{database}\" SET deadlock_timeout = '3s'")).await.expect("deadlock_timeout");
    let dir = tempfile::tempdir().expect("temp dir");
    let tokens = Tokens::open(&url, dir.path()).await;
    let db = &tokens.db;
    let rerun = paved_store::conflicts_rerun();
    let patient = "SET LOCAL deadlock_timeout = '60s'";
    // An update that changes nothing but takes the row.
    let held = "revoke_reason = revoke_reason";

    // The revocation holds p and waits for c; the test's transaction holds c
    // and asks for p.
    let p = tokens.issue(None, "p").await;
    let c = tokens.issue(Some(&p), "c").await;
    let other = holding(db, &c, held).await;
    other.execute_unprepared(patient).await.expect("patient");
    let revocation = tokio::spawn({
        let (authority, p) = (tokens.authority.clone(), p.clone());
        async move { authority.revoke("test", &Target::Token(p), "deadlock").await }
    });
    lock_waiters(db, 1, "the revocation to hold p and wait for c").await;
    // (Granted once PostgreSQL aborts the revocation.)
    update_token(&other, &p, held).await;
    other.commit().await.expect("commit");
    assert_eq!(revocation.await.expect("task").expect("the revocation, run again"), 2, "p and c");
    assert!(paved_store::conflicts_rerun() > rerun, "the revocation was aborted and run again");
    let rerun = paved_store::conflicts_rerun();

    // The batch holds its first parent and waits for its second; the test's
    // transaction holds the second and asks for the first. A first batch,
    // kept waiting, gathers the two tokens into the next one.
    let mut parents = [tokens.issue(None, "q1").await, tokens.issue(None, "q2").await];
    parents.sort();
    let [first, second] = parents;
    let gate = tokens.issue(None, "gate").await;
    let gatekeeper = holding(db, &gate, held).await;
    let spawn = |parent: &str, subject: &'static str| {
        let (tokens, parent) = (tokens.clone(), parent.to_string());
        tokio::spawn(async move { tokens.issue(Some(&parent), subject).await })
    };
    let gated = spawn(&gate, "gated");
    lock_waiters(db, 1, "a first batch to wait for the gate").await;
    let (x, y) = (spawn(&first, "x"), spawn(&second, "y"));
    eventually("x and y to wait for the writer", Duration::from_secs(5), || async {
        (tokens.authority.issues_waiting() == 2).then_some(())
    })
    .await;
    let other = holding(db, &second, held).await;
    other.execute_unprepared(patient).await.expect("patient");
    gatekeeper.rollback().await.expect("open the gate");
    gated.await.expect("the gated token");
    lock_waiters(db, 1, "the batch of x and y to hold the first parent and wait for the second").await;
    // (Granted once PostgreSQL aborts the batch.)
    update_token(&other, &first, held).await;
    other.commit().await.expect("commit");
    for (token, parent) in [(x.await.expect("x"), &first), (y.await.expect("y"), &second)] {
        let info = tokens.authority.token(&token).await.expect("token").expect("recorded, by the batch run again");
        assert!(info.revoke_time_ms.is_none(), "issued from {parent}");
    }
    assert!(paved_store::conflicts_rerun() > rerun, "the batch was aborted and run again");
}
