//! The canary analyzer's schema. Published migrations are never edited: add one.

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CREATE_OBSERVATIONS), Box::new(paved_stream::outbox::MIGRATION), Box::new(CREATE_LOOKS)]
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

/// The decision records: per look, the request as sent (protobuf), the
/// Prometheus values fetched for it (JSON) and the decision (protobuf).
const CREATE_LOOKS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261128_000001_create_looks",
    table: || {
        Table::create()
            .table(Alias::new("looks"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("id")).big_integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(Alias::new("rollout_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("look")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("request")).blob().not_null())
            .col(ColumnDef::new(Alias::new("fetched")).text().not_null())
            .col(ColumnDef::new(Alias::new("decision")).blob().not_null())
            .col(ColumnDef::new(Alias::new("verdict")).string().not_null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .to_owned()
    },
    indexes: || {
        vec![
            Index::create()
                .name("looks_by_rollout")
                .table(Alias::new("looks"))
                .col(Alias::new("rollout_id"))
                .col(Alias::new("look"))
                .unique()
                .if_not_exists()
                .to_owned(),
        ]
    },
};
