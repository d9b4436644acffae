//! The audit service's schema. Published migrations are never edited: add one.

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CREATE_ENTRIES)]
    }
}

const CREATE_ENTRIES: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261123_000001_create_audit_entries",
    table: || {
        Table::create()
            .table(Alias::new("audit_entries"))
            .if_not_exists()
            // The position in the log, in order of arrival.
            .col(ColumnDef::new(Alias::new("sequence")).big_integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(Alias::new("event_id")).string().not_null().unique_key())
            .col(ColumnDef::new(Alias::new("stream")).string().not_null())
            .col(ColumnDef::new(Alias::new("source")).string().not_null())
            .col(ColumnDef::new(Alias::new("event_type")).string().not_null())
            .col(ColumnDef::new(Alias::new("subject")).string().not_null())
            .col(ColumnDef::new(Alias::new("event_time_ms")).big_integer())
            .col(ColumnDef::new(Alias::new("receive_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("envelope")).blob().not_null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};
