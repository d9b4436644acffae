//! Every call authenticated and authorised, end to end on the embedded
//! platform: tokens issued by the broker, checked by every service's layer,
//! renewed, revoked (and the revocation seen within seconds), signing keys
//! rotated; the CLI's `login` and `token` commands; the events.

use crate::rollouts::embedded;
use paved_integration_tests::{authed, eventually, paved_with, text};
use paved_proto::audit::v1::{ListEntriesRequest, QueryLogRequest, audit_service_client::AuditServiceClient};
use paved_proto::provisioner::v1::{ApplyWorkloadRequest, ListWorkloadsRequest, provisioner_service_client::ProvisionerServiceClient};
use paved_proto::secrets_broker::v1::{
    GetKeySetRequest, IntrospectTokenRequest, IssueTokenRequest, RenewTokenRequest,
    secrets_broker_service_client::SecretsBrokerServiceClient,
};
use std::time::{Duration, Instant};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tonic_types::StatusExt;

fn reason(status: &tonic::Status) -> String {
    status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

async fn issue(channel: &tonic::transport::Channel, token: &str, request: IssueTokenRequest) -> Result<String, tonic::Status> {
    let mut broker = SecretsBrokerServiceClient::new(authed(channel.clone(), token));
    Ok(broker.issue_token(request).await?.into_inner().token)
}

const SPEC: &str = "name: shop\ncommand: [\"hello\"]\n";

fn apply(environment: &str) -> ApplyWorkloadRequest {
    ApplyWorkloadRequest {
        environment: environment.into(),
        spec_yaml: SPEC.into(),
        spec_path: String::new(),
        request_id: String::new(),
        spec: None,
    }
}

#[tokio::test]
async fn every_call_is_authenticated_and_authorised() {
    let (_dir, platform, _svc) = embedded().await;
    let endpoint = platform.addr.to_string();
    let channel = paved::client::channel(&endpoint).await.expect("channel");
    let root = platform.root_token.clone();

    // No token: UNAUTHENTICATED at every service; health stays open.
    let status =
        ProvisionerServiceClient::new(channel.clone()).list_workloads(ListWorkloadsRequest::default()).await.expect_err("no token");
    assert_eq!((status.code(), reason(&status)), (Code::Unauthenticated, "TOKEN_MISSING".to_string()));
    let status = AuditServiceClient::new(channel.clone()).list_entries(ListEntriesRequest::default()).await.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    HealthClient::new(channel.clone()).check(HealthCheckRequest { service: String::new() }).await.expect("health needs no token");

    // Forged (a tampered signature) and malformed tokens.
    let mut forged = root.clone();
    let at = forged.len() - 10;
    let other = if &forged[at..=at] == "A" { "B" } else { "A" };
    forged.replace_range(at..=at, other);
    for bad in [forged.as_str(), "pvt1.nonsense", "not-a-token"] {
        let status = ProvisionerServiceClient::new(authed(channel.clone(), bad))
            .list_workloads(ListWorkloadsRequest::default())
            .await
            .expect_err(bad);
        assert_eq!((status.code(), reason(&status)), (Code::Unauthenticated, "TOKEN_INVALID".to_string()), "{bad}");
        assert!(!status.message().contains(&root[5..40]), "an error never repeats a token");
    }

    // A viewer reads everywhere and changes nothing.
    let viewer = issue(&channel, &root, IssueTokenRequest { subject: "vera".into(), role: "viewer".into(), ..Default::default() })
        .await
        .expect("issue viewer");
    let mut as_viewer = ProvisionerServiceClient::new(authed(channel.clone(), &viewer));
    as_viewer.list_workloads(ListWorkloadsRequest::default()).await.expect("a viewer lists");
    let status = as_viewer.apply_workload(apply("dev")).await.expect_err("a viewer cannot deploy");
    assert_eq!((status.code(), reason(&status)), (Code::PermissionDenied, "MISSING_SCOPE".to_string()));
    // … and cannot hand on more than it holds.
    let status = issue(&channel, &viewer, IssueTokenRequest { subject: "x".into(), role: "admin".into(), ..Default::default() })
        .await
        .expect_err("escalation");
    assert_eq!(status.code(), Code::PermissionDenied);

    // A deployer of one workload in dev: shop there, nothing in prod. A
    // workload prefix ends at a separator (`shop-*`): `shop*` would also
    // cover `shopping`.
    let request = IssueTokenRequest {
        subject: "dora".into(),
        role: "deployer".into(),
        environment: "dev".into(),
        workloads: "shop*".into(),
        ..Default::default()
    };
    let status = issue(&channel, &root, request.clone()).await.expect_err("a prefix wildcard");
    assert_eq!(status.code(), Code::InvalidArgument);
    let request = IssueTokenRequest { workloads: "shop".into(), ..request };
    let deployer = issue(&channel, &root, request).await.expect("issue deployer");
    let mut as_deployer = ProvisionerServiceClient::new(authed(channel.clone(), &deployer));
    as_deployer.apply_workload(apply("dev")).await.expect("shop in dev");
    let status = as_deployer.apply_workload(apply("prod")).await.expect_err("not prod");
    assert_eq!(status.code(), Code::PermissionDenied, "{}", status.message());
    assert!(status.message().contains("deploy:prod/shop"), "{}", status.message());

    // A token for one service's audience is refused by the others.
    let audit_only = issue(
        &channel,
        &root,
        IssueTokenRequest { subject: "auditor".into(), scopes: vec!["read:audit".into()], audience: "audit".into(), ..Default::default() },
    )
    .await
    .expect("issue audit-only");
    AuditServiceClient::new(authed(channel.clone(), &audit_only)).list_entries(ListEntriesRequest::default()).await.expect("audit");
    let status = ProvisionerServiceClient::new(authed(channel.clone(), &audit_only))
        .list_workloads(ListWorkloadsRequest::default())
        .await
        .expect_err("wrong audience");
    assert_eq!((status.code(), reason(&status)), (Code::Unauthenticated, "TOKEN_WRONG_AUDIENCE".to_string()));
    // The broker's own check of a token-only method says it the same way.
    let status = SecretsBrokerServiceClient::new(authed(channel.clone(), &audit_only))
        .get_secret(paved_proto::secrets_broker::v1::GetSecretRequest { path: "dev/shop/api-key".into(), ..Default::default() })
        .await
        .expect_err("wrong audience at the broker");
    assert_eq!((status.code(), reason(&status)), (Code::Unauthenticated, "TOKEN_WRONG_AUDIENCE".to_string()));

    // Invalid requests name their fields.
    let status = issue(&channel, &root, IssueTokenRequest { subject: String::new(), role: "sudo".into(), ..Default::default() })
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = status.get_details_bad_request().expect("violations").field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["subject", "role"]);

    // Renewal: same id, later expiry, but never a longer life than issued
    // (15 min here, though an hour is asked for).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut broker = SecretsBrokerServiceClient::new(authed(channel.clone(), &viewer));
    let renewed =
        broker.renew_token(RenewTokenRequest { ttl: Some(prost_types::Duration { seconds: 3600, nanos: 0 }) }).await.expect("renew");
    let renewed = renewed.into_inner();
    assert_ne!(renewed.token, viewer);
    let info = renewed.info.expect("info");
    let expiry = info.expire_time.expect("expiry").seconds - chrono::Utc::now().timestamp();
    assert!((850..=901).contains(&expiry), "renewed for {expiry} s");

    // Revocation through the CLI reaches the verifiers within seconds; the
    // renewed token shares the id, so it goes too.
    let out = paved_with(&root, &["token", "revoke", &info.token_id, "--endpoint", &endpoint]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let revoked_at = Instant::now();
    eventually("the revocation to reach the provisioner", Duration::from_secs(5), || {
        let mut client = ProvisionerServiceClient::new(authed(channel.clone(), &renewed.token));
        async move {
            let status = client.list_workloads(ListWorkloadsRequest::default()).await.err()?;
            (reason(&status) == "TOKEN_REVOKED").then_some(())
        }
    })
    .await;
    let took = revoked_at.elapsed();
    // Introspection says so too, without repeating the token; a live one is active.
    let mut broker = SecretsBrokerServiceClient::new(authed(channel.clone(), &root));
    let answer = broker.introspect_token(IntrospectTokenRequest { token: renewed.token.clone() }).await.expect("introspect").into_inner();
    assert!(!answer.active && answer.reason == "token revoked", "{answer:?}");
    let answer = broker.introspect_token(IntrospectTokenRequest { token: deployer.clone() }).await.expect("introspect").into_inner();
    assert!(answer.active, "{answer:?}");
    assert_eq!(answer.info.expect("claims").subject, "dora");

    // A token hands on only to its own subject (unless issue:subjects), and
    // what it handed on is revoked with it.
    let pat_request =
        IssueTokenRequest { subject: "pat".into(), scopes: vec!["read:*".into(), "write:secrets-broker".into()], ..Default::default() };
    let pat = issue(&channel, &root, pat_request).await.expect("issue pat");
    let for_other = IssueTokenRequest { subject: "root".into(), scopes: vec!["read:audit".into()], ..Default::default() };
    let status = issue(&channel, &pat, for_other).await.expect_err("another subject");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("issue:subjects"), "{}", status.message());
    let child = issue(&channel, &pat, IssueTokenRequest { subject: "pat".into(), scopes: vec!["read:audit".into()], ..Default::default() })
        .await
        .expect("a child for itself");
    let pat_id =
        broker.introspect_token(IntrospectTokenRequest { token: pat }).await.expect("introspect").into_inner().info.expect("info").token_id;
    let revoke = paved_proto::secrets_broker::v1::RevokeTokenRequest {
        target: Some(paved_proto::secrets_broker::v1::revoke_token_request::Target::TokenId(pat_id)),
    };
    assert_eq!(broker.revoke_token(revoke).await.expect("revoke pat").into_inner().revoked, 2, "pat's token and its child");
    let answer = broker.introspect_token(IntrospectTokenRequest { token: child }).await.expect("introspect").into_inner();
    assert!(!answer.active, "the child went with its parent");
    assert!(took < Duration::from_secs(3), "revocation took {took:?}");
    eprintln!("revocation reached the provisioner in {took:?}");

    // Key rotation: tokens signed before keep working; new ones use the new key.
    let out = paved_with(&root, &["token", "rotate-key", "--endpoint", &endpoint]).await;
    assert!(out.status.success() && text(&out.stdout).starts_with("signing with key "), "{}", text(&out.stderr));
    let new_kid = text(&out.stdout).trim().trim_start_matches("signing with key ").to_string();
    let fresh = issue(&channel, &root, IssueTokenRequest { subject: "new".into(), role: "viewer".into(), ..Default::default() })
        .await
        .expect("issue after rotation");
    let mut as_fresh = ProvisionerServiceClient::new(authed(channel.clone(), &fresh));
    eventually("the new key published", Duration::from_secs(5), || {
        let mut client = as_fresh.clone();
        async move { client.list_workloads(ListWorkloadsRequest::default()).await.ok() }
    })
    .await;
    as_fresh.list_workloads(ListWorkloadsRequest::default()).await.expect("new key");
    // The new key was published before it signed, and the old one stays.
    let set =
        SecretsBrokerServiceClient::new(channel.clone()).get_key_set(GetKeySetRequest::default()).await.expect("key set").into_inner();
    assert!(set.keys.len() >= 2 && set.keys.iter().any(|k| k.key_id == new_kid), "{:?}", set.keys);
    tokio::time::sleep(Duration::from_secs(4)).await;
    as_deployer.list_workloads(ListWorkloadsRequest::default()).await.expect("a token of the old key still verifies");
    let newest = issue(&channel, &root, IssueTokenRequest { subject: "newest".into(), role: "viewer".into(), ..Default::default() })
        .await
        .expect("issue with the new key");
    ProvisionerServiceClient::new(authed(channel.clone(), &newest))
        .list_workloads(ListWorkloadsRequest::default())
        .await
        .expect("a token of the new key verifies at once: it was published ahead");

    // The CLI: a stored login is used; a forged token is never stored.
    let config = tempfile::tempdir().expect("config dir");
    let cli = |args: &[&str]| {
        let mut command = tokio::process::Command::new(paved_integration_tests::bin_dir().join("paved"));
        command.args(args).env("PAVED_CONFIG_DIR", config.path()).env_remove("PAVED_TOKEN");
        async move { command.output().await.expect("run paved") }
    };
    let out = cli(&["login", "--token", &forged, "--endpoint", &endpoint]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("does not verify"), "{}", text(&out.stderr));
    let out = cli(&["status", "--endpoint", &endpoint]).await;
    assert!(!out.status.success() && text(&out.stderr).contains("paved login"), "{}", text(&out.stderr));
    let out = cli(&["login", "--token", &deployer, "--endpoint", &endpoint]).await;
    assert!(out.status.success() && text(&out.stdout).contains("logged in to"), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("as dora"), "{}", text(&out.stdout));
    let out = cli(&["login", "--token", &deployer, "--endpoint", &endpoint, "--output", "json"]).await;
    let login: serde_json::Value = serde_json::from_slice(&out.stdout).expect("login JSON");
    assert!(login["subject"] == "dora" && login["scopes"].is_array() && login["expire_time"].is_string(), "{login}");
    assert!(!login.to_string().contains(&deployer), "the token is never printed");
    let stored = config.path().join("credentials.json");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&stored).expect("stored").permissions().mode() & 0o777, 0o600);
    let out = cli(&["status", "--endpoint", &endpoint]).await;
    assert!(out.status.success() && text(&out.stdout).contains("shop"), "{}", text(&out.stderr));
    let out = cli(&["token", "list", "--endpoint", &endpoint]).await;
    assert!(out.status.success() && text(&out.stdout).contains("revoked"), "{}", text(&out.stdout));
    assert!(!text(&out.stdout).contains(&root[5..40]), "token values are never listed");
    let out = cli(&["token", "list", "--output", "json", "--endpoint", &endpoint]).await;
    let tokens: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("token list json");
    assert!(tokens.iter().any(|t| t["revoke_time"].is_string()) && tokens.iter().all(|t| t["id"].is_string()), "{tokens:?}");
    assert!(!text(&out.stdout).contains(&root[5..40]), "token values are never listed");

    // Every issue, revocation and rotation is in the audit log, by id only.
    let mut audit = AuditServiceClient::new(authed(channel.clone(), &root));
    let kinds = eventually("broker events in the audit log", Duration::from_secs(20), || {
        let mut audit = audit.clone();
        async move {
            let entries = audit.list_entries(ListEntriesRequest { page_size: 1000, page_token: String::new() }).await.ok()?.into_inner();
            let kinds: Vec<String> =
                entries.entries.iter().map(|e| e.r#type.clone()).filter(|t| t.starts_with("paved.secrets_broker.v1.")).collect();
            // The first key, made at start, and the rotated one.
            (kinds.iter().filter(|k| k.ends_with("signing_key.rotated")).count() >= 2).then_some(kinds)
        }
    })
    .await;
    for kind in ["token.issued", "token.renewed", "token.revoked", "signing_key.rotated"] {
        assert!(kinds.iter().any(|k| k.ends_with(kind)), "{kind} missing in {kinds:?}");
    }
    // Every refusal of the auth layer is an event too: who, what, why.
    let denied = eventually("refusals in the audit log", Duration::from_secs(20), || {
        let mut audit = audit.clone();
        async move {
            let entries = audit.list_entries(ListEntriesRequest { page_size: 1000, page_token: String::new() }).await.ok()?.into_inner();
            let denied: Vec<(String, String, String)> = entries
                .entries
                .iter()
                .filter(|e| e.r#type == "paved.events.v1.access.denied")
                .filter_map(|e| match paved_stream::event::decode(&e.envelope).ok()?.payload? {
                    paved_proto::events::v1::envelope::Payload::AccessDenied(d) => Some((d.method, d.subject, d.reason)),
                    _ => None,
                })
                .collect();
            denied.iter().any(|(_, who, why)| who.starts_with("sha256:") && why == "MISSING_SCOPE").then_some(denied)
        }
    })
    .await;
    // People are in the log as commitments, never by name.
    let vera = commitment(&audit, "vera").await;
    let apply = "/paved.provisioner.v1.ProvisionerService/ApplyWorkload";
    assert!(denied.iter().any(|d| d == &(apply.to_string(), vera.clone(), "MISSING_SCOPE".to_string())), "{denied:?}");
    for why in ["TOKEN_MISSING", "TOKEN_INVALID"] {
        assert!(denied.iter().any(|(_, who, reason)| who.is_empty() && reason == why), "{why} missing in {denied:?}");
    }
    let entries = audit.list_entries(ListEntriesRequest { page_size: 1000, page_token: String::new() }).await.expect("entries");
    let dump = format!("{:?}", entries.into_inner());
    for token in [&root, &viewer, &deployer, &fresh] {
        assert!(!dump.contains(&token[5..40]), "no token value in the audit log");
    }
    platform.stop().await.expect("stop");
}

/// A rollout watch lives no longer than its token: revoked, the stream ends
/// UNAUTHENTICATED while the rollout goes on.
#[tokio::test]
async fn a_rollout_watch_ends_when_its_token_is_revoked() {
    use paved_proto::provisioner::v1::WatchRolloutRequest;
    use paved_proto::secrets_broker::v1::{RevokeTokenRequest, revoke_token_request::Target};
    let (_dir, platform, _svc) = embedded().await;
    let channel = paved::client::channel(&platform.addr.to_string()).await.expect("channel");
    let root = platform.root_token.clone();
    let mut provisioner = ProvisionerServiceClient::new(authed(channel.clone(), &root));
    let spec = |version: &str| {
        format!("name: slow\ncommand: [\"hello\"]\nrollout:\n  steps: [50, 100]\n  interval: 120s\nenv:\n  HELLO_VERSION: {version}\n")
    };
    let apply = |version: &str| ApplyWorkloadRequest {
        environment: "dev".into(),
        spec_yaml: spec(version),
        spec_path: String::new(),
        request_id: String::new(),
        spec: None,
    };
    // The first revision goes to all traffic; the second is held at its
    // first step (120 s) and paused there.
    let first = provisioner.apply_workload(apply("v1")).await.expect("v1").into_inner().rollout.expect("a rollout").id;
    eventually("v1 promoted", Duration::from_secs(30), || {
        let (mut provisioner, id) = (provisioner.clone(), first.clone());
        async move {
            let rollout =
                provisioner.get_rollout(paved_proto::provisioner::v1::GetRolloutRequest { id }).await.ok()?.into_inner().rollout?;
            (rollout.state() == paved_proto::provisioner::v1::RolloutState::Promoted).then_some(())
        }
    })
    .await;
    let rollout = provisioner.apply_workload(apply("v2")).await.expect("v2").into_inner().rollout.expect("a rollout").id;
    provisioner.pause_rollout(paved_proto::provisioner::v1::PauseRolloutRequest { id: rollout.clone() }).await.expect("pause");
    let request = IssueTokenRequest { subject: "wanda".into(), role: "viewer".into(), ..Default::default() };
    let watcher = issue(&channel, &root, request).await.expect("a viewer's token");
    let mut watch = ProvisionerServiceClient::new(authed(channel.clone(), &watcher))
        .watch_rollout(WatchRolloutRequest { id: rollout.clone() })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("a first message").expect("the rollout");
    let first = first.rollout.expect("rollout");
    assert!(first.id == rollout && first.state() == paved_proto::provisioner::v1::RolloutState::Paused, "{first:?}");
    let jti = SecretsBrokerServiceClient::new(authed(channel.clone(), &root))
        .introspect_token(paved_proto::secrets_broker::v1::IntrospectTokenRequest { token: watcher.clone() })
        .await
        .expect("introspect")
        .into_inner()
        .info
        .expect("info")
        .token_id;
    SecretsBrokerServiceClient::new(authed(channel.clone(), &root))
        .revoke_token(RevokeTokenRequest { target: Some(Target::TokenId(jti)) })
        .await
        .expect("revoke");
    let revoked_at = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match watch.message().await {
                Err(status) => return status,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without saying why"),
            }
        }
    })
    .await
    .expect("the watch ends within seconds of the revocation");
    assert_eq!((ended.code(), reason(&ended)), (Code::Unauthenticated, "TOKEN_REVOKED".to_string()), "{ended:?}");
    assert!(revoked_at.elapsed() < Duration::from_secs(5), "{:?}", revoked_at.elapsed());
    // The rollout itself goes on.
    let rollout = provisioner
        .get_rollout(paved_proto::provisioner::v1::GetRolloutRequest { id: rollout })
        .await
        .expect("rollout")
        .into_inner()
        .rollout
        .expect("rollout");
    assert_eq!(rollout.state(), paved_proto::provisioner::v1::RolloutState::Paused, "{rollout:?}");
    platform.stop().await.expect("stop");
}

/// The broker's refusals to issue carry `ErrorInfo` (what was lacking, in
/// its metadata) and are `token.denied` events; a handler's refusal at
/// another service is an `access.denied` event like the layer's; and
/// introspection says a token is inactive from its `expire_time` on.
#[tokio::test]
async fn refusals_carry_error_info_and_are_events() {
    let (_dir, platform, _svc) = embedded().await;
    let channel = paved::client::channel(&platform.addr.to_string()).await.expect("channel");
    let root = platform.root_token.clone();
    let own = |scopes: &[&str]| IssueTokenRequest {
        subject: "petra".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let petra = issue(&channel, &root, own(&["read:*", "write:provisioner", "write:secrets-broker", "deploy:dev/shop"]))
        .await
        .expect("issue petra");

    let info = |status: &tonic::Status| {
        let info = status.get_details_error_info().unwrap_or_else(|| panic!("no ErrorInfo: {status:?}"));
        (status.code(), info.reason, info.metadata.get("scope").cloned().unwrap_or_default())
    };
    let for_other = IssueTokenRequest { subject: "mallory".into(), ..own(&["read:*"]) };
    let refused = issue(&channel, &petra, for_other).await.expect_err("another subject");
    assert_eq!(info(&refused), (Code::PermissionDenied, "MISSING_SCOPE".into(), "issue:subjects".into()));
    let refused = issue(&channel, &petra, own(&["write:audit"])).await.expect_err("a scope not held");
    assert_eq!(info(&refused), (Code::PermissionDenied, "SCOPE_NOT_HELD".into(), "write:audit".into()));
    let admin = IssueTokenRequest { role: "admin".into(), ..own(&[]) };
    let refused = issue(&channel, &petra, admin).await.expect_err("role admin");
    assert_eq!(info(&refused), (Code::PermissionDenied, "SCOPE_NOT_HELD".into(), "*".into()));

    // A handler's own refusal (the deploy scope of another workload).
    let other = ApplyWorkloadRequest { spec_yaml: "name: billing\ncommand: [\"hello\"]\n".into(), ..apply("dev") };
    let refused = ProvisionerServiceClient::new(authed(channel.clone(), &petra)).apply_workload(other).await.expect_err("billing");
    assert_eq!(info(&refused), (Code::PermissionDenied, "MISSING_SCOPE".into(), "deploy:dev/billing".into()));

    let audit = AuditServiceClient::new(authed(channel.clone(), &root));
    let (petra_c, mallory_c) = (commitment(&audit, "petra").await, commitment(&audit, "mallory").await);
    let (denied, access) = eventually("the refusals in the audit log", Duration::from_secs(20), || {
        let (mut audit, petra_c) = (audit.clone(), petra_c.clone());
        async move {
            let entries = audit.list_entries(ListEntriesRequest { page_size: 1000, page_token: String::new() }).await.ok()?.into_inner();
            let mut denied = Vec::new();
            let mut access = Vec::new();
            for entry in &entries.entries {
                match paved_stream::event::decode(&entry.envelope).ok()?.payload? {
                    paved_proto::events::v1::envelope::Payload::BrokerActed(a) if a.action == "token.denied" => {
                        denied.push((a.actor, a.for_subject, a.reason))
                    }
                    paved_proto::events::v1::envelope::Payload::AccessDenied(d) if d.subject == petra_c => {
                        access.push((d.method, d.reason))
                    }
                    _ => {}
                }
            }
            (denied.len() >= 3 && !access.is_empty()).then_some((denied, access))
        }
    })
    .await;
    assert_eq!(denied.len(), 3, "{denied:?}");
    assert!(denied.iter().all(|(actor, _, _)| actor == &petra_c), "{denied:?}");
    assert!(denied.iter().any(|(_, target, why)| target == &mallory_c && why.contains("issue:subjects")), "{denied:?}");
    let dump = format!("{denied:?}{access:?}");
    assert!(!dump.contains("petra") && !dump.contains("mallory"), "a name in the log: {dump}");
    assert!(denied.iter().any(|(_, _, why)| why.contains("cannot grant scope *")), "{denied:?}");
    let apply_method = "/paved.provisioner.v1.ProvisionerService/ApplyWorkload".to_string();
    assert_eq!(access, vec![(apply_method, "MISSING_SCOPE".to_string())]);

    // Introspection tells the truth at the second the token expires,
    // though verifiers would accept it for LEEWAY_SECS more.
    let short = IssueTokenRequest { ttl: Some(prost_types::Duration { seconds: 1, nanos: 0 }), ..own(&["read:audit"]) };
    let short = issue(&channel, &petra, short).await.expect("a one-second token");
    let mut broker = SecretsBrokerServiceClient::new(authed(channel.clone(), &root));
    let answer = broker.introspect_token(IntrospectTokenRequest { token: short.clone() }).await.expect("introspect").into_inner();
    let expire = answer.info.as_ref().and_then(|i| i.expire_time).expect("expire_time").seconds;
    assert!(answer.active, "active before it expires: {answer:?}");
    let wait = u64::try_from(expire - chrono::Utc::now().timestamp()).unwrap_or(0) + 1;
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let answer = broker.introspect_token(IntrospectTokenRequest { token: short.clone() }).await.expect("introspect").into_inner();
    assert!(!answer.active && answer.reason.contains("expired"), "inactive from expire_time on: {answer:?}");
    AuditServiceClient::new(authed(channel.clone(), &short))
        .list_entries(ListEntriesRequest::default())
        .await
        .expect("verifiers still accept it within the documented leeway");
    platform.stop().await.expect("stop");
}

/// A person's commitment in the audit log, once the log has seen them.
async fn commitment(audit: &AuditServiceClient<paved_grpc::client::AuthChannel>, name: &str) -> String {
    eventually(&format!("{name} in the audit log"), Duration::from_secs(20), || {
        let mut audit = audit.clone();
        async move {
            // A page larger than the largest is taken as the largest, as every List's.
            let request = QueryLogRequest { actor: name.to_string(), page_size: 5000, ..Default::default() };
            let answer = audit.query_log(request).await.ok()?.into_inner();
            (!answer.chain.is_empty()).then_some(answer.chain)
        }
    })
    .await
}
