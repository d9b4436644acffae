//! Identities: one SPIFFE id (`spiffe://paved/<environment>/<workload>`)
//! per workload the provisioner registered, and the broker's own name.
//! Recording is naturally idempotent: the SPIFFE id is the key, so an
//! event delivered twice changes nothing.

use crate::schema::Identities;
use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{OnConflict, Order, Query},
};

/// The broker's own name: the source of its events and the audience of the
/// tokens its workloads get.
pub const SOURCE: &str = "secrets-broker";

/// The SPIFFE id of a workload: `spiffe://paved/<environment>/<workload>`.
pub fn spiffe_id(environment: &str, workload: &str) -> String {
    paved_grpc::tls::workload_id(environment, workload)
}

/// A registered workload's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub spiffe_id: String,
    pub workload: String,
    pub environment: String,
    pub create_time_ms: i64,
}

/// Why identities could not be listed. Kept apart because callers answer
/// them differently: the store being away is retried, a row that does not
/// read is a defect.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Query(DbErr),
    #[error(transparent)]
    Row(DbErr),
}

/// Records the identity of a registered workload (nothing when it exists).
pub async fn record(db: &impl ConnectionTrait, environment: &str, workload: &str, create_time_ms: i64) -> Result<(), DbErr> {
    let insert = Query::insert()
        .into_table(Identities::Table)
        .columns([Identities::SpiffeId, Identities::Workload, Identities::Environment, Identities::CreateTimeMs])
        .values_panic([spiffe_id(environment, workload).into(), workload.into(), environment.into(), create_time_ms.into()])
        .on_conflict(OnConflict::column(Identities::SpiffeId).do_nothing().to_owned())
        .to_owned();
    db.execute(&insert).await?;
    Ok(())
}

/// A page of identities, by SPIFFE id.
pub async fn list(db: &impl ConnectionTrait, size: u64, offset: u64) -> Result<Vec<Identity>, ListError> {
    let query = Query::select()
        .columns([Identities::SpiffeId, Identities::Workload, Identities::Environment, Identities::CreateTimeMs])
        .from(Identities::Table)
        .order_by(Identities::SpiffeId, Order::Asc)
        .limit(size)
        .offset(offset)
        .to_owned();
    let rows = db.query_all(&query).await.map_err(ListError::Query)?;
    rows.iter()
        .map(|row| {
            Ok(Identity {
                spiffe_id: row.try_get("", "spiffe_id")?,
                workload: row.try_get("", "workload")?,
                environment: row.try_get("", "environment")?,
                create_time_ms: row.try_get("", "create_time_ms")?,
            })
        })
        .collect::<Result<_, DbErr>>()
        .map_err(ListError::Row)
}
