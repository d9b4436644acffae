//! `paved ca bundle|rotate|issue`: the broker's internal CA — what to trust,
//! its rotation, and a SPIFFE certificate for a key made here (the key never
//! leaves this machine; the broker sees only a CSR).

use crate::commands::explain;
use paved_grpc::client::AuthChannel;
use paved_proto::secrets_broker::v1::{
    CertificateAuthority, GetTrustBundleRequest, GetTrustBundleResponse, IssueCertificateRequest, IssueCertificateResponse,
    RotateCertificateAuthorityRequest, secrets_broker_service_client::SecretsBrokerServiceClient,
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
    std::fs::create_dir_all(dir)?;
    let key_file = dir.join("key.pem");
    write_private(&key_file, paved_grpc::tls::pem("PRIVATE KEY", &key).as_bytes())?;
    std::fs::write(dir.join("cert.pem"), &issued.certificate_pem)?;
    std::fs::write(dir.join("bundle.pem"), &issued.trust_bundle_pem)?;
    Ok(issued)
}

fn write_private(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::fs::PermissionsExt;
    let mut out = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(file)?;
    // A file that existed keeps its mode on open: tightened before the key goes in.
    out.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    out.write_all(bytes)?;
    Ok(())
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
