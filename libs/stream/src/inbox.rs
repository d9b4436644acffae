//! Deduplication for consumers whose handling is not naturally idempotent:
//! record the event id in the same transaction as the effect, and skip events
//! already recorded.

use crate::schema::Inbox;
use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Alias, ColumnDef, OnConflict, Query, Table},
};

const TABLE: &str = "inbox";

/// The table of handled event ids, included in the consumer's migrator.
pub const MIGRATION: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261123_000000_create_inbox",
    table: || {
        Table::create()
            .table(Alias::new(TABLE))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("event_id")).string().not_null().primary_key())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

/// Records `event_id` through `txn`; false if it was already recorded, in
/// which case the caller must skip the event's effect.
pub async fn first_delivery<C: ConnectionTrait>(txn: &C, event_id: &str) -> Result<bool, DbErr> {
    let insert = Query::insert()
        .into_table(Inbox::Table)
        .columns([Inbox::EventId])
        .values_panic([event_id.into()])
        .on_conflict(OnConflict::column(Inbox::EventId).do_nothing().to_owned())
        .to_owned();
    Ok(txn.execute(&insert).await?.rows_affected() == 1)
}
