//! The CLI's edge to a running platform: channels to an endpoint (with the
//! CLI's token, over TLS for `https://`) and gRPC errors put in words.

use anyhow::Context;
use paved_grpc::client::AuthChannel;
use std::time::Duration;
use tonic_types::StatusExt;

/// A channel to `endpoint` presenting the CLI's token for it (see
/// [`crate::credentials`]).
pub async fn connect(endpoint: &str) -> anyhow::Result<AuthChannel> {
    connect_with(endpoint, &crate::credentials::token_for(endpoint)?).await
}

/// A channel to `endpoint` presenting `token`.
pub async fn connect_with(endpoint: &str, token: &str) -> anyhow::Result<AuthChannel> {
    Ok(paved_grpc::client::Bearer::new(token)?.on(channel(endpoint).await?))
}

/// A channel without a token (for open methods: the key set). An
/// `https://` endpoint (production with mTLS) is reached over TLS, the
/// server verified against the trust bundle in `PAVED_CA_BUNDLE` (`paved ca
/// bundle` prints it); the CLI presents no certificate, only its token.
pub async fn channel(endpoint: &str) -> anyhow::Result<tonic::transport::Channel> {
    let url = if endpoint.contains("://") { endpoint.to_string() } else { format!("http://{endpoint}") };
    if url.starts_with("https://") {
        return tls_channel(&url);
    }
    tonic::transport::Channel::from_shared(url.clone())
        .with_context(|| format!("invalid endpoint {endpoint:?}"))?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("cannot reach Paved at {endpoint} (is `paved up` running?)"))
}

/// A channel to an `https://` endpoint over the platform's TLS: the server
/// verified against the trust bundle in `PAVED_CA_BUNDLE`.
pub fn tls_channel(url: &str) -> anyhow::Result<tonic::transport::Channel> {
    let file = std::env::var_os("PAVED_CA_BUNDLE")
        .context("an https endpoint needs the platform's trust bundle: set PAVED_CA_BUNDLE to its file (`paved ca bundle`)")?;
    let bundle = std::fs::read_to_string(&file).with_context(|| format!("PAVED_CA_BUNDLE {}", file.display()))?;
    let tls = paved_grpc::tls::Tls::new(format!("{}/people/cli", paved_grpc::tls::TRUST_DOMAIN), None);
    tls.set_bundle(&bundle).with_context(|| format!("PAVED_CA_BUNDLE {}", file.display()))?;
    // Any of the platform's services (the endpoint may forward), never a workload's.
    paved_grpc::tls::connect(url, Some(&tls), Some(paved_grpc::tls::PLATFORM_PREFIX), |e| {
        e.connect_timeout(Duration::from_secs(3)).timeout(Duration::from_secs(30))
    })
}

/// A gRPC error as a person should read it: the message, then each field violation.
pub fn explain(status: &tonic::Status) -> String {
    let mut out = status.message().to_string();
    if status.code() == tonic::Code::Unauthenticated {
        out.push_str("\n  log in with `paved login` (the token `paved up` printed) or set PAVED_TOKEN");
    }
    if let Some(bad) = status.get_details_bad_request() {
        for v in bad.field_violations {
            if !out.contains(&v.description) {
                out.push_str(&format!("\n  {}: {}", v.field, v.description));
            }
        }
    }
    out
}

/// A refused call as the error a command ends with: [`explain`]'s text.
pub fn failed(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", explain(&status))
}
