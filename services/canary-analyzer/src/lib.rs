//! The canary analyzer. It will judge rollout steps from request metrics;
//! today it records the health history of every revision (the provisioner's
//! `revision.state_changed` events), the first input its judges will use.
//!
//! # Layout
//! - [`migration`] — the `observations` table.
//! - [`ObservationRecorder`] — the consumer-group handler.
//! - [`api`] — `paved.canary_analyzer.v1.CanaryAnalyzerService`.
//! - [`prometheus`] — the Prometheus metric provider (range queries).

pub mod api;
pub mod migration;
pub mod prometheus;

use async_trait::async_trait;
use paved_proto::{events::v1::envelope::Payload, provisioner::v1::RevisionState};
use paved_stream::{Envelope, consumer::Handler};
use sea_orm::{
    ConnectionTrait, DatabaseConnection,
    sea_query::{Alias, OnConflict, Query},
};
use std::sync::Arc;

/// The service, as the shell in `paved-service` runs it.
pub struct CanaryAnalyzer;

impl paved_service::ConsumerService for CanaryAnalyzer {
    const NAME: &'static str = "canary-analyzer";
    const GRPC_NAME: &'static str = "paved.canary_analyzer.v1.CanaryAnalyzerService";
    const PORT: u16 = 7403;
    type Migrator = migration::Migrator;

    fn parts(db: DatabaseConnection) -> (paved_service::Mount, Arc<dyn Handler>) {
        let api = api::server(db.clone());
        (Box::new(move |r| r.add_service(api)), Arc::new(ObservationRecorder { db }))
    }
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
