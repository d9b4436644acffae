//! KV secrets end to end: `paved up` as a user runs it (its own process,
//! debug logs kept), the CLI writing, reading and watching secrets; scopes
//! per path; a tampered ciphertext; root key rotation; and a grep of every
//! log of the run for every value created.

use paved_integration_tests::{authed, bin_dir, eventually, text};
use paved_proto::audit::v1::{ListEntriesRequest, audit_service_client::AuditServiceClient};
use paved_proto::secrets_broker::v1::{GetSecretRequest, IssueTokenRequest, secrets_broker_service_client::SecretsBrokerServiceClient};
use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};
use tonic::Code;

/// `paved up` in `dir` on a free port; returns the child, its endpoint and
/// root token. Its output goes to `dir/up.log`.
fn up(dir: &std::path::Path) -> (std::process::Child, String, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let log = std::fs::File::create(dir.join("up.log")).expect("log file");
    let mut child = Command::new(bin_dir().join("paved"))
        .args(["up", "--no-example", "--data-dir"])
        .arg(dir.join("data"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "debug")
        .env("PAVED_CONFIG_DIR", dir.join("cli"))
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
    // The rest of stdout goes to the log too.
    std::thread::spawn(move || {
        let rest: Vec<String> = lines.collect();
        let _ = std::fs::write(dir.join("up.out"), format!("{seen}{}", rest.join("\n")));
    });
    (child, format!("127.0.0.1:{port}"), token)
}

fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

#[tokio::test]
async fn secrets_are_versioned_scoped_watched_and_never_logged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (child, endpoint, root) = up(dir.path());
    let cli = |token: &str, args: &[&str], stdin: Option<&str>| {
        let mut command = tokio::process::Command::new(bin_dir().join("paved"));
        command.args(args).args(["--endpoint", &endpoint]).env("PAVED_TOKEN", token).env("PAVED_CONFIG_DIR", dir.path().join("cli"));
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
    };
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

    // A workload's token reads its own paths and nothing else.
    let channel = paved::commands::channel(&endpoint).await.expect("channel");
    let request = IssueTokenRequest {
        subject: "spiffe://paved/dev/shop".into(),
        scopes: vec!["secrets:read:dev/shop/*".into()],
        audience: "secrets-broker".into(),
        ..Default::default()
    };
    let shop =
        SecretsBrokerServiceClient::new(authed(channel.clone(), &root)).issue_token(request).await.expect("issue").into_inner().token;
    let mut as_shop = SecretsBrokerServiceClient::new(authed(channel.clone(), &shop));
    let secret = as_shop.get_secret(GetSecretRequest { path: "dev/shop/db-password".into(), version: 0 }).await.expect("own path");
    assert_eq!(secret.into_inner().value, second.as_bytes());
    let denied = as_shop.get_secret(GetSecretRequest { path: "dev/billing/key".into(), version: 0 }).await.expect_err("other path");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains("secrets:read:dev/billing/key"), "{}", denied.message());
    let bad = as_shop.get_secret(GetSecretRequest { path: "dev/../etc".into(), version: 0 }).await.expect_err("bad path");
    assert_eq!(bad.code(), Code::InvalidArgument);
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

    // Reads, writes and denials are events, values never.
    let audit = AuditServiceClient::new(authed(channel.clone(), &root));
    let entries = eventually("secret events in the audit log", Duration::from_secs(20), || {
        let mut audit = audit.clone();
        async move {
            let entries = audit.list_entries(ListEntriesRequest { page_size: 1000, page_token: String::new() }).await.ok()?.into_inner();
            let kinds: Vec<String> = entries.entries.iter().map(|e| e.r#type.clone()).collect();
            ["secret.written", "secret.read", "secret.denied", "secret.rotated"]
                .iter()
                .all(|k| kinds.iter().any(|t| t.ends_with(k)))
                .then_some(entries)
        }
    })
    .await;
    let audit_dump = format!("{entries:?}");

    stop(child);
    // Tampered ciphertext: a flipped byte in the broker's database is
    // refused (DATA_LOSS), never decrypted to something else.
    let db = paved_store::connect(&paved_store::sqlite_url(&dir.path().join("data/secrets-broker.db"))).await.expect("broker db");
    use sea_orm::ConnectionTrait;
    db.execute_unprepared(
        "UPDATE secret_versions SET sealed_value = substr(sealed_value, 1, 20) || X'00' || substr(sealed_value, 22) \
         WHERE path = 'dev/shop/db-password' AND version = 3",
    )
    .await
    .expect("tamper");
    drop(db);
    let (child, endpoint2, root2) = up(dir.path());
    let channel = paved::commands::channel(&endpoint2).await.expect("channel");
    let mut broker = SecretsBrokerServiceClient::new(authed(channel, &root2));
    let tampered = broker.get_secret(GetSecretRequest { path: "dev/shop/db-password".into(), version: 3 }).await.expect_err("tampered");
    assert_eq!(tampered.code(), Code::DataLoss, "{}", tampered.message());
    let intact = broker.get_secret(GetSecretRequest { path: "dev/shop/db-password".into(), version: 2 }).await.expect("v2 intact");
    assert_eq!(intact.into_inner().value, second.as_bytes(), "a restart keeps every value (root key from the data directory)");
    stop(child);

    // Every log of the run: paved up's output (debug), the CLI's errors,
    // the audit log. No value anywhere.
    let mut logs = audit_dump;
    for file in ["up.log", "up.out"] {
        logs.push_str(&std::fs::read_to_string(dir.path().join(file)).unwrap_or_default());
    }
    assert!(logs.contains("listening") || logs.contains("Paved is up"), "the logs were captured");
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
        (Secrets::new(db.clone(), Arc::new(keys.clone()), relay.clone()), Authority::new(db.clone(), Arc::new(keys), relay.clone()))
    };

    let (secrets, authority) = open(Keyring::new(old.clone(), None));
    secrets.put("test", "dev/a/x", Value::Given(b"value-x".to_vec())).await.expect("put");
    let token = authority.issue("test", &paved_secrets_broker::root_grant()).await.expect("issue").0;

    // The new key alone: what the old one sealed does not open.
    let (secrets, _) = open(Keyring::new(new.clone(), None));
    assert!(secrets.get("dev/a/x", 0).await.is_err(), "the old seal needs the old key");
    // Both: everything opens, then is re-sealed under the new one.
    let (secrets, authority) = open(Keyring::new(new.clone(), Some(old.clone())));
    assert_eq!(secrets.get("dev/a/x", 0).await.expect("opens with the previous key").1, b"value-x");
    assert_eq!(secrets.rewrap().await.expect("rewrap"), 1);
    assert_eq!(authority.rewrap().await.expect("rewrap signing keys"), 1);
    assert_eq!(secrets.rewrap().await.expect("again"), 0, "nothing left under the old key");
    // The new key alone now opens everything; tokens signed before still verify.
    let (secrets, authority) = open(Keyring::new(new, None));
    assert_eq!(secrets.get("dev/a/x", 0).await.expect("opens with the new key").1, b"value-x");
    assert!(authority.introspect(&token).await.expect("key set").is_ok(), "signing keys survive the rotation");
    let (secrets, _) = open(Keyring::new(old, None));
    assert!(secrets.get("dev/a/x", 0).await.is_err(), "the old key opens nothing any more");
}
