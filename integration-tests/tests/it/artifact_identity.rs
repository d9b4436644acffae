//! Secret zero bound to the artifact, end to end on `paved up`: the runtime
//! hashes the executable it starts, the identity the process gets carries
//! that digest, and an artifact whose stored file changed after it was
//! approved is not started again.

use paved_integration_tests::{bin_dir, environ_of, eventually, failed_revision, paved_on, ready, recorded_replicas, text, up_options};
use paved_proto::provisioner::v1::provisioner_service_client::ProvisionerServiceClient;
use paved_proto::secrets_broker::v1::{
    IntrospectTokenRequest, PutSecretRequest, secrets_broker_service_client::SecretsBrokerServiceClient,
};
use std::{os::unix::fs::PermissionsExt, time::Duration};

#[tokio::test]
async fn an_identity_carries_its_artifact_and_a_changed_artifact_is_not_started() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let platform = ready(&up_options(data.clone())).await;
    let endpoint = platform.addr.to_string();
    let channel = paved::client::connect_with(&endpoint, &platform.root_token).await.expect("connect");
    let mut broker = SecretsBrokerServiceClient::new(channel.clone());
    let put = PutSecretRequest { path: "dev/api/db-password".into(), value: b"hunter2".to_vec(), ..Default::default() };
    broker.put_secret(put).await.expect("put the secret");

    // The hello binary is the artifact; the spec pins it and declares a secret.
    let out = paved_on(&platform, &["artifact", "push", bin_dir().join("hello").to_str().expect("path")]).await;
    assert!(out.status.success(), "{out:?}");
    let digest = text(&out.stdout).trim().to_string();
    let svc = dir.path().join("api");
    std::fs::create_dir_all(&svc).expect("mkdir");
    let spec = format!(
        "name: api\nartifact: {digest}\nsecrets: [db-password]\nhealth:\n  period: 200ms\n  timeout: 200ms\nrollout:\n  steps: [100]\n  interval: 500ms\n"
    );
    std::fs::write(svc.join("paved.yaml"), spec).expect("write the spec");
    let out = paved_on(&platform, &["deploy", svc.to_str().expect("path"), "--env", "dev"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The process holds its identity, not a bootstrap token; the identity
    // names the digest the runtime computed of what it started.
    let run = data.join("provisioner/run");
    let pid = eventually("the workload's process", Duration::from_secs(20), || {
        let run = run.clone();
        async move { recorded_replicas(&run).into_values().next() }
    })
    .await;
    let token = environ_of(pid, "PAVED_TOKEN").expect("PAVED_TOKEN in the workload's environment");
    assert!(environ_of(pid, "PAVED_BOOTSTRAP_TOKEN").is_none(), "the bootstrap token was spent by the runtime");
    let info = broker.introspect_token(IntrospectTokenRequest { token: token.clone() }).await.expect("introspect").into_inner();
    let info = info.info.expect("an active identity");
    assert_eq!((info.subject.as_str(), info.artifact_digest.as_str()), ("spiffe://paved/dev/api", digest.as_str()));
    let read =
        SecretsBrokerServiceClient::new(paved_integration_tests::authed(paved::client::channel(&endpoint).await.expect("channel"), &token))
            .get_secret(paved_proto::secrets_broker::v1::GetSecretRequest { path: "dev/api/db-password".into(), version: 0 })
            .await
            .expect("the identity reads its declared secret");
    assert_eq!(read.into_inner().secret.expect("secret").value, b"hunter2");

    // The stored file is replaced by a script that would serve just as
    // well, and the process dies: the runtime does not start it again.
    let stored = data.join("provisioner/artifacts/sha256").join(&digest["sha256:".len()..]);
    // Renamed over it: the running file cannot be written in place.
    let forged = stored.with_extension("forged");
    std::fs::write(&forged, format!("#!/bin/sh\nexec {}\n", bin_dir().join("hello").display())).expect("forge");
    std::fs::set_permissions(&forged, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::rename(&forged, &stored).expect("tamper");
    assert!(std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status().expect("kill").success());
    let provisioner = ProvisionerServiceClient::new(channel.clone());
    let revision = failed_revision(&provisioner, "dev", "api", Duration::from_secs(30)).await;
    assert!(
        revision.message.contains(&format!("not the artifact {digest} its revision names")) && revision.message.contains("sha256:"),
        "{}",
        revision.message
    );
    let replicas = recorded_replicas(&run);
    assert!(replicas.values().all(|pid| paved_integration_tests::process_gone(*pid)), "nothing runs the changed file: {replicas:?}");
    platform.stop().await.expect("stop");
}
