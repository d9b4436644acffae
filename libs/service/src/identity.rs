//! The service's own identity under mTLS: the certificate it serves and
//! calls with, obtained from the secrets broker (enrolled with a token
//! file, then renewed by the certificate itself), kept on disk across
//! restarts, and exchanged for the bearer token of its own calls; or,
//! without mTLS, that bearer read from a token file.

use crate::config::MtlsOptions;
use anyhow::Context;
use paved_grpc::tls::Tls;
use std::{path::PathBuf, time::Duration};
use tokio_util::sync::CancellationToken;

/// Keeps a service's certificate and trust bundle current (mTLS): starts
/// from the bundle file (and the certificate kept in `certificate_dir`, if
/// any), then asks the broker for its bundle every
/// [`paved_grpc::tls::BUNDLE_REFRESH`] and for a new certificate (a new key
/// each time) at two thirds of the current one's life; with `calls`, for a
/// token (`ExchangeCertificate`) at two thirds of the last one's. `healthy`
/// hears whether a valid certificate (and token, with `calls`) is held.
pub async fn maintain_identity(
    tls: Tls,
    broker_url: String,
    options: MtlsOptions,
    calls: Option<paved_grpc::client::Bearer>,
    healthy: std::sync::Arc<dyn Fn(bool) + Send + Sync>,
    shutdown: CancellationToken,
) {
    let MtlsOptions { token_file, certificate_dir, .. } = options;
    use paved_proto::secrets_broker::v1::{GetTrustBundleRequest, secrets_broker_service_client::SecretsBrokerServiceClient};
    healthy(false);
    // The bundle and enrolments go over this one; renewals and exchanges
    // over their own (see `own_channel`).
    let channel = match own_channel(&tls, &broker_url) {
        Ok(channel) => channel,
        Err(e) => {
            tracing::error!(broker = %broker_url, error = %e, "invalid broker URL: no certificate, no mTLS");
            return;
        }
    };
    let bearer = paved_grpc::client::Bearer::default();
    let mut client = SecretsBrokerServiceClient::new(bearer.on(channel));
    let (mut renew_at, mut expire_at, mut warned, mut failures) = (0, 0, false, 0);
    let mut pending: Option<(Vec<u8>, String)> = None;
    // When to exchange the certificate for a token again, and when the one held expires.
    let (mut token_at, mut token_until) = (0, 0);
    // A certificate kept from before a restart: renewed at once with itself.
    if let Some(dir) = &certificate_dir {
        match kept_identity(&tls, dir) {
            Ok(expire) => expire_at = expire,
            Err(e) => tracing::info!(dir = %dir.display(), error = %format!("{e:#}"), "no certificate kept: enrolling with the token file"),
        }
    }
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        let step = async {
            let from_file = || {
                let file = tls.bundle_file().ok_or_else(|| {
                    anyhow::anyhow!("mTLS needs trust_bundle_file (PAVED_TRUST_BUNDLE_FILE) to trust the broker at first")
                })?;
                let pem = std::fs::read_to_string(file).with_context(|| format!("trust bundle {}", file.display()))?;
                tls.set_bundle(&pem)
            };
            if tls.bundle_pem().is_empty() {
                from_file()?;
            }
            let bundle = match client.get_trust_bundle(GetTrustBundleRequest {}).await {
                Ok(bundle) => bundle.into_inner(),
                Err(e) => {
                    // Away through a CA rotation, this service may no longer
                    // trust the broker's certificate: the file has the new CA.
                    let _ = from_file();
                    return Err(e.into());
                }
            };
            tls.set_bundle(&bundle.trust_bundle_pem)?;
            if now >= renew_at {
                // The same key and request until one succeeds: a renewal
                // whose answer was lost is answered again, not refused.
                let (key, csr_pem) = match pending.clone() {
                    Some(pending) => pending,
                    None => pending.insert(paved_grpc::tls::new_key(tls.spiffe_id())?).clone(),
                };
                let renewable = now < expire_at;
                let (certificate_pem, expire_time, authority_id) =
                    match obtain_certificate(&tls, &broker_url, &mut client, &bearer, token_file.as_deref(), csr_pem, renewable).await {
                        Ok(obtained) => obtained,
                        Err(e) => {
                            // Each refusal is an event: backing off, up to a minute.
                            failures = (failures + 1).min(5);
                            renew_at = now + 2_000 * (1 << failures);
                            return Err(e);
                        }
                    };
                let expire = expire_time.as_ref().map_or(now, paved_proto::millis_from_timestamp);
                tls.set_certificate(&certificate_pem, key.clone(), expire)?;
                (renew_at, expire_at, failures, pending) = (tls.renew_at(now), expire, 0, None);
                tracing::info!(spiffe_id = tls.spiffe_id(), authority = authority_id, "certificate renewed");
                if let Some(dir) = &certificate_dir
                    && let Err(e) = paved_grpc::tls::save_identity(dir, &key, &certificate_pem, &tls.bundle_pem())
                {
                    // Held all the same; a restart enrols again from the token file.
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot keep the certificate");
                }
            }
            if let Some(calls) = calls.as_ref().filter(|_| now >= token_at && tls.has_certificate()) {
                use paved_proto::secrets_broker::v1::ExchangeCertificateRequest;
                let mut client = SecretsBrokerServiceClient::new(own_channel(&tls, &broker_url)?);
                let exchanged = match client.exchange_certificate(ExchangeCertificateRequest {}).await {
                    Ok(exchanged) => exchanged.into_inner(),
                    Err(status) => {
                        // Each refusal is an event: not every 2 s.
                        token_at = now + 60_000;
                        return Err(status.into());
                    }
                };
                calls.set(&exchanged.token)?;
                token_until = exchanged.info.and_then(|i| i.expire_time).as_ref().map_or(now, paved_proto::millis_from_timestamp);
                token_at = now + (token_until - now) * 2 / 3;
            }
            anyhow::Ok(())
        };
        match step.await {
            Ok(()) => warned = false,
            Err(e) if !warned => {
                tracing::warn!(broker = %broker_url, error = %format!("{e:#}"), "cannot renew the certificate or bundle; retrying");
                warned = true;
            }
            Err(_) => {}
        }
        let now = chrono::Utc::now().timestamp_millis();
        healthy(tls.has_certificate() && now < expire_at && (calls.is_none() || now < token_until));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(paved_grpc::tls::BUNDLE_REFRESH) => {}
        }
    }
}

/// A channel to the broker presenting `tls`'s certificate of the moment. A
/// renewal or an exchange takes a new one each time: the broker sees the
/// certificate of a connection's handshake.
fn own_channel(tls: &Tls, broker_url: &str) -> anyhow::Result<tonic::transport::Channel> {
    paved_grpc::tls::connect(broker_url, Some(tls), Some(&paved_grpc::tls::platform_id("secrets-broker")), |e| {
        e.connect_timeout(Duration::from_secs(2)).timeout(Duration::from_secs(10))
    })
}

/// Installs the certificate and bundle kept in `dir` if the certificate is
/// still valid; when it expires.
fn kept_identity(tls: &Tls, dir: &std::path::Path) -> anyhow::Result<i64> {
    let (key, certificate_pem, bundle_pem) = paved_grpc::tls::load_identity(dir)?;
    let held = paved_grpc::tls::certificates(&certificate_pem)?;
    let expire = paved_grpc::tls::not_after_ms(&held[0]).context("cert.pem: no validity")?;
    anyhow::ensure!(expire > chrono::Utc::now().timestamp_millis(), "the certificate kept has expired");
    tls.set_bundle(&bundle_pem)?;
    tls.set_certificate(&certificate_pem, key, expire)?;
    Ok(expire)
}

/// A certificate for the key of `csr_pem`: renewed with the one `tls`
/// holds while it is `renewable`; enrolled with the token file at first,
/// or once renewals are refused. Its PEM, expiry and CA.
async fn obtain_certificate(
    tls: &Tls,
    broker_url: &str,
    client: &mut paved_proto::secrets_broker::v1::secrets_broker_service_client::SecretsBrokerServiceClient<
        paved_grpc::client::AuthChannel,
    >,
    bearer: &paved_grpc::client::Bearer,
    token_file: Option<&std::path::Path>,
    csr_pem: String,
    renewable: bool,
) -> anyhow::Result<(String, Option<prost_types::Timestamp>, String)> {
    if renewable && let Some(renewed) = renew_by_certificate(tls, broker_url, csr_pem.clone()).await? {
        return Ok(renewed);
    }
    let file = token_file
        .ok_or_else(|| anyhow::anyhow!("mTLS needs identity_token_file (PAVED_IDENTITY_TOKEN_FILE): a token for {}", tls.spiffe_id()))?;
    bearer.set(std::fs::read_to_string(file).with_context(|| format!("token file {}", file.display()))?.trim())?;
    let request = paved_proto::secrets_broker::v1::IssueCertificateRequest { csr_pem, spiffe_id: tls.spiffe_id().to_string(), ttl: None };
    let issued = client.issue_certificate(request).await?.into_inner();
    Ok((issued.certificate_pem, issued.expire_time, issued.authority_id))
}

/// A certificate for the one `tls` holds, asked for with it over a new
/// connection (the broker sees the certificate of a connection's
/// handshake, and the one before may have expired): its PEM, expiry and
/// CA; None when the broker refuses it, the enrolment revoked or over.
async fn renew_by_certificate(
    tls: &Tls,
    broker_url: &str,
    csr_pem: String,
) -> anyhow::Result<Option<(String, Option<prost_types::Timestamp>, String)>> {
    use paved_proto::secrets_broker::v1::{RenewCertificateRequest, secrets_broker_service_client::SecretsBrokerServiceClient};
    match SecretsBrokerServiceClient::new(own_channel(tls, broker_url)?)
        .renew_certificate(RenewCertificateRequest { csr_pem, ttl: None })
        .await
    {
        Ok(renewed) => {
            let renewed = renewed.into_inner();
            Ok(Some((renewed.certificate_pem, renewed.expire_time, renewed.authority_id)))
        }
        Err(status) if status.code() == tonic::Code::Unauthenticated => {
            tracing::warn!(spiffe_id = tls.spiffe_id(), error = status.message(), "renewal refused: enrolling again with the token file");
            Ok(None)
        }
        Err(status) => Err(status.into()),
    }
}

/// Keeps `bearer` loaded from `file`, read again every minute, until
/// `shutdown`: whoever renews the token replaces the file.
pub async fn reload_token(file: PathBuf, bearer: paved_grpc::client::Bearer, shutdown: CancellationToken) {
    loop {
        let loaded = std::fs::read_to_string(&file).map_err(anyhow::Error::from).and_then(|token| bearer.set(token.trim()));
        if let Err(e) = loaded {
            tracing::warn!(file = %file.display(), error = %e, "cannot load the token file");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
        }
    }
}
