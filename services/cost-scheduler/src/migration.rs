//! The cost scheduler's schema. Published migrations are never edited: add one.

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(paved_stream::inbox::MIGRATION),
            Box::new(CREATE_USAGE),
            Box::new(CREATE_RUNNING),
            Box::new(CREATE_SLEEPS),
            Box::new(CREATE_SAMPLES),
            Box::new(CREATE_REVISION_COSTS),
            Box::new(paved_stream::outbox::MIGRATION),
            Box::new(CREATE_BUDGETS),
        ]
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

fn id() -> ColumnDef {
    ColumnDef::new(Alias::new("id")).big_integer().not_null().auto_increment().primary_key().to_owned()
}

fn index(name: &str, table: &str, columns: &[&str]) -> IndexCreateStatement {
    let mut index = Index::create().name(name).table(Alias::new(table)).if_not_exists().to_owned();
    for column in columns {
        index.col(Alias::new(*column));
    }
    index
}

/// Each interval a revision was healthy (from the runtime's state changes):
/// replica-hours in a window, and cost by requested resources.
const CREATE_RUNNING: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261206_000001_create_running_intervals",
    table: || {
        Table::create()
            .table(Alias::new("running_intervals"))
            .if_not_exists()
            .col(id())
            .col(ColumnDef::new(Alias::new("revision_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("from_ms")).big_integer().not_null())
            // Open while it runs.
            .col(ColumnDef::new(Alias::new("to_ms")).big_integer())
            .to_owned()
    },
    indexes: || vec![index("running_intervals_by_revision", "running_intervals", &["revision_id", "to_ms"])],
};

/// Each time a workload slept (from `WorkloadPowered`): what sleeping saved.
const CREATE_SLEEPS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261206_000002_create_sleep_intervals",
    table: || {
        Table::create()
            .table(Alias::new("sleep_intervals"))
            .if_not_exists()
            .col(id())
            .col(ColumnDef::new(Alias::new("environment")).string().not_null())
            .col(ColumnDef::new(Alias::new("workload")).string().not_null())
            // The revision whose processes stopped.
            .col(ColumnDef::new(Alias::new("revision_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("from_ms")).big_integer().not_null())
            // Open while it sleeps.
            .col(ColumnDef::new(Alias::new("to_ms")).big_integer())
            .to_owned()
    },
    indexes: || vec![index("sleep_intervals_by_workload", "sleep_intervals", &["environment", "workload", "to_ms"])],
};

/// What each replica used between two reads of the runtime.
const CREATE_SAMPLES: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261206_000003_create_usage_samples",
    table: || {
        Table::create()
            .table(Alias::new("usage_samples"))
            .if_not_exists()
            .col(id())
            // When it was read (Unix ms): the end of the interval it covers.
            .col(ColumnDef::new(Alias::new("at_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("revision_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("instance")).integer().not_null())
            .col(ColumnDef::new(Alias::new("interval_ms")).big_integer().not_null())
            // CPU used within the interval.
            .col(ColumnDef::new(Alias::new("cpu_ms")).big_integer().not_null())
            // Resident memory when read, and the peak so far.
            .col(ColumnDef::new(Alias::new("memory_bytes")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("memory_peak_bytes")).big_integer().not_null())
            .to_owned()
    },
    indexes: || vec![index("usage_samples_by_time", "usage_samples", &["at_ms"])],
};

/// What a revision asked for and who pays for it, from its spec (read once
/// from the provisioner): cost by requested resources, and the team.
const CREATE_REVISION_COSTS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261206_000004_create_revision_costs",
    table: || {
        Table::create()
            .table(Alias::new("revision_costs"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("revision_id")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("environment")).string().not_null())
            .col(ColumnDef::new(Alias::new("workload")).string().not_null())
            // Empty when the spec names none (the policy allows that in dev).
            .col(ColumnDef::new(Alias::new("team")).string().not_null())
            .col(ColumnDef::new(Alias::new("replicas")).integer().not_null())
            // Requests, in cores and bytes; 0 when the spec sets none.
            .col(ColumnDef::new(Alias::new("cpu_request")).double().not_null())
            .col(ColumnDef::new(Alias::new("memory_request")).double().not_null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

/// Each team's monthly budget per environment, and the highest threshold
/// of it already announced.
const CREATE_BUDGETS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261206_000005_create_budgets",
    table: || {
        Table::create()
            .table(Alias::new("budgets"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("team")).string().not_null())
            .col(ColumnDef::new(Alias::new("environment")).string().not_null())
            .col(ColumnDef::new(Alias::new("monthly")).double().not_null())
            // 0, 80 or 100: percent of the budget announced as crossed.
            .col(ColumnDef::new(Alias::new("announced")).integer().not_null())
            .primary_key(Index::create().col(Alias::new("team")).col(Alias::new("environment")))
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};
