//! `paved login`: a token checked against the platform's key set, then
//! stored for the endpoint (see [`crate::credentials`]).

use crate::{
    DEFAULT_ENDPOINT,
    client::{channel, failed},
    credentials,
};
use paved_proto::secrets_broker::v1::{GetKeySetRequest, secrets_broker_service_client::SecretsBrokerServiceClient};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct LoginArgs {
    /// The token; omit to read it from stdin (keeps it out of shell history).
    #[arg(long)]
    token: Option<String>,
    #[arg(long, default_value = DEFAULT_ENDPOINT, env = "PAVED_ENDPOINT")]
    endpoint: String,
    #[arg(long, short, value_enum, default_value_t)]
    output: crate::output::Format,
}

pub async fn run(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let LoginArgs { token, endpoint, output } = args;
    let token = match token {
        Some(t) => t,
        None => {
            eprintln!("paved: paste the token and press Enter");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line
        }
    };
    let claims = check(&endpoint, &token).await?;
    let path = credentials::store(&endpoint, token.trim())?;
    let expires = chrono::DateTime::from_timestamp(claims.exp, 0).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let text = || {
        let (scopes, expires) = (claims.scp.join(" "), expires.clone().unwrap_or_default());
        format!("logged in to {endpoint} as {} (scopes {scopes}; expires {expires}); stored in {}\n", claims.sub, path.display())
    };
    // What the token says, never the token.
    let json = || serde_json::json!({ "endpoint": endpoint, "subject": claims.sub, "scopes": claims.scp, "expire_time": expires, "stored_in": path });
    crate::output::print(output, text, json)?;
    Ok(ExitCode::SUCCESS)
}

/// Checks `token` against the key set `endpoint` publishes (signature,
/// expiry, revocation) and returns its claims: a token that would be refused
/// is never stored.
pub async fn check(endpoint: &str, token: &str) -> anyhow::Result<paved_token::Claims> {
    let set = SecretsBrokerServiceClient::new(channel(endpoint).await?)
        .get_key_set(GetKeySetRequest::default())
        .await
        .map_err(failed)?
        .into_inner();
    let (keys, revoked) = paved_grpc::auth::trust(&set)?;
    keys.verify(token.trim(), &paved_grpc::auth::AUDIENCES, chrono::Utc::now().timestamp(), |jti| revoked.contains(jti))
        .map_err(|e| anyhow::anyhow!("{e}: not stored"))
}
