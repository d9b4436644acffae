//! The provisioner's schema. Published migrations are never edited: add one.

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(paved_stream::outbox::MIGRATION),
            Box::new(CREATE_WORKLOADS),
            Box::new(CREATE_REVISIONS),
            Box::new(CREATE_ROLLOUTS),
            Box::new(WORKLOAD_ROUTING),
            Box::new(CREATE_ARTIFACTS),
            Box::new(CREATE_ATTESTATIONS),
            Box::new(CREATE_PREVIEWS),
            Box::new(WORKLOAD_SLEEP),
            Box::new(ROLLOUT_WINDOW),
        ]
    }
}

const CREATE_WORKLOADS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261123_000001_create_workloads",
    table: || {
        Table::create()
            .table(Alias::new("workloads"))
            .if_not_exists()
            // "<environment>/<name>"
            .col(ColumnDef::new(Alias::new("id")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("name")).string().not_null())
            .col(ColumnDef::new(Alias::new("environment")).string().not_null())
            .col(ColumnDef::new(Alias::new("current_revision")).string())
            // The workload's proxy listens here; kept so the endpoint survives restarts.
            .col(ColumnDef::new(Alias::new("proxy_port")).integer().not_null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

const CREATE_REVISIONS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261123_000002_create_revisions",
    table: || {
        Table::create()
            .table(Alias::new("revisions"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("id")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("workload_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("number")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("state")).string().not_null())
            .col(ColumnDef::new(Alias::new("message")).text().not_null())
            .col(ColumnDef::new(Alias::new("spec_yaml")).text().not_null())
            .col(ColumnDef::new(Alias::new("spec_digest")).string().not_null())
            .col(ColumnDef::new(Alias::new("spec_path")).text().not_null())
            .col(ColumnDef::new(Alias::new("request_id")).string().unique_key())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("update_time_ms")).big_integer().not_null())
            .to_owned()
    },
    indexes: || {
        vec![
            Index::create()
                .name("revisions_by_workload")
                .table(Alias::new("revisions"))
                .col(Alias::new("workload_id"))
                .col(Alias::new("number"))
                .unique()
                .if_not_exists()
                .to_owned(),
        ]
    },
};

const CREATE_ROLLOUTS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261123_000003_create_rollouts",
    table: || {
        Table::create()
            .table(Alias::new("rollouts"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("id")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("workload_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("revision_id")).string().not_null())
            .col(ColumnDef::new(Alias::new("stable_revision")).string())
            .col(ColumnDef::new(Alias::new("stage")).string().not_null())
            .col(ColumnDef::new(Alias::new("state")).string().not_null())
            .col(ColumnDef::new(Alias::new("step")).integer().not_null())
            .col(ColumnDef::new(Alias::new("weight")).integer().not_null())
            .col(ColumnDef::new(Alias::new("message")).text().not_null())
            // JSON list of transitions, oldest first.
            .col(ColumnDef::new(Alias::new("history")).text().not_null())
            // Optimistic concurrency: the driver and the API both update a
            // rollout; each update names the version it read.
            .col(ColumnDef::new(Alias::new("version")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("step_start_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("update_time_ms")).big_integer().not_null())
            .to_owned()
    },
    indexes: || {
        vec![
            Index::create()
                .name("rollouts_by_workload")
                .table(Alias::new("rollouts"))
                .col(Alias::new("workload_id"))
                .col(Alias::new("create_time_ms"))
                .if_not_exists()
                .to_owned(),
            Index::create().name("rollouts_by_state").table(Alias::new("rollouts")).col(Alias::new("state")).if_not_exists().to_owned(),
        ]
    },
};

/// Which revisions take traffic: the stable one, and the known-good one
/// before it, kept running so that a rollback is a traffic switch.
const WORKLOAD_ROUTING: paved_store::AddColumns = paved_store::AddColumns {
    name: "m20261123_000004_workload_routing",
    table: "workloads",
    columns: || {
        vec![
            ColumnDef::new(Alias::new("stable_revision")).string().to_owned(),
            ColumnDef::new(Alias::new("standby_revision")).string().to_owned(),
        ]
    },
    // Before rollouts, the current revision was the one serving.
    backfill: &["UPDATE workloads SET stable_revision = current_revision"],
};

const CREATE_ARTIFACTS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261123_000005_create_artifacts",
    table: || {
        Table::create()
            .table(Alias::new("artifacts"))
            .if_not_exists()
            // "sha256:<hex>"; the bytes are in <data>/artifacts/sha256/<hex>.
            .col(ColumnDef::new(Alias::new("digest")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("size")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

const CREATE_ATTESTATIONS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261123_000006_create_attestations",
    table: || {
        Table::create()
            .table(Alias::new("attestations"))
            .if_not_exists()
            .col(ColumnDef::new(Alias::new("id")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("digest")).string().not_null())
            .col(ColumnDef::new(Alias::new("kind")).string().not_null())
            .col(ColumnDef::new(Alias::new("payload")).text().not_null())
            .col(ColumnDef::new(Alias::new("signature")).string().not_null())
            .col(ColumnDef::new(Alias::new("public_key")).string().not_null())
            .col(ColumnDef::new(Alias::new("signer")).string().not_null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .to_owned()
    },
    indexes: || {
        vec![
            Index::create()
                .name("attestations_by_digest")
                .table(Alias::new("attestations"))
                .col(Alias::new("digest"))
                .col(Alias::new("create_time_ms"))
                .if_not_exists()
                .to_owned(),
        ]
    },
};

const CREATE_PREVIEWS: paved_store::CreateTable = paved_store::CreateTable {
    name: "m20261123_000007_create_previews",
    table: || {
        Table::create()
            .table(Alias::new("previews"))
            .if_not_exists()
            // "pr-<n>"
            .col(ColumnDef::new(Alias::new("environment")).string().not_null().primary_key())
            .col(ColumnDef::new(Alias::new("pr")).integer().not_null())
            .col(ColumnDef::new(Alias::new("expire_time_ms")).big_integer().not_null())
            .col(ColumnDef::new(Alias::new("create_time_ms")).big_integer().not_null())
            .to_owned()
    },
    indexes: paved_store::no_indexes,
};

/// Why a workload sleeps (`schedule`, `idle`, `person`), NULL while it is
/// awake; and until when a person's sleep or wake holds against the
/// schedule (Unix ms).
const WORKLOAD_SLEEP: paved_store::AddColumns = paved_store::AddColumns {
    name: "m20261206_000001_workload_sleep",
    table: "workloads",
    columns: || {
        vec![
            ColumnDef::new(Alias::new("sleep_reason")).string().to_owned(),
            ColumnDef::new(Alias::new("hold_until_ms")).big_integer().to_owned(),
        ]
    },
    backfill: &[],
};

/// The measurement window of the step being held (JSON, see
/// `rollout::window`): a restarted provisioner resumes it.
const ROLLOUT_WINDOW: paved_store::AddColumns = paved_store::AddColumns {
    name: "m20261207_000001_rollout_window",
    table: "rollouts",
    columns: || vec![ColumnDef::new(Alias::new("step_window")).text().to_owned()],
    backfill: &[],
};
