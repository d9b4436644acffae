//! The audit service: keeps every event of the platform, exactly once, in
//! one order, as the leaves of a transparency log, and serves them back
//! with proofs.
//!
//! # Layout
//! - [`migration`] — the tables: `audit_entries` (the query side) and the
//!   log's; `schema` names `audit_entries` for queries.
//! - [`log`] — the transparency log: [`log::tiles`] (the tree in tiles),
//!   [`log::note`] (the key, signed checkpoints), [`log::append`] (leaves
//!   appended, checkpoints signed), [`log::read`] (proofs, tiles),
//!   [`log::http`] (tlog-tiles under `/audit/log/`), [`log::store`].
//! - [`Recorder`] — the consumer-group handler: each batch of events
//!   becomes leaves and query rows in one transaction.
//! - [`api`] — `paved.audit.v1.AuditService`.

pub mod api;
pub mod log;
pub mod migration;
mod schema;

use async_trait::async_trait;
use paved_stream::{Envelope, consumer::Handler};
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// The service, as the shell in `paved-service` runs it.
pub struct Audit;

impl paved_service::ConsumerService for Audit {
    const NAME: &'static str = "audit";
    const GRPC_NAME: &'static str = "paved.audit.v1.AuditService";
    const PORT: u16 = 7405;
    type Migrator = migration::Migrator;
    type Options = Options;
    const OPEN_METHODS: &'static [&'static str] = &["/paved.audit.v1.AuditService/GetLogKey"];

    fn parts(
        db: DatabaseConnection,
        _relay: paved_stream::outbox::Relay,
        options: Options,
        background: &mut paved_service::Background,
    ) -> anyhow::Result<(paved_service::Mount, Arc<dyn Handler>)> {
        let root = paved_seal::RootKey::configured(
            options.root_key.as_ref().map(|k| k.0.as_str()),
            options.root_key_file.as_deref(),
            options.create_root_key,
            "PAVED_ROOT_KEY",
        )?
        .ok_or_else(|| {
            anyhow::anyhow!("the audit log's key is sealed under the root key: set root_key_file (PAVED_ROOT_KEY_FILE) or PAVED_ROOT_KEY")
        })?;
        let witnesses = options
            .witnesses
            .as_deref()
            .unwrap_or_default()
            .split([',', ' ', '\n'])
            .filter(|k| !k.is_empty())
            .map(log::cosign::CosignatureVerifier::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("witnesses (PAVED_WITNESSES): {e}"))?;
        let previous = paved_seal::RootKey::configured(
            options.previous_root_key.as_ref().map(|k| k.0.as_str()),
            options.previous_root_key_file.as_deref(),
            false,
            "PAVED_PREVIOUS_ROOT_KEY",
        )?;
        let log = Arc::new(log::append::Log::new(db.clone()).with_witnesses(witnesses).with_previous_root(previous));
        let name = options.log_name.unwrap_or_else(|| log::key::DEFAULT_NAME.to_string());
        let signer = log.clone();
        background.spawn(move |shutdown| signer.run(root, name, shutdown));
        let api = api::server(db, log.clone());
        let tiles = log.clone();
        let mount: paved_service::Mount = Box::new(move |r| {
            let mut r = r.add_service(api);
            log::http::mount(&mut r, tiles);
            r
        });
        Ok((mount, Arc::new(Recorder { log })))
    }
}

/// The audit service's own settings.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Options {
    /// A file holding the root key the log's key is sealed under (the
    /// broker's: `PAVED_ROOT_KEY_FILE`).
    #[serde(default)]
    pub root_key_file: Option<std::path::PathBuf>,
    /// Or the root key itself (`PAVED_ROOT_KEY`).
    #[serde(default)]
    pub root_key: Option<paved_seal::Secret>,
    /// During a root key rotation, the root key before (file or value, as
    /// the broker takes it): the log's keys sealed under it are sealed
    /// again under the current one at start.
    #[serde(default)]
    pub previous_root_key_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub previous_root_key: Option<paved_seal::Secret>,
    /// The log's name, the origin line of its checkpoints
    /// (`PAVED_LOG_NAME`; default `paved/audit`). Fixed when the log's key
    /// is created.
    #[serde(default)]
    pub log_name: Option<String>,
    /// The witnesses whose cosignatures the log keeps and serves:
    /// cosignature/v1 verifier keys (`paved audit witness` prints its own),
    /// separated by commas or spaces (`PAVED_WITNESSES`).
    #[serde(default)]
    pub witnesses: Option<String>,
    /// Create `root_key_file` when it is missing (`paved up`).
    #[serde(skip)]
    pub create_root_key: bool,
}

/// Appends each event once, as a leaf of the log and a row of the query
/// side, in one transaction: a redelivered event (same id) is neither.
pub struct Recorder {
    pub log: Arc<log::append::Log>,
}

#[async_trait]
impl Handler for Recorder {
    async fn handle(&self, stream: &str, event: &Envelope) -> anyhow::Result<()> {
        self.handle_all(stream, std::slice::from_ref(event)).await.map(drop)
    }

    /// A batch in one transaction (in order): one commit, not one per event.
    async fn handle_all(&self, stream: &str, events: &[Envelope]) -> anyhow::Result<bool> {
        // An INSERT without rows is no statement at all.
        if !events.is_empty() {
            match self.log.append(stream, events).await {
                Ok(_) => {}
                // The log's own fault: retried until mended, never
                // dead-lettering the events.
                Err(e @ log::append::AppendError::Tree(_)) => return Err(paved_stream::consumer::Outage(e.to_string()).into()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }
}
