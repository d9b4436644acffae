//! The canary analyzer's schema. Published migrations are never edited: add one.

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CREATE_OBSERVATIONS)]
    }
}

const CREATE_OBSERVATIONS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261123_000001_create_observations",
    table: || {
        Table::create()
            .table(Alias::new("observations"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("id")).big_integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(Alias::new("event_id")).string().not_null().unique_key())
            .col(ColumnDef::new(Alias::new("revision_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("workload")).string().not_null())
            .col(ColumnDef::new(Alias::new("environment")).string().not_null())
            .col(ColumnDef::new(Alias::new("state")).string().not_null())
            .col(ColumnDef::new(Alias::new("message")).text().not_null())
            .col(ColumnDef::new(Alias::new("observe_time_ms")).big_integer().not_null())
            .to_owned()
    },
    indexes: || {
        vec![
            Index::create()
                .name("observations_by_revision")
                .table(Alias::new("observations"))
                .col(Alias::new("revision_id"))
                .if_not_exists()
                .to_owned(),
        ]
    },
};
