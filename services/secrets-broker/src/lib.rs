//! The secrets broker. It will own identities, tokens, leases and secrets;
//! today it derives one identity (`spiffe://paved/<env>/<workload>`) for every
//! workload the provisioner registers, and serves them.
//!
//! # Layout
//! - [`migration`] — the `identities` table.
//! - [`IdentityRecorder`] — the consumer-group handler.
//! - [`api`] — `paved.secrets_broker.v1.SecretsBrokerService`.

pub mod api;
pub mod migration;

use async_trait::async_trait;
use paved_proto::events::v1::envelope::Payload;
use paved_stream::{Envelope, consumer::Handler};
use sea_orm::{
    ConnectionTrait, DatabaseConnection,
    sea_query::{Alias, OnConflict, Query},
};
use std::sync::Arc;

/// The service, as the shell in `paved-service` runs it.
pub struct SecretsBroker;

impl paved_service::ConsumerService for SecretsBroker {
    const NAME: &'static str = "secrets-broker";
    const GRPC_NAME: &'static str = "paved.secrets_broker.v1.SecretsBrokerService";
    const PORT: u16 = 7402;
    type Migrator = migration::Migrator;
    type Options = paved_service::NoOptions;

    fn parts(
        db: DatabaseConnection,
        _relay: paved_stream::outbox::Relay,
        _options: paved_service::NoOptions,
    ) -> (paved_service::Mount, Arc<dyn Handler>) {
        let api = api::server(db.clone());
        (Box::new(move |r| r.add_service(api)), Arc::new(IdentityRecorder { db }))
    }
}

/// The SPIFFE id of a workload: `spiffe://paved/<environment>/<workload>`.
pub fn spiffe_id(environment: &str, workload: &str) -> String {
    format!("spiffe://paved/{environment}/{workload}")
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
