//! The cost scheduler's schema. Published migrations are never edited: add one.

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(paved_stream::inbox::MIGRATION), Box::new(CREATE_USAGE)]
    }
}

const CREATE_USAGE: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261123_000001_create_revision_usage",
    table: || {
        Table::create()
            .table(Alias::new("revision_usage"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("revision_id")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("workload")).string().not_null())
            .col(ColumnDef::new(Alias::new("environment")).string().not_null())
            // Closed healthy intervals, summed.
            .col(ColumnDef::new(Alias::new("running_ms")).big_integer().not_null())
            // Start of the open healthy interval, if any.
            .col(ColumnDef::new(Alias::new("running_since_ms")).big_integer())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};
