//! mTLS in production mode: the broker's CA issues short-lived SPIFFE
//! certificates; the broker and a service (audit) serve TLS with theirs,
//! renew them, verify peers against the bundle, and accept a platform
//! service's token only from that service's certificate. The CA rotates
//! with a bundle that trusts old and new during the overlap.

use paved_grpc::tls::{Tls, platform_id};
use paved_integration_tests::{authed, eventually, postgres_database, redis_namespace, start_broker_with};
use paved_proto::audit::v1::{ListEntriesRequest, audit_service_client::AuditServiceClient};
use paved_proto::secrets_broker::v1::{
    ExchangeCertificateRequest, ExchangeCertificateResponse, GetTrustBundleRequest, IntrospectTokenRequest, IssueCertificateRequest,
    IssueTokenRequest, RenewCertificateRequest, RenewCertificateResponse, RevokeTokenRequest, RotateCertificateAuthorityRequest,
    revoke_token_request, secrets_broker_service_client::SecretsBrokerServiceClient,
};
use paved_service::{BasicConfig, Common, MtlsOptions, run_consumer};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic_types::StatusExt;

/// A client of `addr` over TLS as `tls`, expecting the server to be `expect`.
fn over_tls(tls: &Tls, addr: std::net::SocketAddr, expect: &str) -> tonic::transport::Channel {
    paved_grpc::tls::connect(&format!("https://{addr}"), Some(tls), Some(expect), |e| e.timeout(Duration::from_secs(10))).expect("channel")
}

/// A certificate for `spiffe_id` issued through `broker` (as the holder of
/// `token`), installed in a fresh client identity.
async fn identity(broker: &SecretsBrokerServiceClient<paved_grpc::client::AuthChannel>, spiffe_id: &str, bundle: &str) -> (Tls, String) {
    let (key, csr_pem) = paved_grpc::tls::new_key(spiffe_id).expect("key");
    let request = IssueCertificateRequest { csr_pem, spiffe_id: spiffe_id.into(), ttl: None };
    let issued = broker.clone().issue_certificate(request).await.expect("certificate").into_inner();
    let tls = Tls::new(spiffe_id, None);
    tls.set_bundle(bundle).expect("bundle");
    let expire = paved_proto::millis_from_timestamp(issued.expire_time.as_ref().expect("expiry"));
    tls.set_certificate(&issued.certificate_pem, key, expire).expect("the certificate names the SPIFFE id");
    (tls, issued.authority_id)
}

/// `tls`'s certificate renewed with itself (RenewCertificate over mTLS,
/// no token), installed in a new identity; and how many seconds it lives.
async fn self_renewed(tls: &Tls, broker: std::net::SocketAddr, bundle: &str) -> Result<(Tls, i64), tonic::Status> {
    let (key, csr_pem) = paved_grpc::tls::new_key(tls.spiffe_id()).expect("key");
    let renewed = renewal(tls, broker, csr_pem).await?;
    assert_eq!(renewed.spiffe_id, tls.spiffe_id(), "the same identity");
    let next = Tls::new(&renewed.spiffe_id, None);
    next.set_bundle(bundle).expect("bundle");
    let expire = paved_proto::millis_from_timestamp(renewed.expire_time.as_ref().expect("expiry"));
    next.set_certificate(&renewed.certificate_pem, key, expire).expect("the certificate names the SPIFFE id");
    Ok((next, expire / 1000 - chrono::Utc::now().timestamp()))
}

/// RenewCertificate for `csr_pem`, over mTLS as `tls`.
async fn renewal(tls: &Tls, broker: std::net::SocketAddr, csr_pem: String) -> Result<RenewCertificateResponse, tonic::Status> {
    let mut client = SecretsBrokerServiceClient::new(over_tls(tls, broker, &platform_id("secrets-broker")));
    Ok(client.renew_certificate(RenewCertificateRequest { csr_pem, ttl: None }).await?.into_inner())
}

/// A token for `tls`'s certificate (ExchangeCertificate over mTLS, no token).
async fn exchanged(tls: &Tls, broker: std::net::SocketAddr) -> Result<ExchangeCertificateResponse, tonic::Status> {
    let mut client = SecretsBrokerServiceClient::new(over_tls(tls, broker, &platform_id("secrets-broker")));
    Ok(client.exchange_certificate(ExchangeCertificateRequest {}).await?.into_inner())
}

/// A certificate for `spiffe_id` from a CA of its own, not the broker's.
fn foreign_identity(spiffe_id: &str, bundle: &str) -> Tls {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca = rcgen::CertificateParams::default();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    ca.self_signed(&ca_key).expect("CA");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let mut leaf = rcgen::CertificateParams::default();
    leaf.subject_alt_names = vec![rcgen::SanType::URI(spiffe_id.try_into().expect("uri"))];
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth, rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).expect("leaf");
    let tls = Tls::new(spiffe_id, None);
    tls.set_bundle(bundle).expect("bundle");
    tls.set_certificate(&cert.pem(), key.serialize_der(), chrono::Utc::now().timestamp_millis() + 3_600_000).expect("certificate");
    tls
}

fn reason(status: &tonic::Status) -> String {
    status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
}

/// A broker serving mTLS, and what the tests need of it.
struct MtlsBroker {
    address: std::net::SocketAddr,
    root: String,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The bundle file it writes for the services that start from it.
    bundle_file: std::path::PathBuf,
    bundle: String,
    /// A person: TLS trusting the bundle, no certificate.
    person: Tls,
}

async fn mtls_broker(dir: &std::path::Path, stream: &str, shutdown: &CancellationToken) -> MtlsBroker {
    let bundle_file = dir.join("trust-bundle.pem");
    let mtls = MtlsOptions { enabled: true, trust_bundle_file: Some(bundle_file.clone()), ..Default::default() };
    let (address, root, task) = start_broker_with(stream, mtls, shutdown).await;
    let bundle = eventually("the broker's trust bundle file", Duration::from_secs(20), || {
        let file = bundle_file.clone();
        async move { std::fs::read_to_string(file).ok().filter(|b| b.contains("BEGIN CERTIFICATE")) }
    })
    .await;
    let person = Tls::new("spiffe://paved/people/tester", None);
    person.set_bundle(&bundle).expect("bundle");
    MtlsBroker { address, root, task, bundle_file, bundle, person }
}

/// A platform service's settings with mTLS, reaching `broker`: its
/// enrolling token in `<dir>/<name>.token`, its certificate kept in
/// `<dir>/<name>-identity`.
fn mtls_common(
    name: &str,
    listen: std::net::SocketAddr,
    database_url: String,
    stream: &str,
    broker: std::net::SocketAddr,
    bundle_file: &std::path::Path,
    dir: &std::path::Path,
) -> Common {
    Common {
        listen,
        database_url,
        stream_url: stream.to_string(),
        log_format: "pretty".into(),
        stream_max_len: 10_000,
        broker_url: format!("https://{broker}"),
        mtls: MtlsOptions {
            enabled: true,
            trust_bundle_file: Some(bundle_file.to_path_buf()),
            token_file: Some(dir.join(format!("{name}.token"))),
            certificate_dir: Some(dir.join(format!("{name}-identity"))),
        },
    }
}

#[tokio::test]
async fn services_speak_mtls_with_broker_issued_spiffe_certificates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stream = redis_namespace("it_mtls").await;
    let shutdown = CancellationToken::new();
    let MtlsBroker { address: broker, root, task: broker_task, bundle_file, bundle, person } =
        mtls_broker(dir.path(), &stream, &shutdown).await;
    let as_root = SecretsBrokerServiceClient::new(authed(over_tls(&person, broker, &platform_id("secrets-broker")), &root));
    let trusted = eventually("the broker serving TLS", Duration::from_secs(20), || {
        let mut client = as_root.clone();
        async move {
            // An authenticated call: the broker has loaded its own key set.
            client.list_identities(paved_proto::secrets_broker::v1::ListIdentitiesRequest::default()).await.ok()?;
            client.get_trust_bundle(GetTrustBundleRequest {}).await.ok()
        }
    })
    .await
    .into_inner();
    assert_eq!(trusted.authorities.len(), 1);
    assert_eq!(trusted.trust_bundle_pem, bundle);
    // Not TLS, no answer; a server that is not who the client expects, no call.
    let plain = tonic::transport::Channel::from_shared(format!("http://{broker}")).expect("uri").connect_lazy();
    let mut plain = SecretsBrokerServiceClient::new(plain);
    assert!(plain.get_trust_bundle(GetTrustBundleRequest {}).await.is_err(), "plain text to an mTLS server");
    let mut impostor = SecretsBrokerServiceClient::new(over_tls(&person, broker, &platform_id("audit")));
    assert!(impostor.get_trust_bundle(GetTrustBundleRequest {}).await.is_err(), "the broker is not audit");

    // The audit service: a token for its identity in a file; its
    // certificate from the broker, over TLS it trusts from the bundle file.
    let issue = |subject: &str, scopes: &[&str]| IssueTokenRequest {
        subject: subject.into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let mut root_client = as_root.clone();
    // Its certificate needs certs:issue for its own identity too: anyone
    // issuing tokens chooses their subjects.
    let bare = root_client.issue_token(issue(&platform_id("audit"), &["read:audit"])).await.expect("token").into_inner().token;
    let audit_token = root_client
        .issue_token(issue(&platform_id("audit"), &["read:audit", "certs:issue:platform/audit"]))
        .await
        .expect("token")
        .into_inner()
        .token;
    // Its identity token lives 30 s, and so does the first certificate it
    // gets; it renews that certificate (at two thirds of its life) with
    // the certificate, for as long as the token is not revoked.
    let mut first = issue(&platform_id("audit"), &["certs:enrol:platform/audit"]);
    first.ttl = Some(prost_types::Duration { seconds: 30, nanos: 0 });
    let first = root_client.issue_token(first).await.expect("token").into_inner().token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let audit = listener.local_addr().expect("addr");
    let common = mtls_common("audit", audit, postgres_database("it_mtls_audit").await, &stream, broker, &bundle_file, dir.path());
    let token_file = common.mtls.token_file.clone().expect("token file");
    std::fs::write(&token_file, &first).expect("token file");
    let start_audit = |listener: tokio::net::TcpListener, shutdown: CancellationToken| {
        let config = BasicConfig { common: common.clone(), options: paved_integration_tests::audit_options() };
        tokio::spawn(run_consumer::<paved_audit::Audit>(config, listener, shutdown))
    };
    let audit_shutdown = shutdown.child_token();
    let audit_task = start_audit(listener, audit_shutdown.clone());
    let audit_started = std::time::Instant::now();

    // A platform service's token is accepted only with its certificate.
    let provisioner_token =
        root_client.issue_token(issue(&platform_id("provisioner"), &["read:audit"])).await.expect("token").into_inner().token;
    let list = ListEntriesRequest { page_size: 1000, page_token: String::new() };
    let mut no_cert = AuditServiceClient::new(authed(over_tls(&person, audit, &platform_id("audit")), &provisioner_token));
    let status = eventually("audit serving TLS with its own certificate", Duration::from_secs(30), || {
        let (mut client, list) = (no_cert.clone(), list.clone());
        async move { client.list_entries(list).await.err().filter(|s| s.code() == Code::Unauthenticated) }
    })
    .await;
    assert_eq!(reason(&status), "PEER_CERTIFICATE_REQUIRED", "{status:?}");
    // From here on the file holds no token: audit renews its certificate
    // with the certificate itself.
    std::fs::write(&token_file, "gone").expect("no token in the file");
    let (provisioner, first_ca) = identity(&as_root, &platform_id("provisioner"), &bundle).await;
    let mut with_cert = AuditServiceClient::new(authed(over_tls(&provisioner, audit, &platform_id("audit")), &provisioner_token));
    with_cert.list_entries(list.clone()).await.expect("the provisioner's token with its certificate");
    // Audit's certificate's expiry is on /metrics (the process-wide
    // registry), for the alert that fires when renewals keep failing.
    let series = format!("paved_certificate_expiry_timestamp_seconds{{identity=\"{}\"}} ", platform_id("audit"));
    let exposed = paved_telemetry::encode_metrics();
    let expiry: i64 =
        exposed.lines().find_map(|l| l.strip_prefix(&series)?.trim().parse().ok()).expect("audit's certificate expiry exposed");
    let now = chrono::Utc::now().timestamp();
    assert!(expiry > now && expiry <= now + 3600 + 60, "expires at {expiry}, now {now}");
    // Someone else's certificate does not carry the provisioner's token.
    let (audit_cert, _) = identity(&as_root, &platform_id("audit"), &bundle).await;
    let mut wrong = AuditServiceClient::new(authed(over_tls(&audit_cert, audit, &platform_id("audit")), &provisioner_token));
    let status = wrong.list_entries(list.clone()).await.expect_err("a token of the provisioner from audit's certificate");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::Unauthenticated, "PEER_CERTIFICATE_REQUIRED"));
    // A person's token needs no certificate.
    let mut person_audit = AuditServiceClient::new(authed(over_tls(&person, audit, &platform_id("audit")), &root));
    person_audit.list_entries(list.clone()).await.expect("a person's token over TLS");
    let _ = no_cert.list_entries(list.clone()).await;

    // Bad requests: their fields, and no certificate for another identity
    // without certs:issue.
    let mut as_audit = SecretsBrokerServiceClient::new(authed(over_tls(&person, broker, &platform_id("secrets-broker")), &audit_token));
    let bad = IssueCertificateRequest {
        csr_pem: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".into(),
        ..Default::default()
    };
    let status = as_audit.issue_certificate(bad).await.expect_err("garbage CSR");
    let fields: Vec<String> = status.get_details_bad_request().expect("violations").field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!((status.code(), fields), (Code::InvalidArgument, vec!["csr_pem".to_string()]));
    let (_, csr_pem) = paved_grpc::tls::new_key(&platform_id("audit")).expect("key");
    let too_long = IssueCertificateRequest {
        csr_pem: csr_pem.clone(),
        spiffe_id: "spiffe://elsewhere/x".into(),
        ttl: Some(prost_types::Duration { seconds: 48 * 3600, nanos: 0 }),
    };
    let status = as_audit.issue_certificate(too_long).await.expect_err("bad id and ttl");
    let fields: Vec<String> = status.get_details_bad_request().expect("violations").field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["spiffe_id", "ttl"]);
    let theirs = IssueCertificateRequest { csr_pem: csr_pem.clone(), spiffe_id: platform_id("provisioner"), ttl: None };
    let status = as_audit.issue_certificate(theirs).await.expect_err("another's identity");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("certs:issue:platform/provisioner"), "{}", status.message());
    let mut as_bare = SecretsBrokerServiceClient::new(authed(over_tls(&person, broker, &platform_id("secrets-broker")), &bare));
    let status =
        as_bare.issue_certificate(IssueCertificateRequest { csr_pem: csr_pem.clone(), ..Default::default() }).await.expect_err("no scope");
    assert!(status.code() == Code::PermissionDenied && status.message().contains("certs:issue:platform/audit"), "{status:?}");
    let own = as_audit
        .issue_certificate(IssueCertificateRequest { csr_pem: csr_pem.clone(), ..Default::default() })
        .await
        .expect("its own")
        .into_inner();
    assert_eq!(own.spiffe_id, platform_id("audit"));
    let lifetime = own.expire_time.expect("expiry").seconds - chrono::Utc::now().timestamp();
    assert!((890..=900).contains(&lifetime), "1 h by default, cut to the token's 15 min: {lifetime}");
    // Never longer than the token that asked: certificates are not revoked.
    let mut short = issue(&platform_id("audit"), &["certs:issue:platform/audit"]);
    short.ttl = Some(prost_types::Duration { seconds: 600, nanos: 0 });
    let short = root_client.issue_token(short).await.expect("token").into_inner().token;
    let mut as_short = SecretsBrokerServiceClient::new(authed(over_tls(&person, broker, &platform_id("secrets-broker")), &short));
    let brief = as_short.issue_certificate(IssueCertificateRequest { csr_pem, ..Default::default() }).await.expect("cert").into_inner();
    let lifetime = brief.expire_time.expect("expiry").seconds - chrono::Utc::now().timestamp();
    assert!((590..=600).contains(&lifetime), "the token's 10 min: {lifetime}");
    // Renewal by the certificate itself, over mTLS: no token. Not without one.
    let status = self_renewed(&person, broker, &bundle).await.expect_err("no client certificate");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::Unauthenticated, "PEER_CERTIFICATE_REQUIRED"));
    // A platform service enrolled for good (a token of its own identity
    // naming certs:enrol for it) renews past that token's life, 1 h each
    // time, while the token is not revoked.
    let minting = root_client.clone();
    let token_for = |subject: &str, scopes: &[&str]| {
        let mut request = issue(subject, scopes);
        request.ttl = Some(prost_types::Duration { seconds: 60, nanos: 0 });
        request.max_ttl = Some(prost_types::Duration { seconds: 120, nanos: 0 });
        let mut client = minting.clone();
        async move { client.issue_token(request).await.expect("token").into_inner() }
    };
    let over = |token: &str| SecretsBrokerServiceClient::new(authed(over_tls(&person, broker, &platform_id("secrets-broker")), token));
    let scheduler_id = platform_id("cost-scheduler");
    let own = token_for(&scheduler_id, &["certs:enrol:platform/cost-scheduler", "read:audit"]).await;
    let (scheduler, _) = identity(&over(&own.token), &scheduler_id, &bundle).await;
    let (key, csr_pem) = paved_grpc::tls::new_key(&scheduler_id).expect("key");
    let answer = renewal(&scheduler, broker, csr_pem.clone()).await.expect("renewed with its certificate");
    let lifetime = answer.expire_time.as_ref().expect("expiry").seconds - chrono::Utc::now().timestamp();
    assert!((3590..=3600).contains(&lifetime), "1 h, past the enrolling token's 2 min: {lifetime}");
    // Its answer lost, the same request gets the same certificate.
    let repeated = renewal(&scheduler, broker, csr_pem).await.expect("the same request again");
    assert_eq!(repeated.certificate_pem, answer.certificate_pem);
    let again = Tls::new(&scheduler_id, None);
    again.set_bundle(&bundle).expect("bundle");
    let expire = paved_proto::millis_from_timestamp(answer.expire_time.as_ref().expect("expiry"));
    again.set_certificate(&answer.certificate_pem, key, expire).expect("certificate");
    // Each certificate renews once: presented again, a copy of its key may be in use.
    let status = self_renewed(&scheduler, broker, &bundle).await.expect_err("renewed already");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::Unauthenticated, "CERTIFICATE_REPLACED"), "{status:?}");
    let (again, lifetime) = self_renewed(&again, broker, &bundle).await.expect("renewed with the renewed one");
    assert!((3590..=3600).contains(&lifetime), "{lifetime}");
    // Never asked for longer than 1 h: a revocation ends the line within that.
    let mut with_again = SecretsBrokerServiceClient::new(over_tls(&again, broker, &platform_id("secrets-broker")));
    let long = RenewCertificateRequest { csr_pem: "garbage".into(), ttl: Some(prost_types::Duration { seconds: 7200, nanos: 0 }) };
    let status = with_again.renew_certificate(long).await.expect_err("bad request");
    let fields: Vec<String> = status.get_details_bad_request().expect("violations").field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!((status.code(), fields), (Code::InvalidArgument, vec!["ttl".to_string()]));
    let garbage = RenewCertificateRequest { csr_pem: "garbage".into(), ttl: None };
    let status = with_again.renew_certificate(garbage).await.expect_err("bad CSR");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::InvalidArgument, "INVALID_CSR"));
    // Its certificate is its login: a token of its identity and the
    // enrolling token's scopes, 15 min, not renewable (exchanged again).
    let status = exchanged(&person, broker).await.expect_err("no client certificate");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::Unauthenticated, "PEER_CERTIFICATE_REQUIRED"));
    let login = exchanged(&again, broker).await.expect("a token for its certificate");
    let info = login.info.clone().expect("info");
    // Never a certificate scope: a login cannot start a line of its own.
    assert_eq!((info.subject.as_str(), info.scopes.as_slice()), (scheduler_id.as_str(), &["read:audit".to_string()][..]));
    let lifetime = info.expire_time.expect("expiry").seconds - chrono::Utc::now().timestamp();
    assert!((890..=900).contains(&lifetime), "15 min: {lifetime}");
    assert_eq!(info.renewable_until, info.expire_time);
    let status = exchanged(&scheduler, broker).await.expect_err("a replaced certificate");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::Unauthenticated, "CERTIFICATE_REPLACED"));
    // Revoking the identity ends its renewals and its logins, and revokes
    // the tokens they got.
    let revoke = RevokeTokenRequest { target: Some(revoke_token_request::Target::Subject(scheduler_id.clone())) };
    root_client.revoke_token(revoke).await.expect("revoke the identity");
    let status = self_renewed(&again, broker, &bundle).await.expect_err("its identity is revoked");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::Unauthenticated, "ENROLMENT_REVOKED"), "{status:?}");
    let status = exchanged(&again, broker).await.expect_err("its identity is revoked");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::Unauthenticated, "ENROLMENT_REVOKED"), "{status:?}");
    let introspected = root_client.introspect_token(IntrospectTokenRequest { token: login.token }).await.expect("introspect").into_inner();
    assert!(!introspected.active, "the exchanged token went with its enrolment: {introspected:?}");
    // Enrolled without naming certs:enrol (here through a wildcard, by a
    // token of the identity as anyone with write:secrets-broker can make),
    // a platform identity renews no longer than that token could (2 min).
    let admin = token_for(&platform_id("canary-analyzer"), &["certs:issue:platform/*"]).await;
    let (analyzer, _) = identity(&over(&admin.token), &platform_id("canary-analyzer"), &bundle).await;
    let (analyzer, lifetime) = self_renewed(&analyzer, broker, &bundle).await.expect("renewed");
    assert!((60..=120).contains(&lifetime), "cut to the token's renewable_until: {lifetime}");
    let status = exchanged(&analyzer, broker).await.expect_err("no login");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::PermissionDenied, "CERTIFICATE_NOT_A_LOGIN"), "{status:?}");
    // A workload's never past its identity token's renewable_until (20 min
    // here), and not at all once that token is revoked.
    let shop_id = "spiffe://paved/dev/shop";
    let mut shop = issue(shop_id, &["certs:issue:dev/shop"]);
    shop.ttl = Some(prost_types::Duration { seconds: 600, nanos: 0 });
    shop.max_ttl = Some(prost_types::Duration { seconds: 1200, nanos: 0 });
    let shop = root_client.issue_token(shop).await.expect("token").into_inner();
    let as_shop = SecretsBrokerServiceClient::new(authed(over_tls(&person, broker, &platform_id("secrets-broker")), &shop.token));
    let (shop_cert, _) = identity(&as_shop, shop_id, &bundle).await;
    let (shop_renewed, lifetime) = self_renewed(&shop_cert, broker, &bundle).await.expect("a workload renews too");
    assert!((1100..=1200).contains(&lifetime), "cut to the token's renewable_until: {lifetime}");
    let revoke = RevokeTokenRequest { target: Some(revoke_token_request::Target::TokenId(shop.info.expect("info").token_id)) };
    root_client.revoke_token(revoke).await.expect("revoke the enrolling token");
    let status = self_renewed(&shop_renewed, broker, &bundle).await.expect_err("its enrolment is revoked");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::Unauthenticated, "ENROLMENT_REVOKED"), "{status:?}");
    let status = self_renewed(&shop_cert, broker, &bundle).await.expect_err("replaced, and revoked");
    assert_eq!(status.code(), Code::Unauthenticated);

    // No bootstrap token mints a platform identity.
    let platform = paved_proto::secrets_broker::v1::IssueBootstrapTokenRequest {
        environment: "platform".into(),
        workload: "secrets-broker".into(),
        revision_id: "r1".into(),
        ..Default::default()
    };
    let status = root_client.issue_bootstrap_token(platform).await.expect_err("platform is reserved");
    let fields: Vec<String> = status.get_details_bad_request().expect("violations").field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!((status.code(), fields), (Code::InvalidArgument, vec!["environment".to_string()]));

    // As a person at the CLI: the bundle, and a certificate for a key made
    // on their machine, over TLS to the broker.
    let cli = |args: &[&str], bundle: Option<&std::path::Path>| {
        let mut command = tokio::process::Command::new(paved_integration_tests::bin_dir().join("paved"));
        command.args(args).args(["--endpoint", &format!("https://{broker}")]);
        // Renewal presents the certificate alone.
        if args[..2] != ["ca", "renew"] {
            command.env("PAVED_TOKEN", &root);
        } else {
            command.env_remove("PAVED_TOKEN");
        }
        command.env("PAVED_CONFIG_DIR", dir.path().join("cli")).env_remove("PAVED_CA_BUNDLE");
        if let Some(file) = bundle {
            command.env("PAVED_CA_BUNDLE", file);
        }
        async move { command.output().await.expect("paved") }
    };
    let shown = cli(&["ca", "bundle"], Some(&bundle_file)).await;
    assert!(shown.status.success(), "{}", paved_integration_tests::text(&shown.stderr));
    assert_eq!(paved_integration_tests::text(&shown.stdout), bundle);
    let shown = cli(&["ca", "bundle"], None).await;
    assert!(!shown.status.success() && paved_integration_tests::text(&shown.stderr).contains("PAVED_CA_BUNDLE"));
    let out = dir.path().join("shop-cert");
    let out_arg = out.display().to_string();
    let shown =
        cli(&["ca", "issue", "--spiffe-id", "spiffe://paved/dev/shop", "--ttl", "10m", "--out", &out_arg], Some(&bundle_file)).await;
    assert!(shown.status.success(), "{}", paved_integration_tests::text(&shown.stderr));
    let cert = std::fs::read_to_string(out.join("cert.pem")).expect("cert.pem");
    let der = paved_grpc::tls::certificates(&cert).expect("a certificate").remove(0);
    assert_eq!(paved_grpc::tls::spiffe_id(&der).as_deref(), Some("spiffe://paved/dev/shop"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(out.join("key.pem")).expect("key.pem").permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(out.join("bundle.pem")).expect("bundle.pem"), bundle);
    // Renewed with itself over mTLS, no token: a new key and certificate.
    let key = std::fs::read_to_string(out.join("key.pem")).expect("key.pem");
    let shown = cli(&["ca", "renew", "--dir", &out_arg], None).await;
    assert!(shown.status.success(), "{}", paved_integration_tests::text(&shown.stderr));
    assert!(paved_integration_tests::text(&shown.stdout).starts_with("spiffe://paved/dev/shop until "));
    let renewed_cert = std::fs::read_to_string(out.join("cert.pem")).expect("cert.pem");
    assert_ne!(renewed_cert, cert);
    assert_ne!(std::fs::read_to_string(out.join("key.pem")).expect("key.pem"), key);
    let der = paved_grpc::tls::certificates(&renewed_cert).expect("a certificate").remove(0);
    assert_eq!(paved_grpc::tls::spiffe_id(&der).as_deref(), Some("spiffe://paved/dev/shop"));
    let shown = cli(&["ca", "renew", "--dir", &dir.path().join("nowhere").display().to_string()], None).await;
    assert!(!shown.status.success() && paved_integration_tests::text(&shown.stderr).contains("paved ca issue --out"));

    // CA rotation: the new CA is in the bundle before it signs; the old one
    // stays while certificates it signed live. Both are trusted meanwhile.
    let rotated = root_client.rotate_certificate_authority(RotateCertificateAuthorityRequest {}).await.expect("rotate").into_inner();
    let new_ca = rotated.authority.expect("authority").id;
    let trusted = root_client.get_trust_bundle(GetTrustBundleRequest {}).await.expect("bundle").into_inner();
    let ids: Vec<&str> = trusted.authorities.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, [new_ca.as_str(), first_ca.as_str()]);
    assert!(trusted.authorities[1].retire_time.is_some());
    // Published ahead: the old CA still signs, while every peer learns the new one.
    let (_, signer) = identity(&as_root, &platform_id("provisioner"), &trusted.trust_bundle_pem).await;
    assert_eq!(signer, first_ca, "a new CA does not sign before its publication");
    let (renewed, signer) = eventually("a certificate from the new CA", Duration::from_secs(45), || {
        let (as_root, bundle, first_ca) = (as_root.clone(), trusted.trust_bundle_pem.clone(), first_ca.clone());
        async move {
            let (tls, signer) = identity(&as_root, &platform_id("provisioner"), &bundle).await;
            (signer != first_ca).then_some((tls, signer))
        }
    })
    .await;
    assert_eq!(signer, new_ca);
    // Audit learned the new CA during its publication: trusted from its
    // first certificate, and the old CA's too, during the overlap.
    let mut renewed_client = AuditServiceClient::new(authed(over_tls(&renewed, audit, &platform_id("audit")), &provisioner_token));
    renewed_client.list_entries(list.clone()).await.expect("new CA");
    // On a new connection: trust is checked at the handshake.
    let mut old_ca = AuditServiceClient::new(authed(over_tls(&provisioner, audit, &platform_id("audit")), &provisioner_token));
    old_ca.list_entries(list.clone()).await.expect("old CA, during the overlap");
    // Audit's first certificate, cut to its 30 s token, has expired: it
    // serves one renewed with the one before (its token file holds none).
    let wait = Duration::from_secs(35).saturating_sub(audit_started.elapsed());
    tokio::time::sleep(wait).await;
    // A new connection: a certificate is checked at the handshake.
    let mut fresh = AuditServiceClient::new(authed(over_tls(&renewed, audit, &platform_id("audit")), &provisioner_token));
    fresh.list_entries(list.clone()).await.expect("audit serving its renewed certificate");
    // A CA outside the bundle, even naming the right identity: no call.
    let mut foreign = AuditServiceClient::new(authed(
        over_tls(&foreign_identity(&platform_id("provisioner"), &bundle), audit, &platform_id("audit")),
        &provisioner_token,
    ));
    let status = foreign.list_entries(list.clone()).await.expect_err("a certificate from a foreign CA");
    assert_ne!(status.code(), Code::Ok);
    assert!(foreign.list_entries(list.clone()).await.is_err(), "never accepted");

    // Audit keeps its key and certificate: restarted, with still no token
    // in its file, it renews from them.
    let kept = dir.path().join("audit-identity");
    let der = paved_grpc::tls::certificates(&std::fs::read_to_string(kept.join("cert.pem")).expect("cert.pem")).expect("cert").remove(0);
    assert_eq!(paved_grpc::tls::spiffe_id(&der), Some(platform_id("audit")));
    assert_eq!(std::fs::metadata(kept.join("key.pem")).expect("key.pem").permissions().mode() & 0o777, 0o600);
    audit_shutdown.cancel();
    audit_task.await.expect("audit task").expect("audit stopped cleanly");
    let listener = tokio::net::TcpListener::bind(audit).await.expect("audit's address again");
    let audit_task = start_audit(listener, shutdown.clone());
    eventually("audit serving TLS again after a restart", Duration::from_secs(30), || {
        let (mut client, list) =
            (AuditServiceClient::new(authed(over_tls(&renewed, audit, &platform_id("audit")), &provisioner_token)), list.clone());
        async move { client.list_entries(list).await.ok() }
    })
    .await;
    eventually("the kept certificate renewed at start", Duration::from_secs(20), || {
        let (file, der) = (kept.join("cert.pem"), der.clone());
        async move { (paved_grpc::tls::certificates(&std::fs::read_to_string(file).ok()?).ok()?.remove(0) != der).then_some(()) }
    })
    .await;
    // Its certificate is from the new CA now: the person learns the bundle.
    person.set_bundle(&trusted.trust_bundle_pem).expect("bundle");

    // Issue, denial and rotation are events in the audit log.
    eventually("certificate events in the audit log", Duration::from_secs(20), || {
        let (mut client, list) = (person_audit.clone(), list.clone());
        async move {
            let entries = client.list_entries(list).await.ok()?.into_inner().entries;
            let kinds: Vec<String> = entries.iter().map(|e| e.r#type.clone()).collect();
            let wanted = ["certificate.issued", "certificate.renewed", "certificate.denied", "ca.rotated"];
            wanted.iter().all(|k| kinds.iter().any(|t| t.ends_with(k))).then_some(())
        }
    })
    .await;
    shutdown.cancel();
    broker_task.await.expect("broker task").expect("broker stopped cleanly");
    audit_task.await.expect("audit task").expect("audit stopped cleanly");
}

/// The provisioner in production mode with mTLS and no token for its calls:
/// it enrols once with a short token, and each bootstrap token it asks the
/// broker for is asked with a token exchanged for its certificate.
#[tokio::test]
async fn a_provisioner_calls_with_tokens_its_certificate_got() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stream = redis_namespace("it_mtls_prov").await;
    let shutdown = CancellationToken::new();
    let MtlsBroker { address: broker, root, task: broker_task, bundle_file, person, .. } =
        mtls_broker(dir.path(), &stream, &shutdown).await;
    let mut as_root = SecretsBrokerServiceClient::new(authed(over_tls(&person, broker, &platform_id("secrets-broker")), &root));
    // Its enrolment: its own identity, what its calls need, one minute.
    let enrol = IssueTokenRequest {
        subject: platform_id("provisioner"),
        scopes: ["certs:enrol:platform/provisioner", "write:secrets-broker", "bootstrap:issue:*"].map(String::from).to_vec(),
        ttl: Some(prost_types::Duration { seconds: 60, nanos: 0 }),
        ..Default::default()
    };
    let enrol = eventually("the broker serving TLS", Duration::from_secs(20), || {
        let (mut client, enrol) = (as_root.clone(), enrol.clone());
        async move { client.issue_token(enrol).await.ok() }
    })
    .await
    .into_inner();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr");
    let common = mtls_common("provisioner", address, postgres_database("it_mtls_prov").await, &stream, broker, &bundle_file, dir.path());
    let token_file = common.mtls.token_file.clone().expect("token file");
    std::fs::write(&token_file, &enrol.token).expect("token file");
    let config = paved_provisioner::Config {
        common,
        // No token file for its calls: its certificate gets their tokens.
        options: paved_integration_tests::provisioner_options(dir.path().join("provisioner")),
    };
    let provisioner_task = tokio::spawn(paved_provisioner::run(config, listener, shutdown.clone()));

    // A workload declaring a secret starts only with a bootstrap token.
    let handed = dir.path().join("bootstrap-token");
    let spec = paved_integration_tests::handing_spec(&handed, "secrets: [db-password]\n");
    let apply = paved_proto::provisioner::v1::ApplyWorkloadRequest {
        environment: "dev".into(),
        spec_yaml: spec,
        spec_path: String::new(),
        request_id: "shop-1".into(),
        spec: None,
    };
    let provisioner = paved_proto::provisioner::v1::provisioner_service_client::ProvisionerServiceClient::new(authed(
        over_tls(&person, address, &platform_id("provisioner")),
        &root,
    ));
    // Serving once it holds a certificate and a token for its calls.
    let health = tonic_health::pb::health_client::HealthClient::new(over_tls(&person, address, &platform_id("provisioner")));
    eventually("the provisioner serving TLS", Duration::from_secs(30), || {
        let mut health = health.clone();
        async move {
            let check = tonic_health::pb::HealthCheckRequest { service: "paved.provisioner.v1.ProvisionerService".into() };
            let status = health.check(check).await.ok()?.into_inner().status;
            (status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32).then_some(())
        }
    })
    .await;
    let mut provisioner = provisioner;
    provisioner.apply_workload(apply).await.expect("apply");
    let (token, broker_url) = paved_integration_tests::handed(&handed, Duration::from_secs(30)).await;
    assert_eq!(broker_url, format!("https://{broker}"));
    // Exchanged by the provisioner for the process: what it holds is its identity.
    let identity = as_root
        .introspect_token(paved_proto::secrets_broker::v1::IntrospectTokenRequest { token })
        .await
        .expect("introspect")
        .into_inner()
        .info
        .expect("an active identity");
    assert_eq!(identity.subject, "spiffe://paved/dev/shop");
    // Asked for with a token its certificate got: the provisioner's own,
    // issued from its enrolment.
    let tokens = as_root
        .list_tokens(paved_proto::secrets_broker::v1::ListTokensRequest {
            page_size: 100,
            subject: platform_id("provisioner"),
            ..Default::default()
        })
        .await
        .expect("tokens")
        .into_inner()
        .tokens;
    assert!(tokens.len() >= 2, "the enrolling token and at least one exchanged: {tokens:?}");
    let login = ["bootstrap:issue:*", "write:secrets-broker"];
    assert!(tokens.iter().any(|t| t.token_id != enrol.info.as_ref().expect("info").token_id && t.scopes == login), "{tokens:?}");
    shutdown.cancel();
    broker_task.await.expect("broker task").expect("broker stopped cleanly");
    provisioner_task.await.expect("provisioner task").expect("provisioner stopped cleanly");
}
