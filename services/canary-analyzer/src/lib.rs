//! The canary analyzer: judges every look at a rollout step that the
//! provisioner sends it (the canary's and the baseline's requests through
//! the workload proxy), with the workload's `analysis` and the judges of
//! `paved-judge`, pulling Prometheus metrics where the analysis names them.
//! Every judgement is stored with its inputs (the decision record, served
//! by `ExplainRollout` and judged again by `ReplayRollout`) and published
//! as an event. It also records the health history of every revision.
//!
//! # Layout
//! - [`migration`] — the `observations`, `looks` and outbox tables;
//!   `schema` names the first two and their columns for queries.
//! - [`judgement`] — a look's decision from the looks so far (pure).
//! - [`looks`] — the decision records.
//! - [`request`] — [`request::validate`]: a look checked field by field.
//! - [`api`] — `paved.canary_analyzer.v1.CanaryAnalyzerService`, and
//!   [`SOURCE`], the name its judgements are published under (defined
//!   there, where the events are written, so that `api` never imports the
//!   crate root, which mounts it).
//! - [`ObservationRecorder`] — the consumer-group handler.

pub mod api;
pub mod judgement;
pub mod looks;
pub mod migration;
pub mod request;
mod schema;

pub use api::SOURCE;

/// The analyzer's own settings (`PAVED_PROMETHEUS_URL`, or
/// `prometheus_url` in its config file).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Options {
    /// Where metrics of kind `prometheus` are queried, e.g.
    /// `http://127.0.0.1:9090`; without it they are inconclusive.
    pub prometheus_url: Option<String>,
}

use async_trait::async_trait;
use paved_proto::{events::v1::envelope::Payload, provisioner::v1::RevisionState};
use paved_stream::{Envelope, consumer::Handler};
use schema::Observations;
use sea_orm::{
    ConnectionTrait, DatabaseConnection,
    sea_query::{OnConflict, Query},
};
use std::sync::Arc;

/// The service, as the shell in `paved-service` runs it.
pub struct CanaryAnalyzer;

impl paved_service::ConsumerService for CanaryAnalyzer {
    const NAME: &'static str = "canary-analyzer";
    const GRPC_NAME: &'static str = "paved.canary_analyzer.v1.CanaryAnalyzerService";
    const PORT: u16 = 7403;
    /// Revision state changes come from the provisioner.
    const READS: &'static [&'static str] = &["provisioner"];
    type Migrator = migration::Migrator;
    type Options = Options;
    const PUBLISHES: bool = true;

    fn parts(
        db: DatabaseConnection,
        relay: paved_stream::outbox::Relay,
        options: Options,
        _background: &mut paved_service::Background,
    ) -> anyhow::Result<(paved_service::Mount, Arc<dyn Handler>)> {
        let prometheus = options
            .prometheus_url
            .filter(|u| !u.is_empty())
            .map(|url| paved_prometheus::Prometheus::new(&url, std::time::Duration::from_secs(5)));
        let api = api::server(db.clone(), relay, prometheus);
        Ok((Box::new(move |r| r.add_service(api)), Arc::new(ObservationRecorder { db })))
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
            .into_table(Observations::Table)
            .columns([
                Observations::EventId,
                Observations::RevisionId,
                Observations::Workload,
                Observations::Environment,
                Observations::State,
                Observations::Message,
                Observations::ObserveTimeMs,
            ])
            .values_panic([
                event.id.clone().into(),
                changed.revision_id.clone().into(),
                changed.workload.clone().into(),
                changed.environment.clone().into(),
                state.into(),
                changed.message.clone().into(),
                at.into(),
            ])
            .on_conflict(OnConflict::column(Observations::EventId).do_nothing().to_owned())
            .to_owned();
        self.db.execute(&insert).await?;
        Ok(())
    }
}
