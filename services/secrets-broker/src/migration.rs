//! The secrets broker's schema. Published migrations are never edited: add one.

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CREATE_IDENTITIES)]
    }
}

const CREATE_IDENTITIES: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261123_000001_create_identities",
    table: || {
        Table::create()
            .table(Alias::new("identities"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("spiffe_id")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("workload")).string().not_null())
            .col(ColumnDef::new(Alias::new("environment")).string().not_null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};
