//! The secrets broker: identities (one `spiffe://paved/<env>/<workload>` per
//! registered workload), the token authority every Paved call is
//! authenticated with, and — as #5 goes on — leases and secrets.
//!
//! # Layout
//! - [`migration`] — identities, signing keys, tokens, the outbox.
//! - [`seal`] — AES-256-GCM under the root key (file or environment, never
//!   the database).
//! - [`authority`] — signing keys and their rotation, the published key
//!   set, tokens issued, renewed, revoked.
//! - [`bootstrap`] — secret zero: single-use bootstrap tokens exchanged
//!   once for an identity holding exactly the secrets the spec declares.
//! - [`secrets`] — versioned KV secrets under envelope encryption,
//!   generated ones rotated, watched.
//! - [`database`] — dynamic PostgreSQL credentials: a role per lease in a
//!   pre-created group role.
//! - [`leases`] — what was handed out and is taken back: expiry (also
//!   after a restart), renewal, revocation with retries.
//! - [`policy`] — each workload's compiled policy and the uses of its
//!   grants (grants never used are reported).
//! - [`IdentityRecorder`] — the consumer-group handler.
//! - [`api`] — `paved.secrets_broker.v1.SecretsBrokerService`.

pub mod api;
pub mod authority;
pub mod bootstrap;
pub mod ca;
pub mod database;
pub mod leases;
pub mod migration;
pub mod policy;
pub mod seal;
pub mod secrets;

use anyhow::Context;
use async_trait::async_trait;
use paved_proto::events::v1::envelope::Payload;
use paved_stream::{Envelope, consumer::Handler};
use sea_orm::{
    ConnectionTrait, DatabaseConnection,
    sea_query::{Alias, OnConflict, Query},
};
use serde::Deserialize;
use std::{
    path::PathBuf,
    sync::{Arc, OnceLock},
};

pub use authority::Authority;

pub const SOURCE: &str = "secrets-broker";

/// The methods callable without a token: verifiers fetch the key set before
/// they can verify anything; a workload's bootstrap token is its credential.
pub const OPEN_METHODS: &[&str] = &[
    paved_grpc::auth::KEY_SET_METHOD,
    "/paved.secrets_broker.v1.SecretsBrokerService/ExchangeBootstrapToken",
    // What to trust is public, as the key set is.
    paved_grpc::auth::TRUST_BUNDLE_METHOD,
    // The client certificate is the credential, checked by the handler.
    "/paved.secrets_broker.v1.SecretsBrokerService/RenewCertificate",
    "/paved.secrets_broker.v1.SecretsBrokerService/ExchangeCertificate",
];

/// The methods any valid token may call: renewing or revoking itself
/// (revoking others' needs `revoke:tokens`, checked by the handler),
/// introspecting a token, and secrets (scoped by path in the handlers).
pub const TOKEN_ONLY_METHODS: &[&str] = &[
    "/paved.secrets_broker.v1.SecretsBrokerService/RenewToken",
    "/paved.secrets_broker.v1.SecretsBrokerService/RevokeToken",
    "/paved.secrets_broker.v1.SecretsBrokerService/IntrospectToken",
    // Checked per path by the handlers (`secrets:read:<path>`,
    // `secrets:write:<path>`): a workload's token holds only its own paths.
    "/paved.secrets_broker.v1.SecretsBrokerService/PutSecret",
    "/paved.secrets_broker.v1.SecretsBrokerService/GetSecret",
    "/paved.secrets_broker.v1.SecretsBrokerService/ListSecrets",
    "/paved.secrets_broker.v1.SecretsBrokerService/WatchSecret",
    // `database:creds:<name>`; a lease's holder or `leases:manage`.
    "/paved.secrets_broker.v1.SecretsBrokerService/IssueDatabaseCredentials",
    "/paved.secrets_broker.v1.SecretsBrokerService/RenewLease",
    "/paved.secrets_broker.v1.SecretsBrokerService/RevokeLease",
    // `certs:issue:<path>` for the SPIFFE id asked for, checked by the handler.
    paved_grpc::auth::ISSUE_CERTIFICATE_METHOD,
];

/// What each handler checks beyond the layer's rule, by method, in words for
/// `docs/scopes.md` (the table a test generates and compares). A refusal
/// here is PERMISSION_DENIED with `ErrorInfo` and an event.
pub const HANDLER_SCOPES: &[(&str, &str)] = &[
    ("IssueToken", "each scope asked for within the caller's own; `issue:subjects` for another subject"),
    ("RenewToken", "the token renews itself"),
    ("RevokeToken", "the caller's own tokens, or `revoke:tokens`"),
    ("IssueBootstrapToken", "`bootstrap:issue:<env>/<workload>`"),
    ("PutSecret", "`secrets:write:<path>`"),
    ("GetSecret", "`secrets:read:<path>`"),
    ("WatchSecret", "`secrets:read:<path>`"),
    ("ListSecrets", "`secrets:read:<prefix>*`"),
    ("RewrapKeys", "`rotate:keys`"),
    ("RotateSigningKey", "`rotate:keys`"),
    ("RotateCertificateAuthority", "`rotate:keys`"),
    ("IssueDatabaseCredentials", "`database:creds:<name>`"),
    ("RenewLease", "the lease's holder, or `leases:manage`"),
    ("RevokeLease", "the lease's holder, or `leases:manage` (a prefix: `leases:manage`)"),
    ("IssueCertificate", "`certs:issue:<env>/<workload>` (`certs:enrol:platform/<service>` for a platform service)"),
    ("RenewCertificate", "the client certificate, over mTLS"),
    ("ExchangeCertificate", "a platform service's client certificate, over mTLS"),
];

/// The service, as the shell in `paved-service` runs it.
pub struct SecretsBroker;

/// A value kept out of debug output and logs.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Options {
    /// A file holding the root key (64 hex digits or base64 of 32 bytes).
    #[serde(default)]
    pub root_key_file: Option<PathBuf>,
    /// Or the root key itself (`PAVED_ROOT_KEY`).
    #[serde(default)]
    pub root_key: Option<Secret>,
    /// During a root key rotation, the key before (file or value): what it
    /// sealed is re-sealed under the new one at start.
    #[serde(default)]
    pub previous_root_key_file: Option<PathBuf>,
    #[serde(default)]
    pub previous_root_key: Option<Secret>,
    /// Create `root_key_file` when it is missing (`paved up` on first start).
    #[serde(skip)]
    pub create_root_key: bool,
    /// Filled with the authority once the service is built, for the process
    /// that embeds it (`paved up` mints its root token with it).
    #[serde(skip)]
    pub authority: Arc<OnceLock<Authority>>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authority")
    }
}

impl Options {
    fn keyring(&self) -> anyhow::Result<seal::Keyring> {
        fn value(key: &Option<Secret>) -> Option<&str> {
            key.as_ref().map(|k| k.0.as_str())
        }
        let current =
            seal::RootKey::configured(value(&self.root_key), self.root_key_file.as_deref(), self.create_root_key, "PAVED_ROOT_KEY")?
                .context("the broker needs a root key: set root_key_file (PAVED_ROOT_KEY_FILE) or PAVED_ROOT_KEY")?;
        let previous = seal::RootKey::configured(
            value(&self.previous_root_key),
            self.previous_root_key_file.as_deref(),
            false,
            "PAVED_PREVIOUS_ROOT_KEY",
        )?;
        Ok(seal::Keyring::new(current, previous))
    }
}

/// The longest the broker goes without looking for a due rotation (it
/// otherwise sleeps until the next one).
const ROTATION_CHECK: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a stopping broker waits for its queued events to be committed.
const EVENTS_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

impl paved_service::ConsumerService for SecretsBroker {
    const NAME: &'static str = "secrets-broker";
    const GRPC_NAME: &'static str = "paved.secrets_broker.v1.SecretsBrokerService";
    const PORT: u16 = 7402;
    /// Workloads are registered by the provisioner.
    const READS: &'static [&'static str] = &["provisioner"];
    const PUBLISHES: bool = true;
    const OPEN_METHODS: &'static [&'static str] = OPEN_METHODS;
    const TOKEN_ONLY_METHODS: &'static [&'static str] = TOKEN_ONLY_METHODS;
    type Migrator = migration::Migrator;
    type Options = Options;

    fn parts(
        db: DatabaseConnection,
        relay: paved_stream::outbox::Relay,
        options: Options,
        background: &mut paved_service::Background,
    ) -> anyhow::Result<(paved_service::Mount, Arc<dyn Handler>)> {
        let keys = Arc::new(options.keyring()?);
        let authority = Authority::new(db.clone(), keys.clone(), relay.clone());
        let secrets = secrets::Secrets::new(db.clone(), keys.clone(), relay.clone());
        let ca = ca::Ca::new(db.clone(), keys.clone(), relay.clone());
        let leases = leases::Leases::new(db.clone(), relay.clone(), database::Databases::new(db.clone(), keys, relay));
        let _ = options.authority.set(authority.clone());
        background.spawn({
            let (authority, secrets, databases, ca) = (authority.clone(), secrets.clone(), leases.databases().clone(), ca.clone());
            // After a root key rotation: everything under the new key, while
            // both open what they sealed.
            move |_| async move {
                match (authority.rewrap().await, secrets.rewrap().await, databases.rewrap().await, ca.rewrap().await) {
                    (Ok(0), Ok((0, 0)), Ok(0), Ok(0)) => {}
                    (Ok(a), Ok((b, failed)), Ok(c), Ok(d)) => {
                        tracing::info!(
                            signing_keys = a,
                            data_keys = b,
                            failed,
                            connection_urls = c,
                            ca_keys = d,
                            "re-sealed under the current root key"
                        );
                    }
                    (a, b, c, d) => tracing::error!(
                        signing_keys = ?a.err(),
                        data_keys = ?b.err(),
                        connection_urls = ?c.err(),
                        ca_keys = ?d.err(),
                        "cannot re-seal under the current root key"
                    ),
                }
            }
        });
        background.spawn({
            let secrets = secrets.clone();
            move |shutdown| secrets::rotate_loop(secrets, ROTATION_CHECK, shutdown)
        });
        background.spawn({
            let leases = leases.clone();
            move |shutdown| leases::run(leases, shutdown)
        });
        background.spawn({
            let authority = authority.clone();
            // The events of the last reads are committed before the process ends.
            move |shutdown| async move {
                shutdown.cancelled().await;
                if !authority.flush(EVENTS_FLUSH).await {
                    tracing::error!("events of the last reads not committed within {EVENTS_FLUSH:?}: the database is away");
                }
            }
        });
        if let Some(tls) = background.tls().cloned() {
            let ca = ca.clone();
            // The broker's own certificate comes from its own CA, not over the wire.
            background.spawn(move |shutdown| ca::serve_own_identity(ca, tls, shutdown));
        }
        let api = api::server(authority, secrets, leases, ca);
        Ok((Box::new(move |r| r.add_service(api)), Arc::new(IdentityRecorder { db })))
    }
}

/// The root token's grant: every scope, for a day, renewable for 30, like a
/// development server's.
pub fn root_grant() -> authority::Grant {
    authority::Grant {
        parent: None,
        subject: "root".into(),
        scopes: vec!["*".into()],
        audience: paved_grpc::auth::PLATFORM_AUDIENCE.into(),
        ttl: authority::MAX_TTL,
        renewable: authority::MAX_RENEWABLE,
    }
}

/// A platform service's enrolling token (`paved token enrol`): its own
/// identity, naming `certs:enrol:platform/<service>` itself, which enrols
/// its certificate for good, and `calls`, what its own calls need once it
/// exchanges that certificate for tokens. Not renewable: the service enrols
/// once within `ttl`, then renews with its certificate.
pub fn enrolment_grant(service: &str, calls: &[&str], ttl: std::time::Duration) -> authority::Grant {
    let environment = paved_grpc::tls::PLATFORM_ENVIRONMENT;
    let mut scopes = vec![format!("{}{environment}/{service}", api::ENROL_SCOPE)];
    scopes.extend(calls.iter().map(|s| s.to_string()));
    authority::Grant {
        parent: None,
        subject: spiffe_id(environment, service),
        scopes,
        audience: paved_grpc::auth::PLATFORM_AUDIENCE.into(),
        ttl,
        renewable: std::time::Duration::ZERO,
    }
}

/// The authority on a broker's database, for a process that holds the root
/// key but is not the broker: `paved up --self-hosted` before its broker
/// runs, or an operator minting a root token (`paved token root`). What it
/// records is published by the broker's relay.
pub async fn offline_authority(database_url: &str, stream: paved_stream::SharedStream, root: seal::RootKey) -> anyhow::Result<Authority> {
    let db = paved_store::connect_and_migrate::<migration::Migrator>(database_url).await?;
    let relay = paved_stream::outbox::Relay::new(db.clone(), stream);
    Ok(Authority::new(db, Arc::new(seal::Keyring::new(root, None)), relay))
}

/// Now, in Unix milliseconds: how every time is stored here.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `d` in milliseconds (saturating).
pub(crate) fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The SPIFFE id of a workload: `spiffe://paved/<environment>/<workload>`.
pub fn spiffe_id(environment: &str, workload: &str) -> String {
    paved_grpc::tls::workload_id(environment, workload)
}

/// Creates the identity of each registered workload; naturally idempotent
/// (the SPIFFE id is the key).
pub struct IdentityRecorder {
    pub db: DatabaseConnection,
}

#[async_trait]
impl Handler for IdentityRecorder {
    async fn handle(&self, _stream: &str, event: &Envelope) -> anyhow::Result<()> {
        let Some(Payload::WorkloadRegistered(registered)) = &event.payload else {
            return Ok(());
        };
        let created = event.time.as_ref().map_or_else(|| chrono::Utc::now().timestamp_millis(), paved_proto::millis_from_timestamp);
        let insert = Query::insert()
            .into_table(Alias::new("identities"))
            .columns(["spiffe_id", "workload", "environment", "create_time_ms"].map(Alias::new))
            .values_panic([
                spiffe_id(&registered.environment, &registered.workload).into(),
                registered.workload.clone().into(),
                registered.environment.clone().into(),
                created.into(),
            ])
            .on_conflict(OnConflict::column(Alias::new("spiffe_id")).do_nothing().to_owned())
            .to_owned();
        self.db.execute(&insert).await?;
        Ok(())
    }
}
