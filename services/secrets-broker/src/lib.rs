//! The secrets broker: identities (one `spiffe://paved/<env>/<workload>` per
//! registered workload), the token authority every Paved call is
//! authenticated with, secret zero, versioned secrets, dynamic database
//! credentials under leases, and an internal CA.
//!
//! # Layout
//! Domain modules hold their own types and SQL and know nothing of the
//! wire; two edges translate: [`api`] (gRPC, on top of everything) and
//! [`event`] (the stream, which the domain calls to record what it did).
//! The modules form no import cycle: `api` uses the areas, each area uses
//! its store and what lies beneath it, and nothing uses what is above it.
//!
//! The edges:
//! - [`api`] — `paved.secrets_broker.v1.SecretsBrokerService`, one file per
//!   area; requests checked and answers converted there (`From`/`TryFrom`),
//!   and each domain error becomes its status there.
//! - [`event`] — what the broker did ([`act::Act`]) as `BrokerActed`
//!   envelopes on the outbox; the provisioner's `WorkloadRegistered` as an
//!   identity ([`IdentityRecorder`]).
//!
//! The domain, by area (each with its store):
//! - [`authority`] — issues, renews, revokes and introspects tokens, over
//!   [`tokens`] (the records, what a token grants) and [`keys`] (signing
//!   keys and the published key set).
//! - [`bootstrap`] — secret zero: single-use bootstrap tokens bound to a
//!   revision ([`binding`]) and exchanged once for an identity token.
//! - [`secrets`] — versioned KV secrets under envelope encryption,
//!   generated ones rotated, watched.
//! - [`leases`] — what was handed out and is taken back (a role per lease on
//!   a [`database`]): expiry (also after a restart), renewal, revocation
//!   with retries.
//! - [`ca`] — the internal CA: SPIFFE certificates, enrolments, the trust
//!   bundle, the broker's own certificate.
//! - [`policy`] — each workload's compiled policy and the uses of its
//!   grants (grants never used are reported).
//! - [`identities`] — the registered workloads' SPIFFE ids.
//!
//! Beneath them: [`act`] (the facts the domain states), [`recorder`]
//! (events of reads and denials, written in batches), [`seal`] (AES-256-GCM
//! under the root key, from a file or the environment, never the
//! database), [`migration`], `schema` (the tables and columns the migrations
//! created, as identifiers for queries) and `clock`. This file wires them
//! into the service the `paved-service` shell runs.

pub mod act;
pub mod api;
pub mod authority;
pub mod binding;
pub mod bootstrap;
pub mod ca;
mod clock;
pub mod database;
pub mod event;
mod expiry;
pub mod identities;
pub mod keys;
pub mod leases;
pub mod migration;
mod options;
pub mod policy;
pub mod recorder;
mod schema;
pub mod seal;
pub mod secrets;
pub mod tokens;

use paved_stream::consumer::Handler;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

pub use authority::{Authority, enrolment_grant, root_grant};
pub use event::IdentityRecorder;
pub use identities::{SOURCE, spiffe_id};
pub use options::{Options, Secret};

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
    "/paved.secrets_broker.v1.SecretsBrokerService/DeleteSecret",
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
    ("RenewToken", "to be the token it renews (a token renews only itself)"),
    ("RevokeToken", "the caller's own tokens, or `revoke:tokens`"),
    ("IssueBootstrapToken", "`bootstrap:issue:<env>/<workload>`"),
    ("PutSecret", "`secrets:write:<path>`"),
    ("DeleteSecret", "`secrets:write:<path>`"),
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
        let recorder = recorder::Recorder::new(db.clone(), relay.clone());
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
            let recorder = recorder.clone();
            // The events of the last reads are committed before the process ends.
            move |shutdown| async move {
                shutdown.cancelled().await;
                if !recorder.flush(EVENTS_FLUSH).await {
                    tracing::error!("events of the last reads not committed within {EVENTS_FLUSH:?}: the database is away");
                }
            }
        });
        if let Some(tls) = background.tls().cloned() {
            let ca = ca.clone();
            // The broker's own certificate comes from its own CA, not over the wire.
            background.spawn(move |shutdown| ca::serve_own_identity(ca, tls, shutdown));
        }
        let api = api::server(api::Parts { authority, recorder, secrets, leases, ca, db: db.clone() });
        Ok((Box::new(move |r| r.add_service(api)), Arc::new(IdentityRecorder { db })))
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
