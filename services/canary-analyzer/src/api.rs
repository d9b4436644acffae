//! `paved.canary_analyzer.v1.CanaryAnalyzerService`.

use paved_grpc::status;
use paved_proto::canary_analyzer::v1::{
    ListObservationsRequest, ListObservationsResponse, Observation,
    canary_analyzer_service_server::{CanaryAnalyzerService, CanaryAnalyzerServiceServer},
};
use paved_proto::timestamp_from_millis;
use sea_orm::{
    ConnectionTrait, DatabaseConnection,
    sea_query::{Alias, Expr, ExprTrait, Order, Query},
};
use tonic::{Request, Response, Status};

pub fn server(db: DatabaseConnection) -> CanaryAnalyzerServiceServer<Api> {
    CanaryAnalyzerServiceServer::new(Api { db })
}

pub struct Api {
    db: DatabaseConnection,
}

#[tonic::async_trait]
impl CanaryAnalyzerService for Api {
    async fn list_observations(&self, request: Request<ListObservationsRequest>) -> Result<Response<ListObservationsResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let mut query = Query::select()
            .columns(["revision_id", "workload", "environment", "state", "message", "observe_time_ms"].map(Alias::new))
            .from(Alias::new("observations"))
            .order_by(Alias::new("id"), Order::Asc)
            .limit(size)
            .offset(offset)
            .to_owned();
        if !req.revision_id.is_empty() {
            query.and_where(Expr::col(Alias::new("revision_id")).eq(req.revision_id));
        }
        let rows =
            self.db.query_all(&query).await.map_err(|e| status::unavailable("DATABASE", format!("observations unavailable: {e}")))?;
        let observations = rows
            .iter()
            .map(|row| {
                Ok(Observation {
                    revision_id: row.try_get("", "revision_id")?,
                    workload: row.try_get("", "workload")?,
                    environment: row.try_get("", "environment")?,
                    state: row.try_get("", "state")?,
                    message: row.try_get("", "message")?,
                    observe_time: Some(timestamp_from_millis(row.try_get("", "observe_time_ms")?)),
                })
            })
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()
            .map_err(|e| status::internal(&e))?;
        let next_page_token = status::next_page_token(offset, size, observations.len());
        Ok(Response::new(ListObservationsResponse { observations, next_page_token }))
    }
}
