//! The audit service's schema. Published migrations are never edited: add one.

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CREATE_ENTRIES),
            Box::new(CREATE_LEAVES),
            Box::new(CREATE_TILES),
            Box::new(CREATE_STATE),
            Box::new(CREATE_CHECKPOINTS),
            Box::new(CREATE_KEYS),
            Box::new(ENTRY_CHAINS),
            Box::new(ENTRIES_BY_WORKLOAD),
            Box::new(ENTRIES_BY_ACTOR),
            Box::new(CREATE_CHAINS),
            Box::new(CREATE_SALTS),
            Box::new(CREATE_COSIGNATURES),
        ]
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

// The transparency log (crate::log).

const CREATE_LEAVES: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261206_000001_create_log_leaves",
    table: || {
        Table::create()
            .table(Alias::new("log_leaves"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("leaf_index")).big_integer().not_null().primary_key())
            // An event is a leaf once: a redelivery finds its id here.
            .col(ColumnDef::new(Alias::new("event_id")).string().not_null().unique_key())
            .col(ColumnDef::new(Alias::new("leaf")).blob().not_null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

const CREATE_TILES: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261206_000002_create_log_tiles",
    table: || {
        Table::create()
            .table(Alias::new("log_tiles"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("level")).small_integer().not_null())
            .col(ColumnDef::new(Alias::new("idx")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("data")).blob().not_null())
            .primary_key(Index::create().col(Alias::new("level")).col(Alias::new("idx")))
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

const CREATE_STATE: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261206_000003_create_log_state",
    table: || {
        Table::create()
            .table(Alias::new("log_state"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("id")).integer().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("size")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("root")).blob().not_null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

const CREATE_CHECKPOINTS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261206_000004_create_log_checkpoints",
    table: || {
        Table::create()
            .table(Alias::new("log_checkpoints"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("size")).big_integer().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("note")).text().not_null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

const CREATE_KEYS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261206_000005_create_log_keys",
    table: || {
        Table::create()
            .table(Alias::new("log_keys"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("verifier_key")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("sealed")).blob().not_null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("retire_time_ms")).big_integer())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

// Queries with back-pointers, and erasure (crate::log::entry).

/// Rows from before have no leaf index: the log began with this release's
/// predecessor, and its rows keep their plain envelopes (docs/limits.md).
const ENTRY_CHAINS: paved_store::AddColumns = paved_store::AddColumns {
    name: "m20261207_000001_audit_entry_chains",
    table: "audit_entries",
    columns: || {
        vec![
            ColumnDef::new(Alias::new("leaf_index")).big_integer().to_owned(),
            ColumnDef::new(Alias::new("workload")).string().to_owned(),
            ColumnDef::new(Alias::new("actor")).string().to_owned(),
        ]
    },
    backfill: &[],
};

const ENTRIES_BY_WORKLOAD: paved_store::CreateIndex = paved_store::CreateIndex {
    name: "m20261207_000002_audit_entries_by_workload",
    table: "audit_entries",
    index: "audit_entries_workload",
    columns: &["workload", "leaf_index"],
};

const ENTRIES_BY_ACTOR: paved_store::CreateIndex = paved_store::CreateIndex {
    name: "m20261207_000003_audit_entries_by_actor",
    table: "audit_entries",
    index: "audit_entries_actor",
    columns: &["actor", "leaf_index"],
};

/// Unused: chain heads are read from `audit_entries`' indexes (one probe
/// per chain, then kept in memory beside the tree's edge), which is
/// cheaper than an upsert per append. Kept: a published migration never
/// changes.
const CREATE_CHAINS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261207_000004_create_log_chains",
    table: || {
        Table::create()
            .table(Alias::new("log_chains"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("chain")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("leaf_index")).big_integer().not_null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

const CREATE_SALTS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261207_000005_create_audit_salts",
    table: || {
        Table::create()
            .table(Alias::new("audit_salts"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("subject")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("salt")).blob().not_null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

const CREATE_COSIGNATURES: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261207_000006_create_log_cosignatures",
    table: || {
        Table::create()
            .table(Alias::new("log_cosignatures"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("size")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("witness")).string().not_null())
            .col(ColumnDef::new(Alias::new("line")).text().not_null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .primary_key(Index::create().col(Alias::new("size")).col(Alias::new("witness")))
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};
