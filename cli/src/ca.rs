//! `paved ca bundle|rotate|issue|renew`: the broker's internal CA — what to
//! trust, its rotation, and a SPIFFE certificate for a key made here (the
//! key never leaves this machine; the broker sees only a CSR), renewed with
//! itself.

use crate::{
    DEFAULT_ENDPOINT,
    client::{connect, failed},
    output::time,
    ttl::parse_ttl,
};
use anyhow::Context;
use paved_grpc::client::AuthChannel;
use paved_proto::secrets_broker::v1::{
    CertificateAuthority, GetTrustBundleRequest, GetTrustBundleResponse, IssueCertificateRequest, IssueCertificateResponse,
    RenewCertificateRequest, RotateCertificateAuthorityRequest, secrets_broker_service_client::SecretsBrokerServiceClient,
};
use serde_json::json;
use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

#[derive(clap::Args)]
pub struct CaArgs {
    #[command(subcommand)]
    command: CaCommand,
    #[arg(long, global = true, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
    /// Lines (and PEM) for people, or JSON for scripts.
    #[arg(long, short, global = true, value_enum, default_value_t)]
    output: crate::output::Format,
}

#[derive(clap::Subcommand)]
enum CaCommand {
    /// Print the trust bundle (PEM; the CAs on stderr): what peers and
    /// `PAVED_CA_BUNDLE` trust.
    Bundle,
    /// Start a new CA: it signs after a short publication; the one before
    /// stays trusted until the last certificate it signed expires.
    Rotate,
    /// A key made here and its certificate: <dir>/key.pem, cert.pem, bundle.pem.
    Issue {
        /// spiffe://paved/<env>/<workload>; the token's own subject when
        /// omitted (either needs certs:issue:<env>/<workload>).
        #[arg(long, default_value = "")]
        spiffe_id: String,
        /// Default 1h, at most 24h.
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<Duration>,
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Renew the certificate in <dir> (as `issue` wrote it) with itself,
    /// over mTLS to an https:// endpoint: no token. A new key and
    /// certificate replace the old ones.
    Renew {
        /// At most (and by default) 1h; never past what its enrolment allows.
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<Duration>,
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

pub async fn run(args: CaArgs) -> anyhow::Result<ExitCode> {
    let (endpoint, format) = (args.endpoint.as_str(), args.output);
    let print = |line: String, json: serde_json::Value| crate::output::print(format, || line, || json);
    let rfc3339 = crate::output::rfc3339;
    // Renewal presents the certificate, not a token.
    let channel = || connect(endpoint);
    match args.command {
        CaCommand::Bundle => {
            let bundle = bundle(channel().await?).await?;
            if format == crate::output::Format::Table {
                eprint!("{}", table(&bundle.authorities));
            }
            let authorities: Vec<_> = bundle.authorities.iter().map(authority_json).collect();
            print(bundle.trust_bundle_pem.clone(), json!({ "trust_bundle_pem": bundle.trust_bundle_pem, "authorities": authorities }))?;
        }
        CaCommand::Rotate => {
            let ca = rotate(channel().await?).await?;
            print(format!("CA {} signs from {}\n", ca.id, time(ca.create_time.as_ref())), authority_json(&ca))?;
        }
        CaCommand::Issue { spiffe_id, ttl, out } => {
            let issued = issue(channel().await?, &spiffe_id, ttl, &out).await?;
            let (expire, dir) = (time(issued.expire_time.as_ref()), out.display());
            let line = format!("{} until {expire} (CA {}): {dir}/cert.pem, key.pem, bundle.pem\n", issued.spiffe_id, issued.authority_id);
            let json = json!({
                "spiffe_id": issued.spiffe_id, "expire_time": rfc3339(issued.expire_time.as_ref()),
                "authority_id": issued.authority_id, "dir": dir.to_string(),
            });
            print(line, json)?;
        }
        CaCommand::Renew { ttl, dir } => {
            let (spiffe_id, expire_time) = renew(endpoint, ttl, &dir).await?;
            let line = format!("{spiffe_id} until {}: {}/cert.pem, key.pem, bundle.pem\n", time(expire_time.as_ref()), dir.display());
            let json = json!({ "spiffe_id": spiffe_id, "expire_time": rfc3339(expire_time.as_ref()), "dir": dir.display().to_string() });
            print(line, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A CA for scripts: its id and when it signs from, expires and retired.
fn authority_json(ca: &CertificateAuthority) -> serde_json::Value {
    let t = crate::output::rfc3339;
    json!({
        "id": ca.id, "create_time": t(ca.create_time.as_ref()), "expire_time": t(ca.expire_time.as_ref()),
        "retire_time": t(ca.retire_time.as_ref()),
    })
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
