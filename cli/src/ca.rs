//! `paved ca bundle|rotate|issue|renew`: the broker's internal CA — what to
//! trust, its rotation, and a SPIFFE certificate for a key made here (the
//! key never leaves this machine; the broker sees only a CSR), renewed with
//! itself.

use crate::commands::explain;
use anyhow::Context;
use paved_grpc::client::AuthChannel;
use paved_proto::secrets_broker::v1::{
    CertificateAuthority, GetTrustBundleRequest, GetTrustBundleResponse, IssueCertificateRequest, IssueCertificateResponse,
    RenewCertificateRequest, RotateCertificateAuthorityRequest, secrets_broker_service_client::SecretsBrokerServiceClient,
};
use std::{fmt::Write as _, path::Path, time::Duration};

fn failed(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", explain(&status))
}

fn client(channel: AuthChannel) -> SecretsBrokerServiceClient<AuthChannel> {
    SecretsBrokerServiceClient::new(channel)
}

pub async fn bundle(channel: AuthChannel) -> anyhow::Result<GetTrustBundleResponse> {
    Ok(client(channel).get_trust_bundle(GetTrustBundleRequest {}).await.map_err(failed)?.into_inner())
}

pub async fn rotate(channel: AuthChannel) -> anyhow::Result<CertificateAuthority> {
    let answer = client(channel).rotate_certificate_authority(RotateCertificateAuthorityRequest {}).await.map_err(failed)?.into_inner();
    answer.authority.ok_or_else(|| anyhow::anyhow!("the broker answered no authority"))
}

/// A new key in `dir/key.pem` (mode 0600), its certificate for `spiffe_id`
/// (the token's own when empty) in `dir/cert.pem`, the bundle in
/// `dir/bundle.pem`.
pub async fn issue(channel: AuthChannel, spiffe_id: &str, ttl: Option<Duration>, dir: &Path) -> anyhow::Result<IssueCertificateResponse> {
    // The CSR's name is a courtesy; the broker names the certificate.
    let name = if spiffe_id.is_empty() { format!("{}/unnamed", paved_grpc::tls::TRUST_DOMAIN) } else { spiffe_id.to_string() };
    let (key, csr_pem) = paved_grpc::tls::new_key(&name)?;
    let request = IssueCertificateRequest { csr_pem, spiffe_id: spiffe_id.to_string(), ttl: ttl.map(paved_proto::duration_from_std) };
    let issued = client(channel).issue_certificate(request).await.map_err(failed)?.into_inner();
    paved_grpc::tls::save_identity(dir, &key, &issued.certificate_pem, &issued.trust_bundle_pem)?;
    Ok(issued)
}

/// Renews the certificate `issue` wrote in `dir` with itself: over mTLS to
/// the broker at `endpoint` (https), presenting it, no token; a new key and
/// certificate replace the old ones. Returns the certificate's SPIFFE id
/// and expiry.
pub async fn renew(endpoint: &str, ttl: Option<Duration>, dir: &Path) -> anyhow::Result<(String, Option<prost_types::Timestamp>)> {
    let (key, certificate_pem, bundle) =
        paved_grpc::tls::load_identity(dir).with_context(|| format!("the identity `paved ca issue --out {}` wrote", dir.display()))?;
    let held = paved_grpc::tls::certificates(&certificate_pem).with_context(|| format!("{}/cert.pem", dir.display()))?;
    let spiffe_id = paved_grpc::tls::spiffe_id(&held[0]).with_context(|| format!("{}/cert.pem names no SPIFFE id", dir.display()))?;
    let tls = paved_grpc::tls::Tls::new(spiffe_id.clone(), None);
    tls.set_bundle(&bundle).with_context(|| format!("{}/bundle.pem", dir.display()))?;
    // When it expires does not matter here: the broker judges it.
    tls.set_certificate(&certificate_pem, key, i64::MAX).with_context(|| format!("{}/cert.pem", dir.display()))?;
    anyhow::ensure!(endpoint.starts_with("https://"), "renewing with the certificate needs the broker over mTLS: an https:// endpoint");
    let channel = paved_grpc::tls::connect(endpoint, Some(&tls), Some(paved_grpc::tls::PLATFORM_PREFIX), |e| {
        e.connect_timeout(Duration::from_secs(3)).timeout(Duration::from_secs(30))
    })?;
    let (key, csr_pem) = paved_grpc::tls::new_key(&spiffe_id)?;
    let request = RenewCertificateRequest { csr_pem, ttl: ttl.map(paved_proto::duration_from_std) };
    let renewed = SecretsBrokerServiceClient::new(channel).renew_certificate(request).await.map_err(failed)?.into_inner();
    // Checked before it replaces the one held: the same identity.
    let got = paved_grpc::tls::certificates(&renewed.certificate_pem)?;
    anyhow::ensure!(
        paved_grpc::tls::spiffe_id(&got[0]).as_deref() == Some(spiffe_id.as_str()),
        "the broker answered a certificate for another identity; {}/ left as it was",
        dir.display()
    );
    paved_grpc::tls::save_identity(dir, &key, &renewed.certificate_pem, &renewed.trust_bundle_pem)?;
    Ok((renewed.spiffe_id, renewed.expire_time))
}

/// One line per CA: id, since, expiry, retired.
pub fn table(authorities: &[CertificateAuthority]) -> String {
    let time = |t: Option<&prost_types::Timestamp>| crate::secrets::time(t);
    let mut out = format!("{:<18}  {:<19}  {:<19}  RETIRED\n", "CA", "SIGNS FROM", "EXPIRES");
    for a in authorities {
        let _ = writeln!(
            out,
            "{:<18}  {:<19}  {:<19}  {}",
            a.id,
            time(a.create_time.as_ref()),
            time(a.expire_time.as_ref()),
            time(a.retire_time.as_ref())
        );
    }
    out
}
