//! The cost scheduler's table and its columns as identifiers for queries
//! (`Table` is the table, each other variant a column, rendered in
//! snake_case by `DeriveIden`). The inbox's are `paved_stream`'s.
//!
//! The table is the one [`crate::migration`] creates. The migration spells
//! its names as strings rather than use this enum: a published migration is
//! never edited, so it must not change when the enum does. The tests below
//! pin every variant to the name the migration gave it.
//!
//! Row reads (`row.try_get("", "running_ms")`) keep string names: `try_get`
//! takes a `&str`, and these are the same names the tests pin.

use sea_orm::DeriveIden;

#[derive(DeriveIden, Debug, Clone, Copy)]
pub(crate) enum RevisionUsage {
    Table,
    RevisionId,
    Workload,
    Environment,
    /// Closed healthy intervals, summed.
    RunningMs,
    /// Start of the open healthy interval, if any.
    RunningSinceMs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use paved_store::{select_named_sql as select_named, select_sql as select};

    #[test]
    fn revision_usage_renders_as_migrated() {
        use RevisionUsage::*;
        assert_eq!(
            select(Table, [RevisionId, Workload, Environment, RunningMs, RunningSinceMs]),
            select_named("revision_usage", &["revision_id", "workload", "environment", "running_ms", "running_since_ms"]),
        );
    }

    /// What the test above compares: each name quoted, in snake_case, as
    /// PostgreSQL receives it.
    #[test]
    fn a_query_renders_quoted_snake_case_names() {
        assert_eq!(select(RevisionUsage::Table, [RevisionUsage::RunningSinceMs]), r#"SELECT "running_since_ms" FROM "revision_usage""#);
    }
}
