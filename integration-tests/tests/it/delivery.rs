//! Secrets delivered at launch, end to end on `paved up`: `${secret:…}`
//! resolved into the environment and `secret_files` written for the
//! process alone, read with the workload's own identity; a rotation
//! rewrites the file and signals the process, or restarts it, as the spec
//! says; a missing secret fails the start with what to do; and no value
//! reaches the platform's log, its files or its databases.

use paved_integration_tests::{
    capture_logs, environ_of, eventually, failed_revision, paved_on, ready, recorded_replicas, text, up_options,
};
use paved_proto::provisioner::v1::{GetWorkloadRequest, provisioner_service_client::ProvisionerServiceClient};
use paved_proto::secrets_broker::v1::{PutSecretRequest, secrets_broker_service_client::SecretsBrokerServiceClient};
use std::{os::unix::fs::PermissionsExt, path::Path, time::Duration};

/// A spec for `name` whose shell traps SIGHUP by copying its `tls-key`
/// file to `seen`, and serves `hello` until it exits.
fn spec(name: &str, seen: &Path, extra: &str) -> String {
    let script = format!(
        "trap 'cat \\\"$PAVED_SECRETS_DIR/tls-key\\\" > {}' HUP; hello & pid=$!; while kill -0 $pid 2>/dev/null; do wait $pid; done",
        seen.display()
    );
    format!("name: {name}\ncommand: [\"sh\", \"-c\", \"{script}\"]\nhealth:\n  period: 200ms\n  timeout: 200ms\n{extra}")
}

/// Every file under `dir` holding `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle)) {
            found.push(path.display().to_string());
        }
    }
    found
}

#[tokio::test]
async fn secrets_are_resolved_at_launch_and_follow_rotations_as_the_spec_says() {
    let (_guard, logs) = capture_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let platform = ready(&up_options(data.clone())).await;
    let endpoint = platform.addr.to_string();
    let channel = paved::client::connect_with(&endpoint, &platform.root_token).await.expect("connect");
    let broker = SecretsBrokerServiceClient::new(channel.clone());
    let put = |path: &str, value: &str| {
        let request = PutSecretRequest { path: path.into(), value: value.as_bytes().to_vec(), ..Default::default() };
        let mut broker = broker.clone();
        async move { broker.put_secret(request).await.expect("put") }
    };
    put("dev/shop/db-password", "pw-one-7f3a").await;
    put("dev/shop/tls-key", "key-one-91c2").await;
    let deploy = |name: &str, spec: String| {
        let svc = dir.path().join(name);
        std::fs::create_dir_all(&svc).expect("mkdir");
        std::fs::write(svc.join("paved.yaml"), spec).expect("write the spec");
        paved_on(&platform, &["deploy", svc.to_str().expect("path").to_string().leak(), "--env", "dev"])
    };

    // Signal (the default): the env value resolved, the file written for
    // the process alone.
    let seen = dir.path().join("seen");
    let shop = spec(
        "shop",
        &seen,
        "secrets: [db-password, tls-key]\nenv:\n  DSN: postgres://app:${secret:db-password}@db/shop\nsecret_files: [tls-key]\n",
    );
    let out = deploy("shop", shop).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A workload's process: its current revision's replica in the run directory.
    let (run, provisioner) = (data.join("provisioner/run"), ProvisionerServiceClient::new(channel.clone()));
    // Its replicas' processes, in replica order, once `count` run.
    let replicas = |name: &'static str, count: usize| {
        let (run, provisioner) = (run.clone(), provisioner.clone());
        move || {
            let (run, mut provisioner) = (run.clone(), provisioner.clone());
            async move {
                let get = GetWorkloadRequest { environment: "dev".into(), name: name.into() };
                let revision = provisioner.get_workload(get).await.ok()?.into_inner().workload?.current_revision;
                let recorded = recorded_replicas(&run).into_iter().filter(|(k, _)| k.starts_with(&format!("{revision}-")));
                let pids: Vec<i32> = recorded.map(|(_, pid)| pid).collect();
                (pids.len() == count).then_some(pids)
            }
        }
    };
    let replica = |name: &'static str| {
        let all = replicas(name, 1);
        move || {
            let all = all();
            async move { all.await.map(|pids| pids[0]) }
        }
    };
    let pid = eventually("shop's process", Duration::from_secs(20), replica("shop")).await;
    assert_eq!(environ_of(pid, "DSN").as_deref(), Some("postgres://app:pw-one-7f3a@db/shop"));
    let secrets_dir = std::path::PathBuf::from(environ_of(pid, "PAVED_SECRETS_DIR").expect("PAVED_SECRETS_DIR"));
    let key = secrets_dir.join("tls-key");
    assert_eq!(std::fs::read_to_string(&key).expect("the secret file"), "key-one-91c2");
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!((mode(&secrets_dir), mode(&key)), (0o700, 0o600), "for the process's user alone");

    // A new version: the file is rewritten, then the process gets SIGHUP
    // (its trap copies what it then reads), and it is not restarted.
    put("dev/shop/tls-key", "key-two-5d0e").await;
    eventually("the process to see the new file", Duration::from_secs(20), || {
        let seen = seen.clone();
        async move { std::fs::read_to_string(&seen).ok().filter(|s| s == "key-two-5d0e") }
    })
    .await;
    assert_eq!(std::fs::read_to_string(&key).expect("the secret file"), "key-two-5d0e");
    assert_eq!(eventually("shop's process", Duration::from_secs(5), replica("shop")).await, pid, "signalled, not restarted");
    // Deleted and put again, it starts over at version 1: a new secret all the same.
    let delete = paved_proto::secrets_broker::v1::DeleteSecretRequest { path: "dev/shop/tls-key".into() };
    broker.clone().delete_secret(delete).await.expect("delete");
    put("dev/shop/tls-key", "key-three-77ab").await;
    eventually("the file to hold the secret put again", Duration::from_secs(20), || {
        let seen = seen.clone();
        async move { std::fs::read_to_string(&seen).ok().filter(|s| s == "key-three-77ab") }
    })
    .await;

    // Restart: a new version of what the environment holds restarts it.
    put("dev/cart/db-password", "cart-one-0b7d").await;
    let cart = spec(
        "cart",
        &dir.path().join("unused"),
        "replicas: 2\nsecrets: [db-password]\nenv:\n  DB_PASSWORD: ${secret:db-password}\non_rotation: restart\n",
    );
    let out = deploy("cart", cart).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = eventually("cart's processes", Duration::from_secs(20), replicas("cart", 2)).await;
    for pid in &first {
        assert_eq!(environ_of(*pid, "DB_PASSWORD").as_deref(), Some("cart-one-0b7d"));
        assert!(environ_of(*pid, "PAVED_SECRETS_DIR").is_none(), "no files, no directory");
    }
    put("dev/cart/db-password", "cart-two-c4a1").await;
    // Both restarted, one after the other, with the new value.
    eventually("cart restarted with the new value", Duration::from_secs(40), || {
        let (next, first) = (replicas("cart", 2)(), first.clone());
        async move {
            next.await.filter(|pids| {
                pids.iter().all(|pid| !first.contains(pid) && environ_of(*pid, "DB_PASSWORD").as_deref() == Some("cart-two-c4a1"))
            })
        }
    })
    .await;

    // A secret that does not exist: not started, and the message says what to do.
    let out = deploy("bare", spec("bare", &dir.path().join("unused"), "secrets: [api-key]\nenv:\n  API_KEY: ${secret:api-key}\n")).await;
    let failed = failed_revision(&provisioner, "dev", "bare", Duration::from_secs(30)).await;
    assert!(
        failed.message.contains("secret dev/bare/api-key does not exist: put it with `paved secrets put dev/bare/api-key`"),
        "{}\n{out:?}",
        failed.message
    );

    // A process that prints its secret and fails: the value is in its own
    // log, never in its revision's message (stored, and sent as an event).
    put("dev/leaky/db-password", "leak-me-3e9f").await;
    let leaky = "name: leaky\ncommand: [\"sh\", \"-c\", \"echo connecting to $DSN; exit 3\"]\nsecrets: [db-password]\n\
        env:\n  DSN: postgres://app:${secret:db-password}@db\n";
    deploy("leaky", leaky.to_string()).await;
    let failed = failed_revision(&provisioner, "dev", "leaky", Duration::from_secs(60)).await;
    assert!(failed.message.contains("connecting to postgres://app:***@db"), "{}", failed.message);
    assert!(!failed.message.contains("leak-me-3e9f"), "{}", failed.message);
    let holding: Vec<String> = files_holding(&data, b"leak-me-3e9f").into_iter().filter(|f| !f.ends_with(".log")).collect();
    assert!(holding.is_empty(), "only the workload's own log holds it: {holding:?}");

    // No value anywhere but in the processes and the one file delivered.
    let values = ["pw-one-7f3a", "key-one-91c2", "key-two-5d0e", "key-three-77ab", "cart-one-0b7d", "cart-two-c4a1"];
    assert!(logs.text().contains("a delivered secret has a new version"), "the log was captured");
    for value in values {
        assert!(!logs.text().contains(value), "{value} in the platform's log");
        let holding: Vec<String> = files_holding(&data, value.as_bytes()).into_iter().filter(|f| !f.ends_with("/tls-key")).collect();
        assert!(holding.is_empty(), "{value} in {holding:?}");
    }
    platform.stop().await.expect("stop");
    assert!(!secrets_dir.exists(), "the secret files go with their process");
}
