//! Configuration: the settings every service shares ([`Common`], with its
//! [`MtlsOptions`]), a service's own type of them ([`ServiceConfig`],
//! [`BasicConfig`]), and loading them in layers: built-in defaults, then an
//! optional YAML/TOML file, then `PAVED_*` environment variables.

use anyhow::Context;
use serde::{Deserialize, de::DeserializeOwned};
use std::{net::SocketAddr, path::PathBuf};

/// Settings every service has. Environment variables override the file:
/// `PAVED_LISTEN`, `PAVED_DATABASE_URL`, `PAVED_STREAM_URL`, `PAVED_LOG_FORMAT`.
#[derive(Debug, Clone, Deserialize)]
pub struct Common {
    /// gRPC (and `/healthz`, `/metrics`) address.
    pub listen: SocketAddr,
    /// `postgres://…` or `sqlite://…`: this service's own database.
    pub database_url: String,
    /// `redis://…` (production) or `sqlite://…` (embedded stream file).
    pub stream_url: String,
    #[serde(default = "default_log_format")]
    pub log_format: String,
    /// Entries kept per stream.
    #[serde(default = "default_max_len")]
    pub stream_max_len: u64,
    /// The secrets broker, whose key set verifies every call's token.
    #[serde(default = "default_broker_url")]
    pub broker_url: String,
    /// mTLS between services (`PAVED_MTLS=true`): the service serves TLS
    /// with a certificate for `spiffe://paved/platform/<service>` from the
    /// broker's CA, renewed before it expires, presents it on its own
    /// calls, and verifies peers against the broker's trust bundle.
    #[serde(flatten)]
    pub mtls: MtlsOptions,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MtlsOptions {
    /// `PAVED_MTLS`.
    #[serde(default, rename = "mtls")]
    pub enabled: bool,
    /// The trust bundle shared at start (`PAVED_TRUST_BUNDLE_FILE`): the
    /// broker writes it, the other services read it to trust the broker
    /// before they hold a certificate.
    #[serde(default)]
    pub trust_bundle_file: Option<PathBuf>,
    /// A token whose subject is the service's SPIFFE id
    /// (`PAVED_IDENTITY_TOKEN_FILE`): what the service enrols with, at its
    /// first start or once a renewal is refused. Renewals need no token.
    #[serde(default, rename = "identity_token_file")]
    pub token_file: Option<PathBuf>,
    /// Where the service keeps its key and certificate
    /// (`PAVED_CERTIFICATE_DIR`: key.pem, mode 0600, cert.pem, bundle.pem),
    /// so that after a restart it renews from them rather than enrolling
    /// again with a token.
    #[serde(default)]
    pub certificate_dir: Option<PathBuf>,
}

fn default_broker_url() -> String {
    "http://127.0.0.1:7402".into()
}

fn default_log_format() -> String {
    "pretty".into()
}

fn default_max_len() -> u64 {
    paved_stream::DEFAULT_MAX_LEN
}

/// A service's configuration type.
pub trait ServiceConfig: DeserializeOwned + Send + 'static {
    fn common(&self) -> &Common;
}

/// Loads `T` from `defaults` (a YAML document), then `file`, then `PAVED_*`
/// environment variables (`PAVED_DATABASE_URL` sets `database_url`).
///
/// A service the platform deploys itself gets the servers instead
/// (`PAVED_POSTGRES_URL`, `PAVED_DATABASE_PREFIX`, `PAVED_REDIS_URL`) and
/// derives its own database (`<postgres>/<prefix><service>`) and stream URLs,
/// unless `PAVED_DATABASE_URL` / `PAVED_STREAM_URL` say otherwise.
pub fn load_config<T: DeserializeOwned>(service: &str, defaults: &str, file: Option<&std::path::Path>) -> anyhow::Result<T> {
    let mut builder = config::Config::builder().add_source(config::File::from_str(defaults, config::FileFormat::Yaml));
    if let Some(file) = file {
        anyhow::ensure!(file.exists(), "config file {} does not exist", file.display());
        builder = builder.add_source(config::File::from(file));
    }
    builder = builder.add_source(config::Environment::with_prefix("PAVED").try_parsing(true));
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(server), None) = (var("PAVED_POSTGRES_URL"), var("PAVED_DATABASE_URL")) {
        let prefix = var("PAVED_DATABASE_PREFIX").unwrap_or_else(|| "paved_".into());
        builder =
            builder.set_override("database_url", format!("{}/{prefix}{}", server.trim_end_matches('/'), service.replace('-', "_")))?;
    }
    if let (Some(redis), None) = (var("PAVED_REDIS_URL"), var("PAVED_STREAM_URL")) {
        builder = builder.set_override("stream_url", redis)?;
    }
    let config = builder.build().context("read configuration")?;
    config.try_deserialize().context("invalid configuration")
}

/// A service's built-in defaults: it listens on `port` and finds its
/// database (`paved_<service>`) and the stream on this machine.
pub fn defaults(service: &str, port: u16) -> String {
    format!(
        "listen: 127.0.0.1:{port}\ndatabase_url: postgres://postgres@127.0.0.1:5432/paved_{}\nstream_url: redis://127.0.0.1:6379\n",
        service.replace('-', "_")
    )
}

/// The configuration of a [`ConsumerService`](crate::ConsumerService): the [`Common`] settings and
/// its own `options` (in the same file and `PAVED_*` variables).
#[derive(Debug, Clone, Deserialize)]
pub struct BasicConfig<O = NoOptions> {
    #[serde(flatten)]
    pub common: Common,
    #[serde(flatten)]
    pub options: O,
}

impl<O: DeserializeOwned + Send + 'static> ServiceConfig for BasicConfig<O> {
    fn common(&self) -> &Common {
        &self.common
    }
}

/// The options of a service that has none of its own.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NoOptions {}

#[cfg(test)]
mod tests {
    /// mTLS settings sit flat beside the others, as `PAVED_MTLS`,
    /// `PAVED_TRUST_BUNDLE_FILE` and `PAVED_IDENTITY_TOKEN_FILE` set them.
    #[test]
    fn mtls_settings_are_flat_keys() {
        let yaml = "listen: 127.0.0.1:1\ndatabase_url: x\nstream_url: y\n\
                    mtls: true\ntrust_bundle_file: /run/paved/bundle.pem\nidentity_token_file: /run/paved/audit.token\n";
        let config: super::BasicConfig = super::load_config("audit", yaml, None).expect("config");
        let mtls = config.common.mtls;
        assert!(mtls.enabled);
        assert_eq!(mtls.trust_bundle_file.as_deref(), Some(std::path::Path::new("/run/paved/bundle.pem")));
        assert_eq!(mtls.token_file.as_deref(), Some(std::path::Path::new("/run/paved/audit.token")));
        let plain: super::BasicConfig =
            super::load_config("audit", "listen: 127.0.0.1:1\ndatabase_url: x\nstream_url: y\n", None).expect("config");
        assert!(!plain.common.mtls.enabled && plain.common.mtls.trust_bundle_file.is_none());
    }
}
