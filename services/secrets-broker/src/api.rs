//! `paved.secrets_broker.v1.SecretsBrokerService`.

use paved_grpc::status;
use paved_proto::secrets_broker::v1::{
    Identity, ListIdentitiesRequest, ListIdentitiesResponse,
    secrets_broker_service_server::{SecretsBrokerService, SecretsBrokerServiceServer},
};
use paved_proto::timestamp_from_millis;
use sea_orm::{
    ConnectionTrait, DatabaseConnection,
    sea_query::{Alias, Order, Query},
};
use tonic::{Request, Response, Status};

pub fn server(db: DatabaseConnection) -> SecretsBrokerServiceServer<Api> {
    SecretsBrokerServiceServer::new(Api { db })
}

pub struct Api {
    db: DatabaseConnection,
}

#[tonic::async_trait]
impl SecretsBrokerService for Api {
    async fn list_identities(&self, request: Request<ListIdentitiesRequest>) -> Result<Response<ListIdentitiesResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let query = Query::select()
            .columns(["spiffe_id", "workload", "environment", "create_time_ms"].map(Alias::new))
            .from(Alias::new("identities"))
            .order_by(Alias::new("spiffe_id"), Order::Asc)
            .limit(size)
            .offset(offset)
            .to_owned();
        let rows = self.db.query_all(&query).await.map_err(|e| status::unavailable("DATABASE", format!("identities unavailable: {e}")))?;
        let identities = rows
            .iter()
            .map(|row| {
                Ok(Identity {
                    spiffe_id: row.try_get("", "spiffe_id")?,
                    workload: row.try_get("", "workload")?,
                    environment: row.try_get("", "environment")?,
                    create_time: Some(timestamp_from_millis(row.try_get("", "create_time_ms")?)),
                })
            })
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()
            .map_err(|e| status::internal(&e))?;
        let next_page_token = status::next_page_token(offset, size, identities.len());
        Ok(Response::new(ListIdentitiesResponse { identities, next_page_token }))
    }
}
