//! The provisioner's tables and their columns as identifiers for queries
//! (one enum per table: `Table` is the table, each other variant a column,
//! rendered in snake_case by `DeriveIden`).
//!
//! The tables are the ones [`crate::migration`] creates. The migrations
//! spell their names as strings rather than use these enums: a published
//! migration is never edited, so it must not change when an enum here does.
//! The tests below pin every variant to the name a migration gave it.
//!
//! Row reads (`row.try_get("", "spec_yaml")`) keep string names: `try_get`
//! takes a `&str`, and these are the same names the tests pin.

use sea_orm::DeriveIden;

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Workloads {
    Table,
    /// "<environment>/<name>"
    Id,
    Name,
    Environment,
    CurrentRevision,
    StableRevision,
    StandbyRevision,
    ProxyPort,
    CreateTimeMs,
    SleepReason,
    HoldUntilMs,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Revisions {
    Table,
    Id,
    WorkloadId,
    Number,
    State,
    Message,
    SpecYaml,
    SpecDigest,
    SpecPath,
    RequestId,
    CreateTimeMs,
    UpdateTimeMs,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Rollouts {
    Table,
    Id,
    WorkloadId,
    RevisionId,
    StableRevision,
    Stage,
    State,
    Step,
    Weight,
    Message,
    History,
    Version,
    StepStartMs,
    CreateTimeMs,
    UpdateTimeMs,
    StepWindow,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Artifacts {
    Table,
    /// "sha256:<hex>"
    Digest,
    Size,
    CreateTimeMs,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Attestations {
    Table,
    Id,
    Digest,
    Kind,
    Payload,
    Signature,
    PublicKey,
    Signer,
    CreateTimeMs,
}

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum Previews {
    Table,
    /// "pr-<n>"
    Environment,
    Pr,
    ExpireTimeMs,
    CreateTimeMs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use paved_store::{select_named_sql as select_named, select_sql as select};

    #[test]
    fn workloads_render_as_migrated() {
        use Workloads::*;
        assert_eq!(
            select(
                Table,
                [
                    Id,
                    Name,
                    Environment,
                    CurrentRevision,
                    StableRevision,
                    StandbyRevision,
                    ProxyPort,
                    CreateTimeMs,
                    SleepReason,
                    HoldUntilMs
                ]
            ),
            select_named(
                "workloads",
                &[
                    "id",
                    "name",
                    "environment",
                    "current_revision",
                    "stable_revision",
                    "standby_revision",
                    "proxy_port",
                    "create_time_ms",
                    "sleep_reason",
                    "hold_until_ms"
                ]
            ),
        );
    }

    #[test]
    fn revisions_render_as_migrated() {
        use Revisions::*;
        assert_eq!(
            select(Table, [Id, WorkloadId, Number, State, Message, SpecYaml, SpecDigest, SpecPath, RequestId, CreateTimeMs, UpdateTimeMs]),
            select_named(
                "revisions",
                &[
                    "id",
                    "workload_id",
                    "number",
                    "state",
                    "message",
                    "spec_yaml",
                    "spec_digest",
                    "spec_path",
                    "request_id",
                    "create_time_ms",
                    "update_time_ms"
                ]
            ),
        );
    }

    #[test]
    fn rollouts_render_as_migrated() {
        use Rollouts::*;
        assert_eq!(
            select(
                Table,
                [
                    Id,
                    WorkloadId,
                    RevisionId,
                    StableRevision,
                    Stage,
                    State,
                    Step,
                    Weight,
                    Message,
                    History,
                    Version,
                    StepStartMs,
                    CreateTimeMs,
                    UpdateTimeMs
                ]
            ),
            select_named(
                "rollouts",
                &[
                    "id",
                    "workload_id",
                    "revision_id",
                    "stable_revision",
                    "stage",
                    "state",
                    "step",
                    "weight",
                    "message",
                    "history",
                    "version",
                    "step_start_ms",
                    "create_time_ms",
                    "update_time_ms"
                ]
            ),
        );
    }

    #[test]
    fn artifacts_render_as_migrated() {
        use Artifacts::*;
        assert_eq!(select(Table, [Digest, Size, CreateTimeMs]), select_named("artifacts", &["digest", "size", "create_time_ms"]));
    }

    #[test]
    fn attestations_render_as_migrated() {
        use Attestations::*;
        assert_eq!(
            select(Table, [Id, Digest, Kind, Payload, Signature, PublicKey, Signer, CreateTimeMs]),
            select_named("attestations", &["id", "digest", "kind", "payload", "signature", "public_key", "signer", "create_time_ms"]),
        );
    }

    #[test]
    fn previews_render_as_migrated() {
        use Previews::*;
        assert_eq!(
            select(Table, [Environment, Pr, ExpireTimeMs, CreateTimeMs]),
            select_named("previews", &["environment", "pr", "expire_time_ms", "create_time_ms"]),
        );
    }

    /// What the tests above compare: each name quoted, in snake_case, as
    /// PostgreSQL receives it.
    #[test]
    fn a_query_renders_quoted_snake_case_names() {
        assert_eq!(select(Workloads::Table, [Workloads::Id, Workloads::CreateTimeMs]), r#"SELECT "id", "create_time_ms" FROM "workloads""#);
    }
}
