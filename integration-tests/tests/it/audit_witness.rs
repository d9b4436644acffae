//! Witnesses as their operators run them (`paved audit witness`): each
//! checks that the log's new checkpoint extends the one it accepted (over
//! tlog-tiles), cosigns it (C2SP tlog-cosignature) and hands it to the log,
//! which keeps cosignatures of the witnesses it trusts only; `paved audit
//! verify --witness … --quorum N` requires them, online and offline; a
//! witness refuses a log that went back, forked or does not extend.

use crate::audit_log::{checkpoint_of, publish, start_with};
use paved_integration_tests::{
    audit_options, eventually, http_get, paved, paved_with, postgres_database, redis_namespace, start_broker, text,
};
use std::{path::Path, time::Duration};
use tokio_util::sync::CancellationToken;

async fn print_key(dir: &Path, name: &str) -> String {
    let file = dir.join(name);
    let out = paved(&[
        "audit",
        "witness",
        "--log",
        "-",
        "--key",
        "-",
        "--witness-key",
        file.to_str().expect("path"),
        "--name",
        name,
        "--print-key",
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    text(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn witnesses_cosign_a_log_that_grows_and_refuse_one_that_forks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (w1, w2, w3) = (print_key(dir.path(), "w1").await, print_key(dir.path(), "w2").await, print_key(dir.path(), "w3").await);
    assert!(w1.starts_with("w1+") && w1 != w2, "{w1}");
    assert_eq!(w1, print_key(dir.path(), "w1").await, "the key is kept");

    let database = postgres_database("it_audit_witness").await;
    let stream_url = redis_namespace("it_audit_witness").await;
    let stream = paved_stream::open(&stream_url, 10_000).await.expect("stream");
    let shutdown = CancellationToken::new();
    let (broker, token, broker_task) = start_broker(&stream_url, &shutdown).await;
    // w3 is not one the log trusts.
    let options = paved_audit::Options { witnesses: Some(format!("{w1}, {w2}")), ..audit_options() };
    let (addr, task) = start_with(&database, &stream_url, broker, &shutdown, options).await;
    publish(&stream, "provisioner", (0..50).map(|i| format!("a{i}"))).await;
    checkpoint_of(addr, 50).await;
    let (log, endpoint) = (format!("http://{addr}"), addr.to_string());
    let key = text(&paved(&["audit", "key", "--endpoint", &endpoint]).await.stdout).trim().to_string();
    let witness = |name: &str| {
        let file = dir.path().join(name);
        let (log, key) = (log.clone(), key.clone());
        async move {
            let out =
                paved(&["audit", "witness", "--log", &log, "--key", &key, "--witness-key", file.to_str().expect("path"), "--once"]).await;
            (out.status.code(), text(&out.stdout))
        }
    };
    let verify = |witnesses: &[&str], quorum: &str| {
        let token = token.clone();
        let mut args: Vec<String> =
            ["audit", "verify", "--endpoint", &endpoint, "--key", &key, "--quorum", quorum].map(String::from).to_vec();
        for w in witnesses {
            args.extend(["--witness".to_string(), w.to_string()]);
        }
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = paved_with(&token, &args).await;
            (out.status.code(), text(&out.stdout) + &text(&out.stderr))
        }
    };

    let (code, out) = witness("w1").await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("cosigned the checkpoint of"), "{out}");
    assert_eq!(witness("w2").await.0, Some(0));
    let (code, out) = witness("w3").await;
    assert_eq!(code, Some(1));
    assert!(out.contains("403") && out.contains("no witness this log trusts"), "{out}");
    // Both on one checkpoint: a newer one (the broker's own events) may
    // come between the two, so they look again until they meet.
    let out = eventually("a checkpoint both witnesses cosigned", Duration::from_secs(30), || async {
        witness("w1").await;
        witness("w2").await;
        let (code, out) = verify(&[&w1, &w2], "2").await;
        (code == Some(0)).then_some(out)
    })
    .await;
    assert!(out.contains("witnessed: the checkpoint of") && out.contains("(2 of 2 required)"), "{out}");
    let (code, out) = verify(&[&w1, &w3], "2").await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("NOT verified: no checkpoint is cosigned by 2 of the 2 witnesses given"), "{out}");
    assert_eq!(verify(&[&w1, &w3], "1").await.0, Some(0));

    // The log grows past a full tile: w1 checks the new tree extends the old.
    publish(&stream, "provisioner", (0..300).map(|i| format!("b{i}"))).await;
    let (_, grown) = checkpoint_of(addr, 350).await;
    let (code, out) = witness("w1").await;
    assert_eq!(code, Some(0), "{out}");
    let size: u64 = out.split_whitespace().find_map(|w| w.parse().ok()).expect("a size");
    assert!(size >= grown.size(), "{out}");
    // The checkpoint is served with the cosignature (if none is newer).
    let (_, _, body) = http_get(&format!("{log}/audit/log/checkpoint")).await;
    let served = String::from_utf8(body).expect("text");
    if served.contains(&format!("\n{size}\n")) {
        assert!(served.contains("— w1 "), "{served}");
    }

    // Offline: a copy of the log with its cosigned checkpoint.
    let copy = dir.path().join("copy");
    eventually("a copy whose checkpoint w1 cosigned", Duration::from_secs(30), || {
        let (copy, key, w1, endpoint) = (copy.clone(), key.clone(), w1.clone(), endpoint.clone());
        let witness = witness("w1");
        async move {
            witness.await;
            let _ = std::fs::remove_dir_all(&copy);
            let copy_path = copy.to_str().expect("path");
            paved(&["audit", "fetch", copy_path, "--endpoint", &endpoint]).await;
            let out = paved_with("", &["audit", "verify", "--offline", copy_path, "--key", &key, "--witness", &w1]).await;
            (out.status.success() && text(&out.stdout).contains("witnessed: ")).then_some(())
        }
    })
    .await;

    // A log that shows another tree of the same size, goes back, or does
    // not extend what the witness accepted: refused, nothing cosigned.
    let state = dir.path().join("w2.state");
    let accepted = std::fs::read_to_string(&state).expect("w2's state");
    let lines: Vec<&str> = accepted.lines().collect();
    let (_, _, body) = http_get(&format!("{log}/audit/log/checkpoint")).await;
    let now = String::from_utf8(body).expect("text");
    let now_size: u64 = now.lines().nth(1).expect("size").parse().expect("a size");
    let other_root = "f+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=";
    for (forged, refusal) in [
        (format!("{}\n{now_size}\n{other_root}\n", lines[0]), "two different trees"),
        (format!("{}\n{}\n{other_root}\n", lines[0], now_size + 10), "went back"),
        (format!("{}\n{}\n{other_root}\n", lines[0], lines[1]), "does not extend"),
    ] {
        std::fs::write(&state, &forged).expect("state");
        let (code, out) = witness("w2").await;
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains(refusal), "{refusal}: {out}");
    }

    shutdown.cancel();
    task.await.expect("task").expect("clean stop");
    broker_task.await.expect("broker").expect("clean stop");
}

/// The log's key rotated as an operator does (`paved audit rotate-key`):
/// both keys sign through the overlap, then the new one alone; a verifier
/// holding either key checks the whole log, learning the other from a
/// checkpoint both signed.
#[tokio::test]
async fn a_rotated_key_hands_trust_over_through_a_checkpoint_both_signed() {
    let database = postgres_database("it_audit_rotation").await;
    let stream_url = redis_namespace("it_audit_rotation").await;
    let stream = paved_stream::open(&stream_url, 10_000).await.expect("stream");
    let shutdown = CancellationToken::new();
    let (broker, token, broker_task) = start_broker(&stream_url, &shutdown).await;
    let (addr, task) = start_with(&database, &stream_url, broker, &shutdown, audit_options()).await;
    let endpoint = addr.to_string();
    publish(&stream, "provisioner", (0..20).map(|i| format!("r{i}"))).await;
    checkpoint_of(addr, 20).await;
    let key = || async { text(&paved(&["audit", "key", "--endpoint", &endpoint]).await.stdout).trim().to_string() };
    let old = key().await;

    let out = paved_with(&token, &["audit", "rotate-key", "--overlap", "3s", "--endpoint", &endpoint, "--output", "json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rotated: serde_json::Value = serde_json::from_slice(&out.stdout).expect("rotate-key JSON");
    assert!(rotated["retire_time"].is_string(), "{rotated}");
    let new = rotated["verifier_key"].as_str().expect("the new key").to_string();
    assert!(new.starts_with("paved/audit+") && new != old, "{new}");
    assert_eq!(key().await, new, "the new key is the current one");
    let signers = |note: &str| note.lines().filter(|l| l.starts_with("— paved/audit ")).count();
    publish(&stream, "provisioner", (0..10).map(|i| format!("s{i}"))).await;
    let (both, _) = checkpoint_of(addr, 30).await;
    assert_eq!(signers(&both), 2, "signed by both in the overlap: {both}");

    tokio::time::sleep(Duration::from_millis(3_500)).await;
    publish(&stream, "provisioner", (0..10).map(|i| format!("t{i}"))).await;
    let (after, _) = checkpoint_of(addr, 40).await;
    assert_eq!(signers(&after), 1, "the old key retired: {after}");
    assert!(paved_audit::log::verify::checkpoint(after.as_bytes(), &new).is_ok());
    assert!(paved_audit::log::verify::checkpoint(after.as_bytes(), &old).is_err());

    for trusted in [&old, &new] {
        let out = paved_with(&token, &["audit", "verify", "--endpoint", &endpoint, "--key", trusted]).await;
        assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
        let said = text(&out.stdout);
        assert!(said.starts_with("verified: ") && said.contains(&old) && said.contains(&new), "{said}");
    }
    // A key the log never had vouches for nothing.
    let stranger = paved_audit::log::note::LogKey::new("paved/audit", &[6; 32]).expect("key").verifier_key();
    let out = paved_with(&token, &["audit", "verify", "--endpoint", &endpoint, "--key", &stranger]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));

    shutdown.cancel();
    task.await.expect("task").expect("clean stop");
    broker_task.await.expect("broker").expect("clean stop");
}

/// A root key rotation as the broker's: the audit service started with the
/// new root key and the previous one opens its log key, seals it again
/// under the new one, and signs on with the same key; after that, the new
/// root key alone will do.
#[tokio::test]
async fn a_root_key_rotation_keeps_the_log_key() {
    let database = postgres_database("it_audit_root").await;
    let stream_url = redis_namespace("it_audit_root").await;
    let stream = paved_stream::open(&stream_url, 10_000).await.expect("stream");
    let shutdown = CancellationToken::new();
    let (broker, _token, broker_task) = start_broker(&stream_url, &shutdown).await;
    let new_root = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let secret = |k: &str| Some(paved_seal::Secret(k.to_string()));
    let rotated = paved_audit::Options { root_key: secret(new_root), previous_root_key: audit_options().root_key, ..audit_options() };
    let after = paved_audit::Options { root_key: secret(new_root), ..audit_options() };
    let mut key = None;
    for (round, options) in [audit_options(), rotated, after].into_iter().enumerate() {
        let run = shutdown.child_token();
        let (addr, task) = start_with(&database, &stream_url, broker, &run, options).await;
        let at_least = 10 * (round as u64 + 1);
        publish(&stream, "provisioner", (0..10).map(|i| format!("k{round}-{i}"))).await;
        let (note, _) = checkpoint_of(addr, at_least).await;
        let now = text(&paved(&["audit", "key", "--endpoint", &addr.to_string()]).await.stdout).trim().to_string();
        assert!(paved_audit::log::verify::checkpoint(note.as_bytes(), &now).is_ok(), "round {round}: {note}");
        assert_eq!(key.get_or_insert_with(|| now.clone()), &now, "round {round}: the same log key");
        run.cancel();
        task.await.expect("task").expect("clean stop");
    }
    shutdown.cancel();
    broker_task.await.expect("broker").expect("clean stop");
}
