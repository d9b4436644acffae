//! `--output json` on the commands that print one thing (the lists and
//! reports have theirs tested beside them): each answers one JSON document
//! on stdout, nothing else there, with the fields docs/cli.md promises.

use paved::up::UpOptions;
use paved_integration_tests::{bin_dir, paved, paved_with, ready, text, up_options};
use serde_json::Value;
use std::time::Duration;

fn spec(version: &str) -> String {
    format!(
        "name: web\ncommand: [\"hello\"]\nhealth:\n  period: 200ms\n  timeout: 200ms\nrollout:\n  steps: [50, 100]\n  interval: 60s\nenv:\n  HELLO_VERSION: {version}\n"
    )
}

#[tokio::test]
async fn single_item_commands_answer_json() {
    // A signing key first, for the platform to trust.
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("signing.key");
    let out = paved(&["artifact", "keygen", "--out", key.to_str().expect("path"), "--output", "json"]).await;
    let made: Value = serde_json::from_slice(&out.stdout).expect("keygen JSON");
    let public = made["public_key"].as_str().expect("public key").to_string();
    assert_eq!(made["private_key_file"].as_str(), key.to_str());
    let options = UpOptions { trusted_keys: [("ci".to_string(), public.clone())].into(), ..up_options(dir.path().join("data")) };
    let platform = ready(&options).await;
    let svc = dir.path().join("web");
    std::fs::create_dir_all(&svc).expect("mkdir");
    let (endpoint, root) = (platform.addr.to_string(), platform.root_token.clone());
    // The command with `--output json`; its one JSON document, or the failure.
    let json = |args: &[&str]| {
        let args: Vec<String> =
            args.iter().map(|a| a.to_string()).chain(["--output", "json", "--endpoint", &endpoint].map(String::from)).collect();
        let root = root.clone();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = paved_with(&root, &refs).await;
            assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
            serde_json::from_slice::<Value>(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out.stdout)))
        }
    };

    // Tokens.
    let issued = json(&["token", "issue", "--subject", "spiffe://paved/dev/json", "--scope", "read:audit"]).await;
    assert!(issued["token"].as_str().is_some_and(|t| t.starts_with("pvt1.")) && issued["subject"] == "spiffe://paved/dev/json", "{issued}");
    let id = issued["id"].as_str().expect("token id").to_string();
    assert_eq!(json(&["token", "revoke", &id]).await["revoked"], 1);
    assert!(json(&["token", "rotate-key"]).await["key_id"].is_string());

    // A secret written: its version, never its value.
    let written = json(&["secrets", "put", "dev/json/key", "--value", "hunter2-json"]).await;
    assert!(written["path"] == "dev/json/key" && written["version"] == 1 && !written.to_string().contains("hunter2"), "{written}");
    assert!(json(&["secrets", "rewrap"]).await["root_key_id"].is_string());
    let read = json(&["secrets", "get", "dev/json/key"]).await;
    assert!(read["value"] == "hunter2-json" && read["version"] == 1 && read["create_time"].is_string(), "{read}");
    assert!(json(&["secrets", "policy"]).await.is_array());
    // A watch: JSON Lines, the first line the current version.
    let mut watch = paved_integration_tests::clean_command("paved");
    watch.args(["secrets", "watch", "dev/json/key", "--output", "json", "--endpoint", &endpoint]).env("PAVED_TOKEN", &root);
    let mut watch = watch.stdout(std::process::Stdio::piped()).kill_on_drop(true).spawn().expect("watch");
    let mut first = String::new();
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().expect("stdout"));
    let read_line = tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut first);
    tokio::time::timeout(Duration::from_secs(10), read_line).await.expect("the first line").expect("read");
    let watched: Value = serde_json::from_str(&first).expect("one JSON document per line");
    assert_eq!((watched["value"].as_str(), watched["version"].as_u64()), (Some("hunter2-json"), Some(1)), "{watched}");
    drop(watch);

    // Offline: a policy bundle's tests, a new workload.
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/policies");
    let out = paved(&["policy", "test", policies.to_str().expect("path"), "--output", "json"]).await;
    let tested: Value = serde_json::from_slice(&out.stdout).expect("policy test JSON");
    assert!(out.status.success() && tested["passed"] == true && tested["failed"] == 0, "{tested}");
    assert!(tested["tests"].as_array().is_some_and(|t| !t.is_empty() && t.iter().all(|t| t["passed"] == true)), "{tested}");
    let made = dir.path().join("made");
    let out = paved(&["init", "made", "--dir", made.to_str().expect("path"), "--output", "json"]).await;
    let init: Value = serde_json::from_slice(&out.stdout).expect("init JSON");
    assert!(init["template"] == "http" && init["files"].as_array().is_some_and(|f| f.contains(&"paved.yaml".into())), "{init}");

    // Artifacts: the hello binary pushed, signed, verified.
    let pushed = json(&["artifact", "push", bin_dir().join("hello").to_str().expect("path")]).await;
    let digest = pushed["digest"].as_str().expect("digest").to_string();
    assert!(pushed["size"].as_u64().is_some_and(|s| s > 0) && pushed["existed"] == false, "{pushed}");
    let payload = dir.path().join("coverage.json");
    std::fs::write(&payload, r#"{"ratio": 0.9}"#).expect("write");
    let args = [
        "artifact",
        "sign",
        &digest,
        "--kind",
        "coverage",
        "--payload",
        payload.to_str().expect("path"),
        "--key",
        key.to_str().expect("path"),
    ];
    assert_eq!(json(&args).await["kind"], "coverage");
    let got = json(&["artifact", "get", &digest]).await;
    assert_eq!(got["attestations"][0]["payload"]["ratio"], 0.9, "{got}");
    let verified = json(&["artifact", "verify", &digest, "--key", &public]).await;
    assert!(verified["verified"] == true && verified["attestations"][0]["verified"] == true, "{verified}");

    // A rollout steered, then the workload rolled back, put to sleep, woken.
    let svc_dir = svc.to_str().expect("path").to_string();
    // The first revision followed to its end (it takes all traffic at
    // once); the second, a canary, detached.
    std::fs::write(svc.join("paved.yaml"), spec("v1")).expect("write");
    assert_eq!(json(&["deploy", &svc_dir, "--env", "dev"]).await["state"], "promoted");
    std::fs::write(svc.join("paved.yaml"), spec("v2")).expect("write");
    let deployed = json(&["deploy", &svc_dir, "--env", "dev", "--detach"]).await;
    let rollout = deployed["rollout_id"].as_str().expect("rollout id").to_string();
    let got = json(&["rollout", "get", &rollout]).await;
    assert!(got["revision"] == 2 && got["history"].is_array() && got["workload"] == "web", "{got}");
    assert_eq!(json(&["rollout", "pause", &rollout]).await["state"], "paused");
    assert_eq!(json(&["rollout", "resume", &rollout]).await["state"], "running");
    // Once its canary takes traffic (the rollout's stage is a step).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = paved_with(&root, &["rollout", "promote", &rollout, "--output", "json", "--endpoint", &endpoint]).await;
        if out.status.success() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "promote: {}", text(&out.stderr));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(json(&["rollout", "watch", &rollout]).await["state"], "promoted");
    let rolled = json(&["rollback", "web", "--env", "dev"]).await;
    assert_eq!((rolled["workload"].as_str(), rolled["revision"].as_i64()), (Some("web"), Some(1)), "{rolled}");
    let slept = json(&["sleep", "web", "--env", "dev", "--for", "1h"]).await;
    assert!(slept["changed"] == true && slept["state"] == "sleeping" && slept["hold_until"].is_string(), "{slept}");
    assert_eq!(json(&["wake", "web", "--env", "dev"]).await["changed"], true);

    // A preview opened and closed.
    let opened = json(&["preview", "open", &svc_dir, "--pr", "7", "--ttl", "1h"]).await;
    assert!(opened["environment"] == "pr-7" && opened["workloads"][0]["name"] == "web", "{opened}");
    assert_eq!(json(&["preview", "close", "--pr", "7"]).await["destroyed"], serde_json::json!(["web"]));

    // The CA; databases (none configured).
    let bundle = json(&["ca", "bundle"]).await;
    assert!(
        bundle["trust_bundle_pem"].as_str().is_some_and(|p| p.contains("BEGIN CERTIFICATE")) && bundle["authorities"][0]["id"].is_string()
    );
    assert!(json(&["ca", "rotate"]).await["create_time"].is_string());
    assert_eq!(json(&["db", "list"]).await, serde_json::json!([]));
    platform.stop().await.expect("stop");
}
