//! The canary analyzer. It will judge rollout steps from request metrics;
//! today it records the health history of every revision (the provisioner's
//! `revision.state_changed` events), the first input its judges will use.
//!
//! # Layout
//! - [`migration`] — the `observations` table.
//! - [`ObservationRecorder`] — the consumer-group handler.
//! - [`api`] — `paved.canary_analyzer.v1.CanaryAnalyzerService`.

pub mod api;
pub mod migration;

use async_trait::async_trait;
use paved_grpc::{Component, Health};
use paved_proto::{events::v1::envelope::Payload, provisioner::v1::RevisionState};
use paved_stream::{Envelope, SharedStream, consumer::Handler};
use sea_orm::{
    ConnectionTrait, DatabaseConnection,
    sea_query::{Alias, OnConflict, Query},
};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const SERVICE: &str = "canary-analyzer";
pub const GRPC_NAME: &str = "paved.canary_analyzer.v1.CanaryAnalyzerService";

pub const DEFAULTS: &str = "
listen: 127.0.0.1:7403
database_url: postgres://postgres@127.0.0.1:5432/paved_canary_analyzer
stream_url: redis://127.0.0.1:6379
";

pub type Config = paved_service::BasicConfig;

/// Runs the canary analyzer on its own (production mode).
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    paved_service::run_basic::<migration::Migrator>(config, listener, shutdown, component).await
}

pub fn component(db: DatabaseConnection, stream: SharedStream, health: &Health, shutdown: CancellationToken) -> Component {
    let api = api::server(db.clone());
    paved_service::consumer_component(
        GRPC_NAME,
        SERVICE,
        Box::new(move |r| r.add_service(api)),
        Arc::new(ObservationRecorder { db }),
        stream,
        health,
        shutdown,
    )
}

/// Records each revision state change once (keyed by event id).
pub struct ObservationRecorder {
    pub db: DatabaseConnection,
}

#[async_trait]
impl Handler for ObservationRecorder {
    async fn handle(&self, _stream: &str, event: &Envelope) -> anyhow::Result<()> {
        let Some(Payload::RevisionStateChanged(changed)) = &event.payload else {
            return Ok(());
        };
        let state = RevisionState::try_from(changed.to).unwrap_or_default().short_name();
        let at = event.time.as_ref().map_or_else(|| chrono::Utc::now().timestamp_millis(), paved_proto::millis_from_timestamp);
        let insert = Query::insert()
            .into_table(Alias::new("observations"))
            .columns(["event_id", "revision_id", "workload", "environment", "state", "message", "observe_time_ms"].map(Alias::new))
            .values_panic([
                event.id.clone().into(),
                changed.revision_id.clone().into(),
                changed.workload.clone().into(),
                changed.environment.clone().into(),
                state.into(),
                changed.message.clone().into(),
                at.into(),
            ])
            .on_conflict(OnConflict::column(Alias::new("event_id")).do_nothing().to_owned())
            .to_owned();
        self.db.execute(&insert).await?;
        Ok(())
    }
}
