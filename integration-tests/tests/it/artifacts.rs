//! Artifacts end to end through `paved`: content-addressed push, signed
//! attestations from a trusted key, and the policy gate reading them to
//! decide a prod deploy of the artifact by digest.

use paved::up::{Platform, UpOptions};
use paved_integration_tests::{bin_dir, eventually, paved, paved_with, text, up_options};
use paved_proto::provisioner::v1::{PushArtifactRequest, provisioner_service_client::ProvisionerServiceClient};
use std::{path::Path, time::Duration};

fn spec(digest: &str) -> String {
    format!(
        "name: api\nteam: shop\nartifact: {digest}\nhealth:\n  period: 200ms\n  timeout: 200ms\nresources:\n  requests: {{cpu: 100m, memory: 32Mi}}\n  limits: {{cpu: 500m, memory: 64Mi}}\nrollout:\n  steps: [100]\n  interval: 500ms\nenv:\n  HELLO_VERSION: from-artifact\n"
    )
}

#[tokio::test]
async fn artifacts_are_content_addressed_signed_and_gate_prod() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("signer.key");
    let out = paved(&["artifact", "keygen", "--out", key.to_str().expect("path")]).await;
    assert!(out.status.success(), "{out:?}");
    let public = text(&out.stdout).trim().to_string();
    assert_eq!(public.len(), 64);
    assert!(std::fs::read_to_string(&key).expect("key").len() == 64);
    assert!(!paved(&["artifact", "keygen", "--out", key.to_str().expect("path")]).await.status.success(), "a key is never overwritten");

    let options = UpOptions { trusted_keys: [("ci".to_string(), public.clone())].into(), ..up_options(dir.path().join("data")) };
    let platform = Platform::start(&options).await.expect("paved up");
    platform.wait_ready(Duration::from_secs(30), |_| {}).await.expect("ready");
    let endpoint = platform.addr.to_string();
    let e = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--endpoint", &endpoint]);
        paved_with(&platform.root_token, &all)
    };

    // The hello binary is the artifact: the same bytes, the same digest.
    let binary = bin_dir().join("hello");
    let bytes = std::fs::read(&binary).expect("hello binary");
    let expected = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
    let out = e(&["artifact", "push", binary.to_str().expect("path")]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).trim(), expected);
    let copy = dir.path().join("hello-copy");
    std::fs::copy(&binary, &copy).expect("copy");
    let out = e(&["artifact", "push", copy.to_str().expect("path")]).await;
    assert_eq!(text(&out.stdout).trim(), expected);
    assert!(text(&out.stderr).contains("already in the store"), "{out:?}");

    // A digest mismatch is refused and nothing is stored.
    let mut client = ProvisionerServiceClient::new(paved::client::connect_with(&endpoint, &platform.root_token).await.expect("connect"));
    let wrong = format!("sha256:{}", "0".repeat(64));
    let request = PushArtifactRequest { expected_digest: wrong.clone(), chunk: b"not what was promised".to_vec() };
    let status = client.push_artifact(tokio_stream::iter([request])).await.expect_err("mismatch");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("digest mismatch"), "{}", status.message());
    let stored: Vec<_> = std::fs::read_dir(dir.path().join("data/provisioner/artifacts/sha256")).expect("store").flatten().collect();
    assert_eq!(stored.len(), 1, "only the pushed artifact is in the store");
    assert!(std::fs::read_dir(dir.path().join("data/provisioner/artifacts/tmp")).expect("tmp").next().is_none(), "no partial upload left");

    // Unknown digests: a precise error naming the field.
    let svc = dir.path().join("api");
    std::fs::create_dir_all(&svc).expect("mkdir");
    let svc_dir = svc.to_str().expect("path");
    std::fs::write(svc.join("paved.yaml"), spec(&format!("sha256:{}", "1".repeat(64)))).expect("write");
    let out = e(&["deploy", svc_dir, "--env", "dev"]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("no artifact sha256:1111"), "{out:?}");

    // Pinned, with resources: staging takes it; prod wants signed attestations.
    std::fs::write(svc.join("paved.yaml"), spec(&expected)).expect("write");
    let out = e(&["deploy", svc_dir, "--env", "staging"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = e(&["deploy", svc_dir, "--env", "prod"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("prod requires a signed SBOM attestation of the artifact"), "{}", text(&out.stderr));

    let write = |name: &str, json: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, json).expect("write payload");
        path.to_str().expect("path").to_string()
    };
    let sbom = write("sbom.json", r#"{"bomFormat": "CycloneDX", "components": [{"name": "axum"}]}"#);
    let critical = write("vulns.json", r#"{"findings": [{"id": "CVE-2026-0001", "cvss": 9.8}]}"#);
    let key_path = key.to_str().expect("path");
    for (kind, payload) in [("sbom", &sbom), ("vulnerabilities", &critical)] {
        let out = e(&["artifact", "sign", &expected, "--kind", kind, "--payload", payload, "--key", key_path]).await;
        assert!(out.status.success(), "{out:?}");
        assert!(text(&out.stdout).contains("signed by ci"), "{out:?}");
    }
    let out = e(&["deploy", svc_dir, "--env", "prod"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("CVE-2026-0001 has 9.8"), "{}", text(&out.stderr));

    // A fixed report: prod takes the very digest staging runs.
    let fixed = write("vulns-fixed.json", r#"{"findings": [{"id": "CVE-2026-0002", "cvss": 4.1}]}"#);
    assert!(
        e(&["artifact", "sign", &expected, "--kind", "vulnerabilities", "--payload", &fixed, "--key", key_path]).await.status.success()
    );
    let out = e(&["deploy", svc_dir, "--env", "prod"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status =
        paved::status::status(paved::client::connect_with(&endpoint, &platform.root_token).await.expect("connect")).await.expect("status");
    let prod = status.workloads.iter().find(|w| w.environment == "prod").expect("prod workload");
    assert_eq!(crate::services::http_get(&prod.endpoint, "/").await, "hello from from-artifact\n");

    // An untrusted key cannot attest; verification needs the right key.
    let stranger = dir.path().join("stranger.key");
    let out = paved(&["artifact", "keygen", "--out", stranger.to_str().expect("path")]).await;
    let stranger_public = text(&out.stdout).trim().to_string();
    let out = e(&["artifact", "sign", &expected, "--kind", "sbom", "--payload", &sbom, "--key", stranger.to_str().expect("path")]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("not trusted"), "{out:?}");
    let out = e(&["artifact", "verify", &expected, "--key", &public]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout).matches("OK ").count(), 2, "{}", text(&out.stdout));
    let out = e(&["artifact", "verify", &expected, "--key", &stranger_public]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = e(&["artifact", "get", &expected]).await;
    assert!(
        text(&out.stdout).contains("CVE-2026-0002") && !text(&out.stdout).contains("CVE-2026-0001"),
        "the newest report counts: {out:?}"
    );
    assert!(Path::new(&dir.path().join("data/provisioner/artifacts/sha256").join(&expected["sha256:".len()..])).exists());

    // The prod revision's lineage, one bundle checked with the key alone.
    let log_key = text(&e(&["audit", "key"]).await.stdout).trim().to_string();
    let bundle = dir.path().join("lineage.json");
    let bundle_path = bundle.to_str().expect("path");
    let out = eventually("the promotion in the log", Duration::from_secs(30), || async {
        let out = e(&["audit", "trace", "api", "--env", "prod", "--key", &log_key, "--bundle", bundle_path]).await;
        (out.status.success() && text(&out.stdout).contains("Promoted")).then_some(out)
    })
    .await;
    let lineage = text(&out.stdout);
    for step in [
        "revision.deployed",
        "policy.decided",
        "allowed by policy bundle sha256:",
        &format!("artifact {expected}"),
        "sbom by ci",
        "vulnerabilities by ci",
        "Promoted",
    ] {
        assert!(lineage.contains(step), "the lineage lacks {step:?}:\n{lineage}");
    }
    let verify = |path: &str, key: &str| paved(&["audit", "verify-bundle", path, "--key", key]);
    let out = verify(bundle_path, &log_key).await;
    assert!(out.status.success() && text(&out.stdout).contains("verified: "), "{out:?}");
    let out = paved(&["audit", "verify-bundle", bundle_path, "--key", &log_key, "--output", "json"]).await;
    let checked: serde_json::Value = serde_json::from_slice(&out.stdout).expect("verify-bundle JSON");
    assert!(checked["verified"] == true && checked["workload"] == "environments/prod/workloads/api", "{checked}");
    let types: Vec<&str> = checked["entries"].as_array().expect("entries").iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(types.iter().any(|t| t.ends_with("revision.deployed")) && types.iter().any(|t| t.ends_with("policy.decided")), "{types:?}");
    let other = paved_audit::log::note::LogKey::new("paved/audit", &[5; 32]).expect("key").verifier_key();
    assert_eq!(verify(bundle_path, &other).await.status.code(), Some(1), "another key");
    // One entry's bytes changed: named by index.
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&bundle).expect("bundle")).expect("json");
    let target = json["entries"][1]["index"].as_u64().expect("index");
    let entry = json["entries"][1]["entry"].as_str().expect("entry").to_string();
    let flipped = match entry.strip_prefix('A') {
        Some(rest) => format!("B{rest}"),
        None => format!("A{}", &entry[1..]),
    };
    json["entries"][1]["entry"] = serde_json::Value::String(flipped);
    let forged = dir.path().join("forged.json");
    std::fs::write(&forged, serde_json::to_vec(&json).expect("json")).expect("write");
    let out = verify(forged.to_str().expect("path"), &log_key).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains(&format!("NOT verified: entry {target}: ")), "{}", text(&out.stdout));
    platform.stop().await.expect("stop");
}
