//! `paved.audit.v1.AuditService`.

use paved_grpc::status;
use paved_proto::audit::v1::{
    Entry, ListEntriesRequest, ListEntriesResponse,
    audit_service_server::{AuditService, AuditServiceServer},
};
use paved_proto::timestamp_from_millis;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, QueryResult,
    sea_query::{Alias, Order, Query},
};
use tonic::{Request, Response, Status};

pub fn server(db: DatabaseConnection) -> AuditServiceServer<Api> {
    AuditServiceServer::new(Api { db })
}

pub struct Api {
    db: DatabaseConnection,
}

#[tonic::async_trait]
impl AuditService for Api {
    async fn list_entries(&self, request: Request<ListEntriesRequest>) -> Result<Response<ListEntriesResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let query = Query::select()
            .columns(
                ["sequence", "event_id", "source", "event_type", "subject", "event_time_ms", "receive_time_ms", "envelope"].map(Alias::new),
            )
            .from(Alias::new("audit_entries"))
            .order_by(Alias::new("sequence"), Order::Asc)
            .limit(size)
            .offset(offset)
            .to_owned();
        let rows = self.db.query_all(&query).await.map_err(|e| status::storage(&e))?;
        let entries = rows.iter().map(entry).collect::<Result<Vec<_>, _>>().map_err(|e| status::internal(&e))?;
        let next_page_token = status::next_page_token(offset, size, entries.len());
        Ok(Response::new(ListEntriesResponse { entries, next_page_token }))
    }
}

fn entry(row: &QueryResult) -> Result<Entry, sea_orm::DbErr> {
    let event_time: Option<i64> = row.try_get("", "event_time_ms")?;
    Ok(Entry {
        sequence: row.try_get("", "sequence")?,
        event_id: row.try_get("", "event_id")?,
        source: row.try_get("", "source")?,
        r#type: row.try_get("", "event_type")?,
        subject: row.try_get("", "subject")?,
        event_time: event_time.map(timestamp_from_millis),
        receive_time: Some(timestamp_from_millis(row.try_get("", "receive_time_ms")?)),
        envelope: row.try_get("", "envelope")?,
    })
}
